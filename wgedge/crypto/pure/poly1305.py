"""Poly1305 (RFC 8439 section 2.5) with Python big integers. MicroPython-safe.

Written for speed on purpose (every AEAD call runs it over the whole packet): four 16-byte
blocks per step of the loop, as acc = (acc + c1) r^4 + c2 r^3 + c3 r^2 + c4 r (mod p), which is
the RFC's one-block-at-a-time acc = (acc + c) r (mod p) unrolled four times, with one reduction
instead of four. The 2^128 that the RFC adds to every full block is added for all four at once.
"""

P = (1 << 130) - 5
_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
_HIBIT = 1 << 128


def mac(key, data):
    """The 16-byte tag of `data` under a one-time 32-byte key (r || s)."""
    if len(key) != 32:
        raise ValueError("Poly1305 key must be 32 bytes")
    from_bytes = int.from_bytes
    p = P
    r = from_bytes(key[:16], "little") & _CLAMP
    s = from_bytes(key[16:32], "little")
    r2 = r * r % p
    r3 = r2 * r % p
    r4 = r3 * r % p
    hibits = _HIBIT * (r4 + r3 + r2 + r) % p
    n = len(data)
    quads = n - n % 64
    acc = 0
    for i in range(0, quads, 64):
        acc = ((acc + from_bytes(data[i:i + 16], "little")) * r4
               + from_bytes(data[i + 16:i + 32], "little") * r3
               + from_bytes(data[i + 32:i + 48], "little") * r2
               + from_bytes(data[i + 48:i + 64], "little") * r + hibits) % p
    for i in range(quads, n, 16):
        block = data[i:i + 16]
        # A last partial block gets its 1 byte right after its end (RFC 8439 2.5.1).
        acc = (acc + from_bytes(block, "little") + (1 << (8 * len(block)))) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")
