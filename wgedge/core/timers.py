"""Per-peer timers, driven by named events (paper section 6; kernel timers.c).

Rules kept here:
- Send and receive code only report what happened (`data_sent`, `handshake_initiated`, ...);
  this module alone decides deadlines. Nothing here sends anything: `expired(now)` returns the
  names of the timers that fired and the peer acts on them.
- A deadline is a float in the caller's monotonic clock, or None when the timer is not armed.
- Retransmissions wait REKEY_TIMEOUT plus a random 0-333 ms jitter so that peers that lost
  packets together do not retry in lock step.
"""

from wgedge.core import consts as C

RETRANSMIT_HANDSHAKE = "retransmit_handshake"
SEND_KEEPALIVE = "send_keepalive"
NEW_HANDSHAKE = "new_handshake"
ZERO_KEY_MATERIAL = "zero_key_material"
PERSISTENT_KEEPALIVE = "persistent_keepalive"

# Jitter values in milliseconds: 0..333 for REKEY_TIMEOUT_JITTER_MAX = 0.333 s.
_JITTER_STEPS = int(C.REKEY_TIMEOUT_JITTER_MAX * 1000 + 0.5) + 1

# Fire order when several are due at once: cleanup before anything that would send.
_ORDER = (ZERO_KEY_MATERIAL, RETRANSMIT_HANDSHAKE, NEW_HANDSHAKE, SEND_KEEPALIVE,
          PERSISTENT_KEEPALIVE)


class Timers:
    def __init__(self, rng):
        self._rng = rng
        self.deadlines = {}  # timer name -> deadline
        self.handshake_attempts = 0
        self.need_another_keepalive = False
        self.sent_lastminute_handshake = False
        self.persistent_keepalive_interval = 0

    def _jitter(self):
        """0 to REKEY_TIMEOUT_JITTER_MAX seconds, in whole milliseconds."""
        r = self._rng(2)
        return ((r[0] | (r[1] << 8)) % _JITTER_STEPS) / 1000.0

    def _mod(self, name, deadline):
        self.deadlines[name] = deadline

    def _del(self, name):
        if name in self.deadlines:
            del self.deadlines[name]

    # --- events -----------------------------------------------------------------------------
    def data_sent(self, now):
        """A transport packet with data left: expect an answer, else re-handshake."""
        if NEW_HANDSHAKE not in self.deadlines:
            self._mod(NEW_HANDSHAKE, now + C.KEEPALIVE_TIMEOUT + C.REKEY_TIMEOUT + self._jitter())

    def data_received(self, now, count=1):
        """`count` transport packets with data arrived: answer with a keepalive if we stay
        silent. The same state as `count` calls for one packet each (the kernel's per-packet
        hook), so how the engine batches its calls changes nothing."""
        if SEND_KEEPALIVE not in self.deadlines:
            self._mod(SEND_KEEPALIVE, now + C.KEEPALIVE_TIMEOUT)
            count -= 1
        if count > 0:
            self.need_another_keepalive = True

    def any_authenticated_packet_sent(self, now):
        self._del(SEND_KEEPALIVE)

    def any_authenticated_packet_received(self, now):
        self._del(NEW_HANDSHAKE)

    def any_authenticated_packet_traversal(self, now):
        if self.persistent_keepalive_interval:
            self._mod(PERSISTENT_KEEPALIVE, now + self.persistent_keepalive_interval)

    def persistent_keepalive_set(self, interval, now, has_endpoint):
        """The persistent keepalive interval became `interval` (0: off). One enabled where
        none was sends a keepalive now (as wg expects) if the peer has an endpoint, through
        the timer path, so enabling it for many peers at once is spread over the device's
        bounded timer calls instead of sent in one go."""
        was = self.persistent_keepalive_interval
        self.persistent_keepalive_interval = interval
        if not interval:
            self._del(PERSISTENT_KEEPALIVE)
        elif not was and has_endpoint:
            self._mod(PERSISTENT_KEEPALIVE, now)

    def handshake_initiated(self, now):
        self._mod(RETRANSMIT_HANDSHAKE, now + C.REKEY_TIMEOUT + self._jitter())

    def handshake_complete(self, now):
        self._del(RETRANSMIT_HANDSHAKE)
        self.handshake_attempts = 0
        self.sent_lastminute_handshake = False

    def session_derived(self, now):
        self._mod(ZERO_KEY_MATERIAL, now + C.ZERO_KEYS_AFTER)

    # --- used by the peer when timers fire -------------------------------------------------
    def give_up_handshake(self, now):
        """REKEY_ATTEMPT_TIME passed without a handshake: stop, and schedule key zeroing."""
        self._del(SEND_KEEPALIVE)
        if ZERO_KEY_MATERIAL not in self.deadlines:
            self._mod(ZERO_KEY_MATERIAL, now + C.ZERO_KEYS_AFTER)

    def rearm_keepalive_if_needed(self, now):
        if self.need_another_keepalive:
            self.need_another_keepalive = False
            self._mod(SEND_KEEPALIVE, now + C.KEEPALIVE_TIMEOUT)

    def stop_all(self):
        self.deadlines = {}

    def next_deadline(self):
        best = None
        for d in self.deadlines.values():
            if best is None or d < best:
                best = d
        return best

    def expired(self, now):
        """Disarm and return, in a fixed order, the names of the timers due at `now`."""
        fired = []
        for name in _ORDER:
            d = self.deadlines.get(name)
            if d is not None and d <= now:
                del self.deadlines[name]
                fired.append(name)
        return fired
