"""TAI64N timestamps for handshake initiations (paper 5.4.2); wall time is passed in.

12 bytes: big-endian seconds since 1970 plus 2^62 + 10 (the TAI64 label), then big-endian
nanoseconds. Nanoseconds are rounded down to a multiple of 2^24 (about 16.8 ms), as the
kernel does, so a timestamp does not reveal precise timing of the host to observers who can
decrypt it; it still increases between initiations, which are at least 1/50 s apart.
Big-endian makes byte-wise comparison a time comparison.
"""

_BASE = (1 << 62) + 10
_WHITEN = (1 << 24) - 1


def timestamp(wall_seconds):
    secs = int(wall_seconds)
    nanos = int((wall_seconds - secs) * 1000000000) & ~_WHITEN
    return (_BASE + secs).to_bytes(8, "big") + nanos.to_bytes(4, "big")


def is_after(new, old):
    """True when timestamp `new` is strictly later than `old`."""
    return bytes(new) > bytes(old)
