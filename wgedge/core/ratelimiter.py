"""Per-source token buckets for handshake messages under load (kernel ratelimiter.c).

Rules kept here:
- Each source (an IPv4 address, or an IPv6 /64) may have RATELIMIT_PACKETS_PER_SECOND
  handshake messages accepted per second, with bursts of RATELIMIT_BURST.
- Entries idle for more than a second are forgotten (swept at most once a second), and the
  table never holds more than RATELIMIT_MAX_SOURCES: when it is full, new sources are refused.
- `now` is passed in; nothing here reads a clock.
"""

from wgedge.core import consts as C

_COST = 1.0 / C.RATELIMIT_PACKETS_PER_SECOND
_MAX_TOKENS = _COST * C.RATELIMIT_BURST


class RateLimiter:
    def __init__(self, max_sources=C.RATELIMIT_MAX_SOURCES):
        self.table = {}  # key -> [tokens (seconds of credit), last time seen]
        self.max_sources = max_sources
        self._last_sweep = None

    @staticmethod
    def key_for(addr):
        """IPv4 addresses limit one by one; IPv6 by /64, as one host may own a whole /64."""
        return bytes(addr[:8]) if len(addr) == 16 else bytes(addr)

    def _sweep(self, now):
        old = [k for k, e in self.table.items() if now - e[1] > 1.0]
        for k in old:
            del self.table[k]
        self._last_sweep = now

    def allow(self, key, now):
        if self._last_sweep is None or now - self._last_sweep >= 1.0:
            self._sweep(now)
        entry = self.table.get(key)
        if entry is None:
            if len(self.table) >= self.max_sources:
                self._sweep(now)
                if len(self.table) >= self.max_sources:
                    return False
            self.table[key] = [_MAX_TOKENS - _COST, now]
            return True
        tokens = entry[0] + (now - entry[1])
        if tokens > _MAX_TOKENS:
            tokens = _MAX_TOKENS
        entry[1] = now
        if tokens >= _COST - 1e-9:
            entry[0] = tokens - _COST
            return True
        entry[0] = tokens
        return False
