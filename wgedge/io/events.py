"""What the core reports, made into log lines and status: handshake events and drops.

The core never logs (it has no clock of its own and must stay MicroPython-safe). Each entry
point's Output lists handshake events (`Output.events`: initiation sent, handshake completed,
handshake refused or given up, with the reason) and the reason of every drop
(`Output.dropped`). The loop hands each Output that has either to `EventLog.handle`, which:

- logs each event, and each drop that no event explained (data messages: decryption failed,
  replayed counter, unknown index...), at a level chosen by its reason;
- rate-limits per (event, reason): at most BURST lines per INTERVAL seconds each; the rest are
  counted and summarised in one line once the interval is over ("... and N more like this in
  the last 60 s"), so a flood adds a bounded number of lines whatever its rate. The loop
  wakes for that summary at `next_deadline()`;
- keeps, for `wgedge status`, the time and reason of the last handshake failure per
  configured peer and for the interface (`status_lines`).

No key material in a line: a peer is named by the first 8 characters of its base64 public
key (what `wg`-style tools show; public keys are not secret), never by a private or preshared
key. Memory is bounded: one limiter entry per (event, reason) pair, a fixed set, and one
failure record per configured peer (records of removed peers are pruned).
"""

import binascii
import time

from wgedge.core import consts as C
from wgedge.io.logger import DEBUG, INFO, WARNING, log

STATUS_OP = "wgedge-status=1"  # the control request answered by status_lines; `wg` never sends it
BURST = 10  # lines per (event, reason) per INTERVAL
INTERVAL = 60.0  # seconds

_SENT = C.EVENT_INITIATION_SENT
_COMPLETED = C.EVENT_HANDSHAKE_COMPLETED
_FAILED = C.EVENT_HANDSHAKE_FAILED
_DROPPED = "dropped"  # a drop no event explained (limiter key only)

# reason -> (level, words): how a refused handshake reads in the log
FAILURE_TEXT = {
    C.DROP_UNKNOWN_PEER: (WARNING, "unknown peer (its public key is not configured here)"),
    C.DROP_BAD_MAC1: (WARNING, "bad MAC (not made for this interface's public key)"),
    C.DROP_NEED_COOKIE: (INFO, "under load: answered with a cookie, the sender must retry"),
    C.DROP_RATELIMITED: (INFO, "under load: rate limited"),
    C.DROP_REPLAYED_TIMESTAMP: (WARNING, "stale or replayed timestamp"),
    C.DROP_HANDSHAKE_FLOOD: (WARNING, "too many initiations per second from this peer"),
    C.DROP_BAD_HANDSHAKE: (WARNING, "decryption failed (wrong keys or preshared key?)"),
    C.DROP_UNKNOWN_INDEX: (INFO, "answers a handshake we no longer wait for"),
    C.DROP_BAD_COOKIE: (WARNING, "cookie reply did not decrypt"),
    C.REASON_COOKIE_REQUIRED: (INFO, "peer is under load and sent a cookie; the next "
                                     "initiation carries it"),
    C.REASON_NO_RESPONSE: (WARNING, "no response for %d s; trying again when there is "
                                    "traffic for it" % C.REKEY_ATTEMPT_TIME),
    C.DROP_NO_ENDPOINT: (WARNING, "no endpoint to send the initiation to"),
    C.DROP_NO_PRIVATE_KEY: (WARNING, "the interface has no private key"),
}
# Drops no event explains. Data messages of a session are routine to lose now and then
# (debug); a handshake flood beyond what one batch takes is worth a warning.
DROP_LEVEL = {C.DROP_HANDSHAKE_OVERLOAD: WARNING, C.DROP_ROUTING_LOOP: WARNING,
              C.DROP_NESTED_TOO_BIG: WARNING}
# Drops logged once per INTERVAL (then summarised), not BURST times: a routing loop is one
# configuration mistake, however many packets it catches.
DROP_BURST = {C.DROP_ROUTING_LOOP: 1, C.DROP_NESTED_TOO_BIG: 1}
DROP_HINT = {C.DROP_ROUTING_LOOP: " (our own datagrams to a peer's endpoint came back through "
                                  "this interface: the route to that endpoint points into "
                                  "the tunnel)",
             C.DROP_NESTED_TOO_BIG: " (the route to a peer's endpoint leads into another "
                                    "tunnel interface, and these datagrams were larger than "
                                    "its MTU; nested tunnels are not fragmented: either a "
                                    "routing loop through two tunnels, which ends here, or "
                                    "this interface's MTU is too large for the tunnel it "
                                    "runs through)"}


def short_id(public_key):
    """The first 8 characters of a public key in base64: enough to tell peers apart."""
    if not public_key:
        return "?"
    return binascii.b2a_base64(public_key).decode()[:8]


def _endpoint_text(endpoint):
    if not endpoint:
        return "?"
    host, port = endpoint[0], endpoint[1]
    return ("[%s]:%d" if ":" in str(host) else "%s:%d") % (host, port)


