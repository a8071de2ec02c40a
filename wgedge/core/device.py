"""The device: identity, peers, indices, routing and the cookie checker; the entry points.

    receive_trains(trains, now) -> Output      datagrams from UDP, as [(buffer, size, endpoint)]
    receive_datagrams(batch, now) -> Output    the same, as [(bytes, endpoint)]
    send_packets(batch, now)      -> Output    IP packets read from TUN, as [bytes]
    handle_timer(now)             -> Output    call when `get_timer()` is due
    get_timer()                   -> float | None, the next deadline

Rules kept here:
- Time is an argument: `now` is the caller's monotonic clock in seconds. Wall-clock time
  (TAI64N timestamps, `last_handshake` for `wg show`) is `now + wall_offset`, which the I/O
  layer keeps current. Randomness comes from the injected `rng(n) -> n bytes`.
- A peer's misbehaviour never raises: every refused datagram or packet is counted in
  `drops[reason]` and listed in `Output.dropped`. Misuse by the caller (bad key length, ...)
  raises ValueError.
- An endpoint is the caller's opaque, hashable address: a tuple whose first two items are the
  host string and port (what `socket.recvfrom` returns). Cookies and rate limits key on them.
- Security checks live here, in the tested core: mac1/cookie before any DH, the allowed-IPs
  check on every decrypted packet, replay and key-age checks before a packet is delivered.
- A datagram that does not authenticate changes nothing but a drop counter: endpoint,
  timers, keypair validity and rotation, replay windows, byte counters and last handshake move
  only for authenticated, non-replayed messages. Handshake messages that fail may also move
  the load meter and cookie/rate-limit state, nothing of a peer.

`receive_trains`, `send_packets` and `Peer.send_data` are the hot path, written for speed.
"""

from wgedge.core import consts as C
from wgedge.core import cookie as ck
from wgedge.core import ipaddr, packet, timers, wire
from wgedge.core.allowedips import AllowedIPs
from wgedge.core.noise import Noise, clamp
from wgedge.core.peer import Peer
from wgedge.core.ratelimiter import RateLimiter

_DATA_HEADER = wire.DATA_HEADER.unpack_from
_NONCE = wire.NONCE.pack
_U32 = wire.Struct("<I").unpack_from


def _end_run(window, first, nxt, seen, kp, endpoint, nbytes, n_data):
    """The end of a run of one keypair's data messages in receive_trains: record the
    counters first..nxt-1 it accepted in order (if any) in the replay window, and add what the
    run's authenticated messages showed (latest endpoint, bytes, data messages, the keypair) to
    the peer's entry in `seen`. A run with no authenticated message (nbytes == 0) adds
    nothing: its peer gets no entry, so _account changes nothing for it."""
    if nxt != first:
        window.accept_run(first, nxt - 1)
    if nbytes:
        peer = kp.peer
        st = seen.get(peer)
        if st is None:
            seen[peer] = [endpoint, nbytes, n_data, {kp: True}]
        else:
            st[0] = endpoint
            st[1] += nbytes
            st[2] += n_data
            st[3][kp] = True


_FIRST = (0,)  # the offsets of a train of one


class Output:
    """Everything one entry-point call produced."""

    def __init__(self, device):
        self.udp = []  # [(datagram, endpoint)] in send order
        # [(buffer, size, endpoint)]: encrypted data messages of one peer back to back in
        # `buffer`, each `size` bytes except the last, which may be shorter (what one UDP GSO
        # send takes). Only the in-place AEAD (OpenSSL's) fills it; see datagrams().
        self.trains = []
        self.tun = []  # [packet] to write to the TUN device
        self.dropped = []  # [reason], also counted in device.drops
        # [endpoint] that authenticated messages came from (each now a peer's endpoint): the
        # I/O layer keeps a reply source address only for these, never for a datagram that
        # did not authenticate.
        self.authenticated = []
        self._drops = device.drops

    def datagrams(self):
        """Every datagram one by one, [(datagram, endpoint)]: `udp`, then the trains cut up."""
        result = list(self.udp)
        for buf, size, endpoint in self.trains:
            for off in range(0, len(buf), size):
                result.append((buf[off:off + size], endpoint))
        return result

    def drop(self, reason):
        self.dropped.append(reason)
        d = self._drops
        d[reason] = d.get(reason, 0) + 1


