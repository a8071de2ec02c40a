"""The device: identity, peers, routing, and the entry points with the transport-data path.

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
- Handshake messages sent, refused or completed are also listed in `Output.events` (at most
  MAX_EVENTS_PER_CALL per call), for the I/O layer to log: the core itself never logs, and
  data messages never make an event (their drops are in `Output.dropped`).
- Security checks live in the tested core: mac1/cookie before any DH (gate.py, called from
  handshake.py), and here the allowed-IPs check on every decrypted packet, replay and key-age
  checks before a packet is delivered.
- A datagram that does not authenticate changes nothing but a drop counter: endpoint,
  timers, keypair validity and rotation, replay windows, byte counters and last handshake move
  only for authenticated, non-replayed messages. Handshake messages that fail may also move
  the load meter and cookie/rate-limit state, nothing of a peer.

Who owns what: local indices `indices` (indextable.py), the handshake decision `gate`
(gate.py), deadlines `schedule` (schedule.py), handshake messages handshake.py, one peer's
state peer.py. `receive_trains`, `send_packets` and `Peer.send_data` are the hot path, written
for speed. That is why this module is over 400 lines (about 490): the two entry points of the
data path keep their whole per-packet loop here, with the routing-loop guard and the ICMP
answer beside the routing they depend on, so a packet costs no call into another module.
"""

from wgedge.core import consts as C
from wgedge.core import gate, handshake, icmp, packet, wire
from wgedge.core.allowedips import AllowedIPs
from wgedge.core.indextable import IndexTable
from wgedge.core.ipaddr import parse_ip
from wgedge.core.noise import Noise, clamp
from wgedge.core.peer import Peer
from wgedge.core.schedule import Schedule

_DATA_HEADER = wire.DATA_HEADER.unpack_from
_NONCE = wire.NONCE.pack


class _Received:
    """What one received batch showed of a peer through authenticated data messages: added to
    once per run of one keypair's messages, applied once by Device._account."""

    __slots__ = ("endpoint", "nbytes", "data_messages", "keypairs")

    def __init__(self):
        self.endpoint = None  # the latest source (paper 6.5: roaming)
        self.nbytes = 0
        self.data_messages = 0  # not keepalives
        self.keypairs = {}  # {keypair: True} the messages came on


def _end_run(kp, first, end, seen, endpoint, nbytes, n_data):
    """A run of keypair `kp`'s data messages in receive_trains ended: record the in-order
    counters first..end-1 it accepted in the replay window, and add what its authenticated
    messages showed to its peer's entry in `seen`. A run with no authenticated message
    (nbytes == 0) adds nothing: its peer gets no entry, so _account changes nothing for it."""
    kp.replay.accept_run(first, end)
    if nbytes:
        peer = kp.peer
        r = seen.get(peer)
        if r is None:
            r = seen[peer] = _Received()
        r.endpoint = endpoint
        r.nbytes += nbytes
        r.data_messages += n_data
        r.keypairs[kp] = True


_FIRST = (0,)  # the offsets of a train of one


class Output:
    """Everything one entry-point call produced."""

    # [packet] from TUN that no peer covers, to answer with an ICMP error (icmp.py; the I/O
    # layer sends it, as the kernel would: io/unreachable.py). A list only once there is
    # one (send_packets' no-route branch): an Output costs nothing more for it.
    unreachable = None

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
        # [(event, public key or None, reason or None, endpoint or None)]: consts EVENT_*
        self.events = []
        self.events_lost = 0  # events beyond MAX_EVENTS_PER_CALL, not listed

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

    def event(self, kind, public_key, reason, endpoint):
        if len(self.events) < C.MAX_EVENTS_PER_CALL:
            self.events.append((kind, public_key, reason, endpoint))
        else:
            self.events_lost += 1

    def refused(self, reason, public_key, endpoint):
        """A handshake message refused: counted as a drop, and listed as an event."""
        self.drop(reason)
        self.event(C.EVENT_HANDSHAKE_FAILED, public_key, reason, endpoint)


