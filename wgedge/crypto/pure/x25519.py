"""X25519 (RFC 7748 section 5) with the Montgomery ladder over Python integers.

MicroPython-safe. Python integers are not constant time: this backend is for hosts without
`cryptography`, where correctness and portability come first.
"""

_P = (1 << 255) - 19
_A24 = 121665


def _clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return int.from_bytes(bytes(k), "little")


def scalarmult(scalar, u_bytes):
    if len(scalar) != 32 or len(u_bytes) != 32:
        raise ValueError("X25519 keys are 32 bytes")
    k = _clamp(scalar)
    u = int.from_bytes(bytes(u_bytes), "little") & ((1 << 255) - 1)
    p = _P
    x1 = u % p
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = bit
        a = x2 + z2
        aa = a * a % p
        b = x2 - z2
        bb = b * b % p
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % p
        cb = c * b % p
        x3 = (da + cb) * (da + cb) % p
        z3 = x1 * (da - cb) * (da - cb) % p
        x2 = aa * bb % p
        z2 = e * (aa + _A24 * e) % p
    if swap:
        x2, x3 = x3, x2
        z2, z3 = z3, z2
    return (x2 * pow(z2, p - 2, p) % p).to_bytes(32, "little")


_BASE = (9).to_bytes(32, "little")


def public(private):
    return scalarmult(private, _BASE)