class Device:
    def __init__(self, crypto, rng, private_key=None, mtu=C.DEFAULT_MTU):
        self.crypto = crypto
        self.rng = rng
        self.mtu = mtu
        self.wall_offset = 0.0
        self.noise = Noise(crypto)
        self.cookie_checker = ck.CookieChecker(crypto)
        self.ratelimiter = RateLimiter()  # handshakes with a valid cookie, under load
        self.cookie_ratelimiter = RateLimiter()  # cookie replies, under load
        self.allowed_ips = AllowedIPs()
        self.peers = {}  # public key -> Peer, in insertion order (as `wg show` lists them)
        self.drops = {}
        self.handshake_index = {}  # local index -> Peer with a handshake in flight
        self.keypair_index = {}  # local index -> Keypair
        self._heap = []
        self._heap_seq = 0
        # Load: cookie mode when more handshake messages than this arrive within a second.
        self.handshake_load_threshold = 512
        self.force_under_load = False
        self._load_window_start = None
        self._load_count = 0
        self._last_under_load = None
        self._batch_handshakes = 0
        self.listen_port = 0
        self.fwmark = 0
        if private_key is not None:
            self.set_private_key(private_key)

    # --- identity and peers ------------------------------------------------------------------
    @property
    def private_key(self):
        return self.noise.static_private

    @property
    def public_key(self):
        return self.noise.static_public

    def set_private_key(self, private_key):
        """Set (or with None, remove) our static key; sessions made with the old one end."""
        if private_key is not None and len(private_key) != C.KEY_LEN:
            raise ValueError("private key must be 32 bytes")
        if private_key is not None and self.noise.static_private == private_key:
            return
        self.noise.set_static_private(private_key)
        self.cookie_checker.set_static_public(self.noise.static_public)
        mine = self.noise.static_public
        if mine is not None and mine in self.peers:
            self.remove_peer(self.peers[mine])  # a peer with our own key cannot exist
        for peer in self.peers.values():
            self.noise.forget_static_static(peer.handshake)
            peer.expire_keypairs()
            self._free_handshake_index(peer)
            peer.handshake.clear()

    def add_peer(self, public_key):
        if len(public_key) != C.KEY_LEN:
            raise ValueError("public key must be 32 bytes")
        peer = self.peers.get(public_key)
        if peer is not None:
            return peer
        if public_key == self.noise.static_public:
            raise ValueError("a peer cannot have the interface's own public key")
        if len(self.peers) >= C.MAX_PEERS:
            raise ValueError("too many peers")
        peer = Peer(self, public_key)  # DH with its key waits for its first handshake
        self.peers[public_key] = peer
        return peer

    def remove_peer(self, peer):
        if self.peers.get(peer.public_key) is not peer:
            return
        del self.peers[peer.public_key]
        self.allowed_ips.remove_peer(peer)
        peer.shutdown()

    def remove_all_peers(self):
        for peer in list(self.peers.values()):
            self.remove_peer(peer)

    # --- indices (paper 5.4.1: random 32-bit sender indices) ------------------------------------
    def _random_index(self):
        while True:
            r = self.rng(4)
            index = r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)
            if index not in self.handshake_index and index not in self.keypair_index:
                return index

    def _new_handshake_index(self, peer):
        self._free_handshake_index(peer)
        index = self._random_index()
        self.handshake_index[index] = peer
        return index

    def _free_handshake_index(self, peer):
        index = peer.handshake.local_index
        if index is not None and self.handshake_index.get(index) is peer:
            del self.handshake_index[index]
        peer.handshake.local_index = None

    def _index_to_keypair(self, index, kp):
        """A finished handshake hands its index to the keypair (kernel: index replace)."""
        if self.handshake_index.get(index) is kp.peer:
            del self.handshake_index[index]
        self.keypair_index[index] = kp

    def _forget_keypair(self, kp):
        if self.keypair_index.get(kp.local_index) is kp:
            del self.keypair_index[kp.local_index]

    # --- timers --------------------------------------------------------------------------------
    def get_timer(self):
        heap = self._heap
        while heap:
            deadline, _, peer = heap[0]
            if peer.removed or peer.deadline != deadline:
                timers.heap_pop(heap)  # stale entry: that peer re-armed or went away
                continue
            return deadline
        return None

    def _reschedule(self, peer):
        d = peer.timers.next_deadline()
        if d != peer.deadline:
            peer.deadline = d
            if d is not None and not peer.removed:
                if len(self._heap) >= 2 * len(self.peers) + 32:
                    self._rebuild_heap()  # holds `peer` at `d` now
                    return
                self._heap_seq += 1
                timers.heap_push(self._heap, (d, self._heap_seq, peer))

    def _rebuild_heap(self):
        """Entries of peers that re-armed or went away are skipped lazily, and would pile up
        (each handshake leaves two until their deadline passes). Rebuilding from the live
        deadlines once the heap holds twice as many entries as there are peers keeps it at
        O(peers) for O(1) amortized work per push. A sorted list is a valid heap."""
        live = []
        for p in self.peers.values():
            if p.deadline is not None:
                self._heap_seq += 1
                live.append((p.deadline, self._heap_seq, p))
        live.sort()
        self._heap = live

    def handle_timer(self, now):
        """Act on the timers due at `now`, of at most MAX_TIMERS_PER_CALL peers: when more
        are due (many peers enabled at once, a clock that jumped), get_timer() stays at or
        before `now` and the caller calls again after its other work, so no call is long."""
        out = Output(self)
        heap = self._heap
        due = []
        limit = C.MAX_TIMERS_PER_CALL
        while heap and heap[0][0] <= now and len(due) < limit:
            deadline, _, peer = timers.heap_pop(heap)
            if not peer.removed and peer.deadline == deadline:
                peer.deadline = None
                due.append(peer)
        for peer in due:
            peer.on_timers(now, out)
            self._reschedule(peer)
        return out

    def touch(self, peer):
        """Re-read a peer's deadlines after configuration changed them."""
        self._reschedule(peer)

    # --- outgoing: packets from TUN ------------------------------------------------------------
    def send_packets(self, packets, now):
        out = Output(self)
        lookup = self.allowed_ips.lookup
        groups = {}
        last_dst = None
        peer = None
        last_peer = False  # the previous packet's peer (False: none yet) and its group's append
        add = None
        for p in packets:
            n = len(p)
            version = p[0] >> 4 if n else 0
            if version == 4 and n >= 20:
                dst = p[16:20]
            elif version == 6 and n >= 40:
                dst = p[24:40]
            else:
                out.drop(C.DROP_BAD_INNER)
                continue
            if dst != last_dst:  # consecutive packets of a flow share one routing lookup
                last_dst = dst
                peer = lookup(dst)
            if peer is last_peer:
                add(p)
                continue
            if peer is None:
                out.drop(C.DROP_NO_ROUTE)
                continue
            g = groups.get(peer)
            if g is None:
                g = groups[peer] = []
            add = g.append
            last_peer = peer
            add(p)
        for peer, batch in groups.items():
            peer.send_data(batch, now, out)
            self._reschedule(peer)
        return out

    # --- incoming: datagrams from UDP ------------------------------------------------------------
    def receive_datagrams(self, datagrams, now):
        """[(datagram, endpoint)], each datagram bytes or a memoryview: receive_trains with
        a train of one for each."""
        return self.receive_trains([(d, len(d) or 1, e) for d, e in datagrams], now)

    def receive_trains(self, trains, now):
        """Hot path. `trains` is [(buffer, size, endpoint)]: datagrams from `endpoint` back to
        back in `buffer` (bytes or memoryview), each `size` bytes but the last, which may be
        shorter, as one UDP GRO read returns them (a lone datagram is a train of one).
        Transport data is decrypted, replay-checked and routed per datagram; the per-peer
        bookkeeping (roaming, counters, timers, key confirmation) is done once per run of data
        messages, before any handshake message is looked at and at the end.

        The rule this loop keeps (tests/test_auth_rule.py): a datagram that does not
        authenticate changes nothing but a drop counter. Before the AEAD opens a message only
        lookups happen; the replay window, the run's endpoint and bytes, and with them the
        peer's entry in `seen` (endpoint, rx_bytes, timers, key confirmation), move only for
        messages that decrypted and passed the replay check (paper 6.5)."""
        out = Output(self)
        touched = {}
        seen = {}  # peer -> [latest endpoint, bytes, data messages, {keypair: True}]
        unpack_header = _DATA_HEADER
        nonce = _NONCE
        keypair_index = self.keypair_index
        lookup = self.allowed_ips.lookup
        inner_len = packet.inner_len
        auth_error = self.crypto.AuthError
        tun = out.tun
        last_receiver = None
        kp = None
        limit = -1  # counters >= limit are refused: REJECT_AFTER_MESSAGES, or -1 (keypair unusable)
        # The current run's authenticated packets: latest endpoint, bytes, data messages. Kept in
        # locals and added to its peer's entry in `seen` when the run ends.
        run_ep = None
        run_bytes = 0
        run_data = 0
        last_src = None
        src_ok = False
        data_min = C.DATA_MIN_LEN
        self._batch_handshakes = 0
        decrypt = window = None
        # Counters first..nxt-1 of the current keypair arrived in order above its window's
        # greatest: accepted with one comparison each, recorded with window.accept_run when
        # the run ends (before anything else can look at the window).
        first = nxt = -1
        for buf, size, endpoint in trains:
            total = len(buf)
            # A lone datagram (the usual case without UDP GRO) skips making a range.
            for off in range(0, total, size) if total > size else _FIRST:
                end = off + size
                if end > total:
                    end = total
                if end - off >= data_min:
                    mtype, receiver, counter = unpack_header(buf, off)
                else:
                    mtype = 0
                if mtype != 4:
                    if run_bytes or nxt != first:
                        _end_run(window, first, nxt, seen, kp, run_ep, run_bytes, run_data)
                        first = nxt = -1
                        run_bytes = 0
                        run_data = 0
                    if seen:
                        self._account(seen, now, out, touched)
                        seen = {}
                    last_receiver = last_src = None
                    # Handshake and cookie messages are rare: give them bytes of their own.
                    peer = self._receive_other(bytes(buf[off:end]), endpoint, now, out)
                    if peer is not None:
                        touched[peer] = True
                    continue
                if receiver != last_receiver:
                    if run_bytes or nxt != first:
                        _end_run(window, first, nxt, seen, kp, run_ep, run_bytes, run_data)
                        run_bytes = 0
                        run_data = 0
                    first = nxt = -1
                    # Lookups and checks that hold for a whole run of one keypair's packets.
                    kp = keypair_index.get(receiver)
                    if kp is None:
                        last_receiver = None
                        out.drop(C.DROP_UNKNOWN_INDEX)
                        continue
                    last_receiver = receiver
                    if kp.can_receive(now):
                        limit = C.REJECT_AFTER_MESSAGES
                        decrypt = kp.receiving.decrypt
                        window = kp.replay
                        first = nxt = window.greatest + 1
                    else:
                        limit = -1
                    last_src = None
                if counter >= limit:
                    # Judged on the packet's unauthenticated counter: refuse it, change
                    # nothing (kernel: the limit is checked against authenticated counters).
                    out.drop(C.DROP_EXPIRED_KEYPAIR)
                    continue
                try:
                    plain = decrypt(nonce(0, counter), buf[off + 16:end], None)
                except auth_error:
                    out.drop(C.DROP_DECRYPT)
                    continue
                if counter == nxt:  # in order, above everything seen: not a replay
                    nxt = counter + 1
                else:
                    if nxt != first:
                        window.accept_run(first, nxt - 1)
                    fresh = window.check_and_update(counter)
                    first = nxt = window.greatest + 1
                    if not fresh:
                        out.drop(C.DROP_REPLAY)
                        continue
                run_ep = endpoint  # roaming: the latest authenticated source wins (paper 6.5)
                run_bytes += end - off
                if not plain:
                    continue  # a keepalive
                run_data += 1
                n = len(plain)
                b0 = plain[0]
                if b0 >> 4 == 4 and n >= 20:
                    length = (plain[2] << 8) | plain[3]
                    if length < 20 or length > n or b0 & 15 < 5:
                        length = -1
                    src = plain[12:16]
                else:
                    length = inner_len(plain)
                    src = plain[8:24]
                if length < 0:
                    out.drop(C.DROP_BAD_INNER)
                    continue
                if src != last_src:
                    last_src = src
                    src_ok = lookup(src) is kp.peer
                if not src_ok:
                    out.drop(C.DROP_SOURCE_NOT_ALLOWED)
                    continue
                tun.append(plain if length == n else plain[:length])
        if run_bytes or nxt != first:
            _end_run(window, first, nxt, seen, kp, run_ep, run_bytes, run_data)
        if seen:
            self._account(seen, now, out, touched)
        for peer in touched:
            self._reschedule(peer)
        return out

    def _account(self, seen, now, out, touched):
        """Per-peer effects of a run of authenticated data messages (kernel receive.c)."""
        for peer, (endpoint, nbytes, n_data, keypairs) in seen.items():
            touched[peer] = True
            peer.endpoint = endpoint
            out.authenticated.append(endpoint)
            peer.rx_bytes += nbytes
            pairs = peer.keypairs
            for kp in keypairs:
                if kp is pairs.next and pairs.confirm(kp):
                    peer.handshake_complete(now)
                    peer.send_data([], now, out)  # staged packets can leave now
            t = peer.timers
            t.any_authenticated_packet_received(now)
            t.any_authenticated_packet_traversal(now)
            if n_data:
                t.data_received(now, n_data)
            if pairs.current in keypairs:
                peer.keep_key_fresh_on_receive(now, out)

    def _receive_other(self, data, endpoint, now, out):
        mtype = wire.classify(data)
        if mtype in (C.MSG_INITIATION, C.MSG_RESPONSE, C.MSG_COOKIE_REPLY):
            self._batch_handshakes += 1
            if self._batch_handshakes > C.MAX_HANDSHAKES_PER_BATCH:
                self._last_under_load = now
                out.drop(C.DROP_HANDSHAKE_OVERLOAD)
                return None
        if mtype == C.MSG_INITIATION or mtype == C.MSG_RESPONSE:
            return self._receive_handshake(data, mtype, endpoint, now, out)
        if mtype == C.MSG_COOKIE_REPLY:
            return self._receive_cookie_reply(data, now, out)
        if mtype == C.MSG_DATA:  # only reached when too short for the fast path
            mtype = C.DROP_BAD_LENGTH
        out.drop(mtype)
        return None

    # --- handshakes ------------------------------------------------------------------------------
    def _under_load(self, now):
        """Kernel semantics: load seen now, or within the last UNDER_LOAD_AFTER seconds."""
        start = self._load_window_start
        if start is None or now - start >= 1.0:
            self._load_window_start = now
            self._load_count = 0
        self._load_count += 1
        if self.force_under_load or self._load_count > self.handshake_load_threshold:
            self._last_under_load = now
            return True
        last = self._last_under_load
        if last is not None:
            if now - last < C.UNDER_LOAD_AFTER:
                return True
            self._last_under_load = None
        return False

    @staticmethod
    def _limit_allows(limiter, endpoint, now):
        """Ask a per-source rate limiter about the sender of a handshake message."""
        host = endpoint[0]
        if type(host) is str and ":" not in host:
            # IPv4 text from the socket layer is canonical, so it serves as the key itself:
            # under a flood this runs for every message, and parsing it cost a tenth of the
            # daemon's time.
            key = host
        else:
            try:
                key = limiter.key_for(ipaddr.parse_ip(host))
            except (ValueError, TypeError, IndexError):
                key = host
        return limiter.allow(key, now)

    def _handshake_allowed(self, data, mtype, endpoint, now, out):
        """The cookie decision, in one place (kernel receive.c, wg_receive_handshake_packet)."""
        under_load = self._under_load(now)
        mac1_offset = wire.mac1_offset(mtype)
        state = self.cookie_checker.validate(
            data, mac1_offset, endpoint, under_load,
            lambda: self._limit_allows(self.ratelimiter, endpoint, now), now, self.rng)
        if under_load and state == ck.VALID_MAC_WITH_COOKIE:
            return True
        if not under_load and state == ck.VALID_MAC_BUT_NO_COOKIE:
            return True
        if under_load and state == ck.VALID_MAC_BUT_NO_COOKIE:
            # Cookie replies are rate limited per source too: a flood from a few addresses
            # gets a few cookies, not one per packet, and the CPU goes to transport data.
            if not self._limit_allows(self.cookie_ratelimiter, endpoint, now):
                out.drop(C.DROP_RATELIMITED)
                return False
            sender = _U32(data, 4)[0]
            out.udp.append((self.cookie_checker.make_reply(data, mac1_offset, sender, endpoint,
                                                           now, self.rng), endpoint))
            out.drop(C.DROP_NEED_COOKIE)
            return False
        if state == ck.VALID_MAC_WITH_COOKIE_BUT_RATELIMITED:
            out.drop(C.DROP_RATELIMITED)
        else:
            out.drop(C.DROP_BAD_MAC1)
        return False

    def _receive_handshake(self, data, mtype, endpoint, now, out):
        if not self._handshake_allowed(data, mtype, endpoint, now, out):
            return None
        if mtype == C.MSG_INITIATION:
            sender, eph, enc_static, enc_ts = wire.parse_initiation(data)
            result = self.noise.consume_initiation(eph, enc_static, enc_ts, self.peers.get, now)
            if not isinstance(result, tuple):
                out.drop(result)
                return None
            peer, commit = result
            commit(sender)
            peer.endpoint = endpoint
            out.authenticated.append(endpoint)
            peer.rx_bytes += len(data)
            self._send_response(peer, now, out)
        else:
            sender, receiver, eph, enc_nothing = wire.parse_response(data)
            peer = self.handshake_index.get(receiver)
            if peer is None:
                out.drop(C.DROP_UNKNOWN_INDEX)
                return None
            if not self.noise.consume_response(peer.handshake, sender, eph, enc_nothing):
                out.drop(C.DROP_BAD_HANDSHAKE)
                return None
            peer.endpoint = endpoint
            out.authenticated.append(endpoint)
            peer.rx_bytes += len(data)
            if peer.begin_session(now) is not None:
                peer.handshake_complete(now)
                peer.send_keepalive(now, out)  # confirms the session to the responder
        t = peer.timers
        t.any_authenticated_packet_received(now)
        t.any_authenticated_packet_traversal(now)
        return peer

    def _send_response(self, peer, now, out):
        peer.last_sent_handshake = now
        index = self._new_handshake_index(peer)
        fields = self.noise.create_response(peer.handshake, index, self.ephemeral())
        if fields is None:
            self._free_handshake_index(peer)
            out.drop(C.DROP_BAD_HANDSHAKE)
            return
        msg = wire.pack_response(*fields)
        peer.cookie.add_macs(msg, C.RESPONSE_MAC1_OFFSET, now)
        if peer.begin_session(now) is not None:
            t = peer.timers
            t.any_authenticated_packet_traversal(now)
            t.any_authenticated_packet_sent(now)
            peer._emit(bytes(msg), out)

    def ephemeral(self):
        """A fresh ephemeral private key from the injected random source."""
        return clamp(self.rng(32))

    def _receive_cookie_reply(self, data, now, out):
        receiver, nonce, encrypted = wire.parse_cookie_reply(data)
        peer = self.handshake_index.get(receiver)
        if peer is None:
            kp = self.keypair_index.get(receiver)
            peer = kp.peer if kp is not None else None
        if peer is None:
            out.drop(C.DROP_UNKNOWN_INDEX)
            return None
        if not peer.cookie.consume_reply(nonce, encrypted, now):
            out.drop(C.DROP_BAD_COOKIE)
            return None
        # No resend here: the retransmit timer sends the next initiation with mac2 (kernel).
        return peer
