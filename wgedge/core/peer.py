"""One peer: its handshake, keypairs, timers, staged packets, endpoint and counters.

Rules kept here:
- Packets for a peer without a usable sending keypair are staged (at most
  MAX_STAGED_PACKETS, oldest dropped first) and a handshake is started; they leave, in order,
  as soon as a keypair can send (kernel send.c: wg_packet_send_staged_packets).
- Initiations are sent at most once per REKEY_TIMEOUT; retries come only from the
  retransmit timer and stop after MAX_TIMER_HANDSHAKES.
- `rx_bytes`/`tx_bytes` count whole WireGuard datagrams exchanged with this peer, handshake
  messages included, as the kernel and wireguard-go do.
- Every method that may emit something takes `out` (the device's Output) and appends to it;
  an initiation sent, or one that could not be, and a handshake given up are also events.

The per-packet encryption loop in `send_data` is the hot path and is written for speed.
"""

from wgedge.core import consts as C
from wgedge.core import noise, tai64n, timers, wire
from wgedge.core.cookie import CookieState
from wgedge.core.keypair import Keypair, Keypairs

_HEADER = wire.DATA_HEADER.pack
_HEADER_INTO = wire.DATA_HEADER.pack_into
_NONCE = wire.NONCE.pack
_PAD = [bytes(n) for n in range(C.PADDING_MULTIPLE)]


