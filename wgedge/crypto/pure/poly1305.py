"""Poly1305 (RFC 8439 section 2.5) with Python big integers. MicroPython-safe."""

_P = (1 << 130) - 5
_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF


def mac(key, data):
    """16-byte tag of `data` under a one-time 32-byte key."""
    r = int.from_bytes(key[:16], "little") & _CLAMP
    s = int.from_bytes(key[16:32], "little")
    acc = 0
    n = len(data)
    data = bytes(data)
    for i in range(0, n - 15, 16):
        acc = ((acc + int.from_bytes(data[i:i + 16], "little") + (1 << 128)) * r) % _P
    rest = n % 16
    if rest:
        tail = data[n - rest:]
        acc = ((acc + int.from_bytes(tail, "little") + (1 << (8 * rest))) * r) % _P
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")
