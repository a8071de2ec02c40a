"""The handshake gate: whether a handshake message may be looked at, answered with a cookie,
or dropped, decided in one place (kernel receive.c wg_receive_handshake_packet and cookie.c;
BoringTun noise/rate_limiter.rs verify_packet).

Rules kept here, in the order `admit` applies them:
1. At most MAX_HANDSHAKES_PER_BATCH handshake messages (initiations, responses, cookie
   replies) per received batch; beyond that they are dropped unread and the device counts as
   under load, so a flood cannot crowd transport data out of a batch.
2. A cookie reply passes (it is authenticated by its own AEAD against the mac1 we sent).
3. Initiations and responses need a valid mac1, checked before any DH (paper 5.3).
4. Not under load: a valid mac1 is enough.
5. Under load (more than `load_threshold` handshake messages within a second, or
   `force_under_load`, and for UNDER_LOAD_AFTER seconds after): a message with a valid mac2
   for its source's cookie passes if that source's rate limit allows; one without gets a
   cookie reply if the source's cookie-reply limit allows (so a flood from a few addresses
   gets a few cookies, not one per packet); anything else is DROP_RATELIMITED.

    verdict              what the device does
    ALLOW                processes the message
    SEND_COOKIE          sends cookie_reply(...) to the source, counts DROP_NEED_COOKIE
    a DROP_* reason      counts it

The gate changes only its own state (load meter, rate-limit buckets, cookie secret), never a
peer: an unauthenticated message reaches nothing else.
"""

from wgedge.core import consts as C
from wgedge.core import cookie, ipaddr, wire
from wgedge.core.ratelimiter import RateLimiter

ALLOW = "allow"
SEND_COOKIE = "send-cookie"

_U32 = wire.Struct("<I").unpack_from


def source_key(limiter, endpoint):
    """The rate-limit key of an endpoint's host: IPv4 text as it is, else the limiter's key
    for the parsed address (an IPv6 /64), or the host itself if it does not parse."""
    host = endpoint[0]
    if type(host) is str and ":" not in host:
        # IPv4 text from the socket layer is canonical, so it serves as the key itself: under
        # a flood this runs for every message, and parsing it cost a tenth of the daemon's time.
        return host
    try:
        return limiter.key_for(ipaddr.parse_ip(host))
    except (ValueError, TypeError, IndexError):
        return host


class HandshakeGate:
    def __init__(self, crypto, rng):
        self.rng = rng
        self.cookies = cookie.CookieChecker(crypto)
        self.ratelimiter = RateLimiter()  # handshakes with a valid cookie, under load
        self.cookie_ratelimiter = RateLimiter()  # cookie replies, under load
        self.load_threshold = 512  # handshake messages per second before cookie mode
        self.force_under_load = False
        self._load_window_start = None
        self._load_count = 0
        self._last_under_load = None
        self._batch_count = 0

    def set_static_public(self, public):
        self.cookies.set_static_public(public)

    def new_batch(self):
        """A received batch begins: rule 1 counts from zero again."""
        self._batch_count = 0

    def under_load(self, now):
        """Count one handshake message and say whether we are under load (kernel semantics:
        load seen now, or within the last UNDER_LOAD_AFTER seconds)."""
        start = self._load_window_start
        if start is None or now - start >= 1.0:
            self._load_window_start = now
            self._load_count = 0
        self._load_count += 1
        if self.force_under_load or self._load_count > self.load_threshold:
            self._last_under_load = now
            return True
        last = self._last_under_load
        if last is not None:
            if now - last < C.UNDER_LOAD_AFTER:
                return True
            self._last_under_load = None
        return False

    def admit(self, data, mtype, endpoint, now):
        """The verdict on handshake message `data` (classified as `mtype`) from `endpoint`:
        ALLOW, SEND_COOKIE or a DROP_* reason (the rules at the top of this file)."""
        self._batch_count += 1
        if self._batch_count > C.MAX_HANDSHAKES_PER_BATCH:
            self._last_under_load = now
            return C.DROP_HANDSHAKE_OVERLOAD
        if mtype == C.MSG_COOKIE_REPLY:
            return ALLOW
        under_load = self.under_load(now)
        state = self.cookies.validate(data, wire.mac1_offset(mtype), endpoint, under_load, now,
                                      self.rng)
        if state == cookie.INVALID_MAC:
            return C.DROP_BAD_MAC1
        if not under_load:
            return ALLOW
        if state == cookie.VALID_MAC_WITH_COOKIE:
            limiter, verdict = self.ratelimiter, ALLOW
        else:
            limiter, verdict = self.cookie_ratelimiter, SEND_COOKIE
        if not limiter.allow(source_key(limiter, endpoint), now):
            return C.DROP_RATELIMITED
        return verdict

    def cookie_reply(self, data, mtype, endpoint, now):
        """The cookie reply to send to `endpoint` for a message admit() answered SEND_COOKIE."""
        sender = _U32(data, 4)[0]
        return self.cookies.make_reply(data, wire.mac1_offset(mtype), sender, endpoint, now,
                                       self.rng)