class Peer:
    def __init__(self, device, public_key):
        self.device = device
        self.public_key = public_key
        self.handshake = noise.Handshake(public_key)
        self.cookie = CookieState(device.crypto, public_key)
        self.keypairs = Keypairs(device.indices.delete_keypair)
        self.timers = timers.Timers(device.rng)
        self.handshake_index = None  # our index in device.indices while a handshake is ours
        self.endpoint = None
        self.staged = []
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.last_handshake = None  # monotonic time of the last completed handshake
        self.last_sent_handshake = None
        self.deadline = None  # what the device's timer heap believes our next deadline is
        self.removed = False

    # --- configuration ---------------------------------------------------------------------
    @property
    def preshared_key(self):
        return self.handshake.preshared_key

    def set_preshared_key(self, key):
        self.handshake.preshared_key = key or noise.ZERO_KEY

    @property
    def persistent_keepalive_interval(self):
        return self.timers.persistent_keepalive_interval

    def set_persistent_keepalive(self, interval, now):
        """Set the interval; a newly enabled one sends a keepalive at the next timer call
        (the caller re-reads our deadlines: Device.touch)."""
        self.timers.persistent_keepalive_set(interval, now, self.endpoint is not None)

    # --- sending ---------------------------------------------------------------------------
    def _new_handshake_index(self):
        """A fresh local index for the handshake we start or answer; the old one is freed."""
        indices = self.device.indices
        indices.delete_handshake(self.handshake_index, self)
        self.handshake_index = index = indices.new_handshake(self)
        return index

    def _free_handshake_index(self):
        self.device.indices.delete_handshake(self.handshake_index, self)
        self.handshake_index = None

    def _emit(self, datagram, out):
        if self.endpoint is None:
            out.drop(C.DROP_NO_ENDPOINT)
            return False
        out.udp.append((datagram, self.endpoint))
        self.tx_bytes += len(datagram)
        return True

    def send_initiation(self, now, out, is_retry=False):
        if not is_retry:
            self.timers.handshake_attempts = 0
        last = self.last_sent_handshake
        if last is not None and now - last < C.REKEY_TIMEOUT:
            return  # rate limited: one initiation per REKEY_TIMEOUT
        dev = self.device
        self.last_sent_handshake = now
        hs = self.handshake
        index = self._new_handshake_index()
        ephemeral = dev.ephemeral()
        fields = dev.noise.create_initiation(hs, index, ephemeral,
                                             tai64n.timestamp(now + dev.wall_offset))
        if fields is None:
            self._free_handshake_index()
            out.refused(C.DROP_NO_PRIVATE_KEY, self.public_key, None)
            return
        msg = wire.pack_initiation(*fields)
        self.cookie.add_macs(msg, C.INITIATION_MAC1_OFFSET, now)
        t = self.timers
        t.any_authenticated_packet_traversal(now)
        t.any_authenticated_packet_sent(now)
        if self._emit(bytes(msg), out):
            out.event(C.EVENT_INITIATION_SENT, self.public_key, C.REASON_RETRY if is_retry
                      else None, self.endpoint)
        else:
            out.event(C.EVENT_HANDSHAKE_FAILED, self.public_key, C.DROP_NO_ENDPOINT, None)
        t.handshake_initiated(now)

    def send_response(self, now, out):
        """Answer the initiation just consumed (paper 5.4.3); as responder the session
        starts now, its keypair waiting in `next` for the initiator's first message."""
        dev = self.device
        self.last_sent_handshake = now
        index = self._new_handshake_index()
        fields = dev.noise.create_response(self.handshake, index, dev.ephemeral())
        if fields is None:
            self._free_handshake_index()
            out.refused(C.DROP_BAD_HANDSHAKE, self.public_key, self.endpoint)
            return
        msg = wire.pack_response(*fields)
        self.cookie.add_macs(msg, C.RESPONSE_MAC1_OFFSET, now)
        if self.begin_session(now) is not None:
            t = self.timers
            t.any_authenticated_packet_traversal(now)
            t.any_authenticated_packet_sent(now)
            self._emit(bytes(msg), out)

    def send_keepalive(self, now, out):
        """Send staged packets, or an empty one if none are staged (kernel semantics)."""
        self.send_data([] if self.staged else [b""], now, out)

    def send_data(self, packets, now, out):
        """Encrypt and emit `packets` (plus any staged before them), or stage them. Hot
        path, written for speed."""
        staged = self.staged
        if staged:
            staged.extend(packets)
            packets = staged
            self.staged = []
        if not packets:
            return
        kp = self.keypairs.current
        if kp is None or not kp.can_send(now) or self.endpoint is None:
            self._stage(packets, out)
            if kp is not None and kp.sending_valid and not kp.can_send(now):
                kp.sending_valid = False
            self.send_initiation(now, out)
            return
        counter = kp.sending_counter
        if counter + len(packets) > C.REJECT_AFTER_MESSAGES:
            kp.sending_valid = False
            self._stage(packets, out)
            self.send_initiation(now, out)
            return
        # Hot path. With an AEAD that can encrypt in place (OpenSSL's), the whole batch is
        # written into one buffer (header + ciphertext per datagram) and handed on as trains
        # of equal-sized datagrams (Output.trains): one allocation per batch instead of three
        # per packet, and no per-packet object at all on the way to the UDP socket.
        mtu = self.device.mtu
        remote = kp.remote_index
        endpoint = self.endpoint
        pad_table = _PAD
        # Padding to a multiple of 16 (never past the MTU); `total` is the batch's datagram
        # bytes. A full-sized packet (the usual case) takes the first test only.
        padded = []
        keep = padded.append
        total = 0
        for p in packets:
            n = len(p)
            if n & 15 and n < mtu:
                pad = -n & 15
                if n + pad > mtu:
                    pad = mtu - n
                p = p + pad_table[pad]
                n += pad
            total += n
            keep(p)
        data_sent = total > 0  # some packet was not a keepalive
        total += 32 * len(padded)
        encrypt_into = kp.encrypt_into
        if encrypt_into is not None:
            buf = bytearray(total)
            view = memoryview(buf)
            pack_into = _HEADER_INTO
            trains = out.trains
            off = start = size = 0  # the open train: buf[start:off], datagrams of `size`
            for p in padded:
                n = len(p) + 32
                end = off + n
                pack_into(buf, off, 4, remote, counter)
                encrypt_into(_NONCE(0, counter), p, None, view[off + 16:end])
                counter += 1
                if n != size:
                    if n < size:  # shorter: the train's last datagram
                        trains.append((view[start:end], size, endpoint))
                        start = end
                        size = 0
                    else:  # longer (or the first): a new train
                        if off > start:
                            trains.append((view[start:off], size, endpoint))
                        start = off
                        size = n
                off = end
            if off > start:
                trains.append((view[start:off], size, endpoint))
        else:
            append = out.udp.append
            encrypt = kp.sending.encrypt
            for p in padded:
                append((_HEADER(4, remote, counter) + encrypt(_NONCE(0, counter), p, None),
                        endpoint))
                counter += 1
        kp.sending_counter = counter
        self.tx_bytes += total
        t = self.timers
        t.any_authenticated_packet_traversal(now)
        t.any_authenticated_packet_sent(now)
        if data_sent:
            t.data_sent(now)
        # Keep the key fresh (paper 6.2): rekey by message count, or by age when we initiated.
        if counter > C.REKEY_AFTER_MESSAGES or (
            kp.i_am_initiator and now - kp.created >= C.REKEY_AFTER_TIME
        ):
            self.send_initiation(now, out)

    def _stage(self, packets, out):
        staged = self.staged
        staged.extend(p for p in packets if p)  # keepalives are never staged
        excess = len(staged) - C.MAX_STAGED_PACKETS
        if excess > 0:
            del staged[:excess]
            for _ in range(excess):
                out.drop(C.DROP_STAGED_OVERFLOW)

    # --- receiving (called by the device after authentication) -----------------------------
    def keep_key_fresh_on_receive(self, now, out):
        """Initiator near REJECT_AFTER_TIME: one last-minute handshake before keys die."""
        t = self.timers
        if t.sent_lastminute_handshake:
            return
        kp = self.keypairs.current
        if (kp is not None and kp.sending_valid and kp.i_am_initiator and now - kp.created
                >= C.REJECT_AFTER_TIME - C.KEEPALIVE_TIMEOUT - C.REKEY_TIMEOUT):
            t.sent_lastminute_handshake = True
            self.send_initiation(now, out)

    def begin_session(self, now):
        """Turn the finished handshake into a keypair; return it, or None."""
        dev = self.device
        derived = dev.noise.derive_keys(self.handshake)
        if derived is None:
            return None
        send_key, recv_key, initiator, local_index, remote_index = derived
        kp = Keypair(dev.crypto, self, send_key, recv_key, initiator, local_index,
                     remote_index, now)
        dev.indices.swap_to_keypair(local_index, kp)
        if local_index == self.handshake_index:
            self.handshake_index = None  # the index now names the keypair
        self.keypairs.add(kp)
        self.timers.session_derived(now)
        return kp

    def handshake_complete(self, now):
        self.timers.handshake_complete(now)
        self.last_handshake = now

    # --- timers ------------------------------------------------------------------------------
    def on_timers(self, now, out):
        t = self.timers
        for name in t.expired(now):
            if name == timers.ZERO_KEY_MATERIAL:
                self.zero_key_material()
            elif name == timers.RETRANSMIT_HANDSHAKE:
                if t.handshake_attempts > C.MAX_TIMER_HANDSHAKES:
                    t.give_up_handshake(now)
                    out.event(C.EVENT_HANDSHAKE_FAILED, self.public_key, C.REASON_NO_RESPONSE,
                              self.endpoint)
                    for _ in self.staged:
                        out.drop(C.DROP_HANDSHAKE_GAVE_UP)
                    self.staged = []
                else:
                    t.handshake_attempts += 1
                    self.send_initiation(now, out, True)
            elif name == timers.NEW_HANDSHAKE:
                self.send_initiation(now, out)
            elif name == timers.SEND_KEEPALIVE:
                self.send_keepalive(now, out)
                t.rearm_keepalive_if_needed(now)
            elif name == timers.PERSISTENT_KEEPALIVE:
                if t.persistent_keepalive_interval:
                    self.send_keepalive(now, out)

    def zero_key_material(self):
        """3 x REJECT_AFTER_TIME without a handshake: forget every key (paper 6.3)."""
        self.clear_handshake()
        self.keypairs.clear()

    def clear_handshake(self):
        """Abandon any handshake in flight and free its index."""
        self._free_handshake_index()
        self.handshake.clear()

    def expire_keypairs(self):
        self.keypairs.expire_current()

    def shutdown(self):
        """Peer removed: forget keys, indices, timers and staged packets."""
        self.zero_key_material()
        self.timers.stop_all()
        self.staged = []
        self.removed = True