class Device:
    def __init__(self, crypto, rng, private_key=None, mtu=C.DEFAULT_MTU):
        self.crypto = crypto
        self.rng = rng
        self.mtu = mtu
        self.wall_offset = 0.0
        self.noise = Noise(crypto)
        self.gate = gate.HandshakeGate(crypto, rng)  # mac1, cookies, load, rate limits
        self.allowed_ips = AllowedIPs()
        self.peers = {}  # public key -> Peer, in insertion order (as `wg show` lists them)
        self.drops = {}
        self.indices = IndexTable(rng)  # local index -> handshake in flight or keypair
        self.schedule = Schedule(self.peers)
        self.listen_port = 0
        self.fwmark = 0
        self.icmp_limiter = icmp.Limiter()
        self._endpoint_addresses = {}  # endpoint -> its host's address bytes (send_packets)
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
        self.gate.set_static_public(self.noise.static_public)
        mine = self.noise.static_public
        if mine is not None and mine in self.peers:
            self.remove_peer(self.peers[mine])  # a peer with our own key cannot exist
        for peer in self.peers.values():
            self.noise.forget_static_static(peer.handshake)
            peer.expire_keypairs()
            peer.clear_handshake()

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

    # --- timers --------------------------------------------------------------------------------
    def get_timer(self):
        return self.schedule.next_deadline()

    def handle_timer(self, now):
        """Act on the timers due at `now`, of at most MAX_TIMERS_PER_CALL peers: when more
        are due (many peers enabled at once, a clock that jumped), get_timer() stays at or
        before `now` and the caller calls again after its other work, so no call is long."""
        out = Output(self)
        reschedule = self.schedule.reschedule
        for peer in self.schedule.due(now, C.MAX_TIMERS_PER_CALL):
            peer.on_timers(now, out)
            reschedule(peer)
        return out

    def touch(self, peer):
        """Re-read a peer's deadlines after configuration changed them."""
        self.schedule.reschedule(peer)

    # --- outgoing: packets from TUN ------------------------------------------------------------
    def send_packets(self, packets, now):
        """Hot path, written for speed: route each packet by destination and hand each
        peer its packets at once. A packet no peer's allowed IPs cover is dropped and
        listed to be answered with an ICMP error (Output.unreachable; icmp.py,
        rate-limited). A packet routed to the peer whose endpoint is its destination may
        be our own datagram coming back through the tunnel (a route to the endpoint that
        points into it): only for those packets is the UDP header looked at
        (_own_datagram), and our own datagrams are dropped, so a misrouted endpoint cannot
        loop."""
        out = Output(self)
        lookup = self.allowed_ips.lookup
        groups = {}
        last_dst = None
        peer = None
        last_peer = False  # the previous packet's peer (False: none yet) and its group's append
        add = None
        to_endpoint = False  # the packet's destination is its peer's endpoint address
        endpoint_addresses = self._endpoint_addresses
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
                endpoint = peer.endpoint if peer is not None else None
                if endpoint is not None:
                    address = endpoint_addresses.get(endpoint)
                    if address is None:
                        address = self._endpoint_address(endpoint)
                    to_endpoint = address == dst
                else:
                    to_endpoint = False
            if to_endpoint and self._own_datagram(p, peer.endpoint[1]):
                out.drop(C.DROP_ROUTING_LOOP)
                continue
            if peer is last_peer:
                add(p)
                continue
            if peer is None:
                out.drop(C.DROP_NO_ROUTE)
                if icmp.answerable(p) and self.icmp_limiter.allow(now):
                    if out.unreachable is None:
                        out.unreachable = []
                    out.unreachable.append(p)
                continue
            g = groups.get(peer)
            if g is None:
                g = groups[peer] = []
            add = g.append
            last_peer = peer
            add(p)
        reschedule = self.schedule.reschedule
        for peer, batch in groups.items():
            peer.send_data(batch, now, out)
            reschedule(peer)
        return out

    def _endpoint_address(self, endpoint):
        """The address bytes of `endpoint`'s host (b"" when it is not an IP address), for
        send_packets to remember; the table is emptied when it outgrows the peers."""
        cache = self._endpoint_addresses
        if len(cache) > 2 * len(self.peers) + 64:
            cache.clear()
        host = endpoint[0]
        if "%" in host:
            host = host[:host.index("%")]
        try:
            address = parse_ip(host)
        except ValueError:
            address = b""  # matches no packet's destination
        cache[endpoint] = address
        return address

    def _own_datagram(self, p, port):
        """Whether IP packet `p` is a UDP datagram (an unfragmented one, or the first
        fragment) from our listening port to `port`: one of ours. The other fragments of
        a looping datagram carry no UDP header: they are sent once more, each as a datagram
        of ours, which is caught the next time round."""
        if not self.listen_port:
            return False
        if p[0] >> 4 == 4:
            if p[9] != 17 or ((p[6] & 0x1F) << 8) | p[7]:
                return False
            off = (p[0] & 15) * 4
        else:
            if p[6] != 17:
                return False
            off = 40
        if len(p) < off + 4:
            return False
        return (((p[off] << 8) | p[off + 1]) == self.listen_port
                and ((p[off + 2] << 8) | p[off + 3]) == port)

    # --- incoming: datagrams from UDP ------------------------------------------------------------
    def receive_datagrams(self, datagrams, now):
        """[(datagram, endpoint)], each datagram bytes or a memoryview: receive_trains with
        a train of one for each."""
        return self.receive_trains([(d, len(d) or 1, e) for d, e in datagrams], now)

    def receive_trains(self, trains, now):
        """Hot path, written for speed. `trains` is [(buffer, size, endpoint)]: datagrams
        from `endpoint` back to back in `buffer` (bytes or memoryview), each `size` bytes but
        the last, which may be shorter, as one UDP GRO read returns them (a lone datagram is a
        train of one). Transport data is decrypted, replay-checked and routed per datagram;
        the per-peer bookkeeping (roaming, counters, timers, key confirmation) is done once
        per run of data messages, before any handshake message is looked at and at the end.

            for each datagram:
              not transport data -> end the run, account, handshake.receive
              new receiver index -> end the run; look up the keypair; start a run
              counter >= the keypair's receive limit -> drop (expired keypair)
              AEAD open fails -> drop
              counter is the run's next -> accepted (the window records the run at its end)
              else -> the window records the run and checks the counter -> maybe drop
              inner packet: length, then source in the peer's allowed IPs -> TUN

        The rule this loop keeps (tests/test_auth_rule.py): a datagram that does not
        authenticate changes nothing but a drop counter. Before the AEAD opens a message only
        lookups happen; the replay window, the run's endpoint and bytes, and with them the
        peer's entry in `seen` (endpoint, rx_bytes, timers, key confirmation), move only for
        messages that decrypted and passed the replay check (paper 6.5)."""
        out = Output(self)
        touched = {}
        seen = {}  # peer -> _Received
        unpack_header = _DATA_HEADER
        nonce = _NONCE
        keypairs = self.indices.keypairs
        lookup = self.allowed_ips.lookup
        inner_len = packet.inner_len
        auth_error = self.crypto.AuthError
        tun = out.tun
        data_min = C.DATA_MIN_LEN
        self.gate.new_batch()
        # The open run: keypair `kp` (None: no run), its decrypt and replay window, the limit
        # its counters must stay under, the in-order counters run_first..run_next-1 accepted
        # so far, and what its authenticated messages showed (latest endpoint, bytes, data
        # messages), all in locals until _end_run hands them on.
        kp = decrypt = window = None
        last_receiver = None
        accept_below = run_first = run_next = 0
        run_ep = None
        run_bytes = run_data = 0
        last_src = None  # the last inner source checked against the allowed IPs, and its verdict
        src_ok = False
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
                    if kp is not None:
                        _end_run(kp, run_first, run_next, seen, run_ep, run_bytes, run_data)
                        kp = None
                        run_bytes = run_data = 0
                    if seen:
                        self._account(seen, now, out, touched)
                        seen = {}
                    last_receiver = last_src = None
                    # Handshake and cookie messages are rare: give them bytes of their own.
                    peer = handshake.receive(self, bytes(buf[off:end]), endpoint, now, out)
                    if peer is not None:
                        touched[peer] = True
                    continue
                if receiver != last_receiver:
                    if kp is not None:
                        _end_run(kp, run_first, run_next, seen, run_ep, run_bytes, run_data)
                        run_bytes = run_data = 0
                    kp = keypairs.get(receiver)
                    if kp is None:
                        last_receiver = None
                        out.drop(C.DROP_UNKNOWN_INDEX)
                        continue
                    # Lookups and checks that hold for a whole run of one keypair's packets.
                    last_receiver = receiver
                    accept_below = kp.receive_limit(now)
                    decrypt = kp.receiving.decrypt if accept_below else None
                    window = kp.replay
                    run_first = run_next = window.run_start()
                    last_src = None
                if counter >= accept_below:
                    # Judged on the packet's unauthenticated counter: refuse it, change
                    # nothing (kernel: the limit is checked against authenticated counters).
                    out.drop(C.DROP_EXPIRED_KEYPAIR)
                    continue
                try:
                    plain = decrypt(nonce(0, counter), buf[off + 16:end], None)
                except auth_error:
                    out.drop(C.DROP_DECRYPT)
                    continue
                if counter == run_next:  # in order, above everything seen: not a replay
                    run_next = counter + 1
                else:
                    window.accept_run(run_first, run_next)
                    fresh = window.check(counter)
                    run_first = run_next = window.run_start()
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
        if kp is not None:
            _end_run(kp, run_first, run_next, seen, run_ep, run_bytes, run_data)
        if seen:
            self._account(seen, now, out, touched)
        reschedule = self.schedule.reschedule
        for peer in touched:
            reschedule(peer)
        return out

    def _account(self, seen, now, out, touched):
        """Per-peer effects of runs of authenticated data messages (kernel receive.c)."""
        for peer, r in seen.items():
            touched[peer] = True
            peer.endpoint = r.endpoint
            out.authenticated.append(r.endpoint)
            peer.rx_bytes += r.nbytes
            pairs = peer.keypairs
            for kp in r.keypairs:
                if kp is pairs.next and pairs.confirm(kp):
                    peer.handshake_complete(now)
                    out.event(C.EVENT_HANDSHAKE_COMPLETED, peer.public_key, None, r.endpoint)
                    peer.send_data([], now, out)  # staged packets can leave now
            t = peer.timers
            t.any_authenticated_packet_received(now)
            t.any_authenticated_packet_traversal(now)
            if r.data_messages:
                t.data_received(now, r.data_messages)
            if pairs.current in r.keypairs:
                peer.keep_key_fresh_on_receive(now, out)

    def ephemeral(self):
        """A fresh ephemeral private key from the injected random source."""
        return clamp(self.rng(32))