class EventLog:
    def __init__(self, device, clock=time.monotonic, wall=time.time):
        self.device = device
        self.clock = clock
        self.wall = wall
        self._limits = {}  # (event, reason) -> [window start, lines, suppressed, level]
        self._summary_due = None  # earliest end of a window with suppressed lines
        self.up = {}  # public key -> True once a handshake completed, until one fails
        self.failures = {}  # public key -> [wall time, reason, count], configured peers only
        self.last_failure = None  # (wall time, reason, public key or None, endpoint or None)

    # --- the loop's side -------------------------------------------------------------------
    def handle(self, out):
        """Log and record what `out` reports (called only when it has events or drops)."""
        now = self.clock()
        explained = {}
        for kind, public_key, reason, endpoint in out.events:
            if kind == _FAILED:
                explained[reason] = explained.get(reason, 0) + 1
                self._failed(public_key, reason, endpoint, now)
            elif kind == _COMPLETED:
                first = not self.up.get(public_key)
                if first and public_key in self.device.peers:
                    self.up[public_key] = True
                level = INFO if first else DEBUG
                if self._admit((kind, "first" if first else None), level, now, 1):
                    log.log(level, "peer %s: handshake completed (%s)", short_id(public_key),
                            _endpoint_text(endpoint))
            elif kind == _SENT:
                if self._admit((kind, None), DEBUG, now, 1):
                    log.debug("peer %s: handshake initiation sent to %s%s", short_id(public_key),
                              _endpoint_text(endpoint),
                              " (retry)" if reason == C.REASON_RETRY else "")
        if out.events_lost and self._admit(("lost", None), INFO, now, out.events_lost):
            log.info("%d handshake events in one call were not itemised", out.events_lost)
        if out.dropped:
            counts = {}
            for reason in out.dropped:
                counts[reason] = counts.get(reason, 0) + 1
            for reason, n in counts.items():
                n -= explained.get(reason, 0)
                level = DROP_LEVEL.get(reason, DEBUG)
                if n > 0 and self._admit((_DROPPED, reason), level, now, n,
                                         DROP_BURST.get(reason, BURST)):
                    log.log(level, "dropped %d datagram(s) or packet(s): %s%s", n, reason,
                            DROP_HINT.get(reason, ""))

    def next_deadline(self):
        """When a summary of suppressed lines is due (monotonic seconds), or None."""
        return self._summary_due

    def flush(self, now=None):
        """Log the summaries of the windows that are over."""
        now = self.clock() if now is None else now
        due = None
        for key, st in self._limits.items():
            if not st[2]:
                continue
            end = st[0] + INTERVAL
            if end <= now:
                self._summary(key, st)
                st[0] = now
                st[1] = 0
            elif due is None or end < due:
                due = end
        self._summary_due = due

    # --- status --------------------------------------------------------------------------------
    def status_lines(self):
        """The `wgedge-status=1` answer, piece by piece (io/loop.py): drop counters, the last
        handshake failure of the interface and of each configured peer that had one."""
        peers = self.device.peers
        for key in [k for k in self.failures if k not in peers]:
            del self.failures[key]
        for key in [k for k in self.up if k not in peers]:
            del self.up[key]
        lines = ["drop=%s:%d" % item for item in sorted(self.device.drops.items())]
        if self.last_failure is not None:
            wall, reason, public_key, endpoint = self.last_failure
            lines += ["last_failure_time=%.3f" % wall, "last_failure_reason=" + reason,
                      "last_failure_peer=" + (short_id(public_key) if public_key else ""),
                      "last_failure_endpoint=" + (_endpoint_text(endpoint) if endpoint
                                                  else "")]
        yield "\n".join(lines) + "\n" if lines else ""
        for key, (wall, reason, count) in list(self.failures.items()):
            if key in peers:
                yield ("public_key=%s\nhandshake_failures=%d\nlast_failure_time=%.3f\n"
                       "last_failure_reason=%s\n" % (key.hex(), count, wall, reason))

    # --- lines ---------------------------------------------------------------------------------
    def _failed(self, public_key, reason, endpoint, now):
        """Record a failure; log it if its limit allows (formatting only then: under a flood
        this runs for each handshake message looked at)."""
        level, words = FAILURE_TEXT.get(reason, (WARNING, reason))
        wall = self.wall()
        self.last_failure = (wall, reason, public_key, endpoint)
        if public_key is not None and public_key in self.device.peers:
            rec = self.failures.get(public_key)
            if rec is None:
                self.failures[public_key] = [wall, reason, 1]
            else:
                rec[0], rec[1], rec[2] = wall, reason, rec[2] + 1
            if reason not in (C.DROP_NEED_COOKIE, C.REASON_COOKIE_REQUIRED, C.DROP_RATELIMITED):
                self.up[public_key] = False
        if not self._admit((_FAILED, reason), level, now, 1):
            return
        ep = _endpoint_text(endpoint)
        if public_key is None:
            log.log(level, "handshake from %s refused: %s [%s]", ep, words, reason)
        elif reason == C.DROP_UNKNOWN_PEER:
            log.log(level, "handshake from %s refused: peer %s is unknown (its public key is "
                    "not configured here) [%s]", ep, short_id(public_key), reason)
        else:
            log.log(level, "peer %s (%s): handshake failed: %s [%s]", short_id(public_key), ep,
                    words, reason)

    def _admit(self, key, level, now, n, burst=BURST):
        """True when a line of `key` (event, reason) may be written now: at most `burst` per
        INTERVAL; beyond that its `n` occurrences are counted for the summary instead."""
        if not log.enabled(level):
            return False
        st = self._limits.get(key)
        if st is None:
            st = self._limits[key] = [now, 0, 0, level]
        elif now - st[0] >= INTERVAL:
            if st[2]:
                self._summary(key, st)
            st[0] = now
            st[1] = 0
        if st[1] < burst:
            st[1] += 1
            return True
        st[2] += n
        end = st[0] + INTERVAL
        if self._summary_due is None or end < self._summary_due:
            self._summary_due = end
        return False

    @staticmethod
    def _summary(key, st):
        kind, reason = key
        log.log(st[3], "%d more like this suppressed in %d s: %s%s", st[2], INTERVAL,
                kind, " [%s]" % reason if reason else "")
        st[2] = 0
