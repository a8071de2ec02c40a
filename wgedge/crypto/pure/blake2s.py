"""BLAKE2s (RFC 7693) with optional key and digest size, and HMAC-BLAKE2s (RFC 2104).

MicroPython-safe (MicroPython's hashlib has no BLAKE2s). Written for speed on purpose: the
handshake hashes and MACs every message several times. The state lives in 16 local variables,
G is written out in full, and each round unpacks its row of SIGMA into 16 locals that pick the
message words.
"""

M = 0xFFFFFFFF
IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
      0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
SIGMA = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    (14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3),
    (11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4),
    (7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8),
    (9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13),
    (2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9),
    (12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11),
    (13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10),
    (6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5),
    (10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0),
)


def _compress(h, block, t, last):
    w = int.from_bytes(block, "little")
    m = [(w >> i) & M for i in range(0, 512, 32)]
    v0, v1, v2, v3, v4, v5, v6, v7 = h
    v8, v9, v10, v11, v12, v13, v14, v15 = IV
    v12 ^= t & M
    v13 ^= (t >> 32) & M
    if last:
        v14 ^= M
    for s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15 in SIGMA:
        v0 = (v0 + v4 + m[s0]) & M
        v12 ^= v0
        v12 = (v12 >> 16) | ((v12 << 16) & M)
        v8 = (v8 + v12) & M
        v4 ^= v8
        v4 = (v4 >> 12) | ((v4 << 20) & M)
        v0 = (v0 + v4 + m[s1]) & M
        v12 ^= v0
        v12 = (v12 >> 8) | ((v12 << 24) & M)
        v8 = (v8 + v12) & M
        v4 ^= v8
        v4 = (v4 >> 7) | ((v4 << 25) & M)
        v1 = (v1 + v5 + m[s2]) & M
        v13 ^= v1
        v13 = (v13 >> 16) | ((v13 << 16) & M)
        v9 = (v9 + v13) & M
        v5 ^= v9
        v5 = (v5 >> 12) | ((v5 << 20) & M)
        v1 = (v1 + v5 + m[s3]) & M
        v13 ^= v1
        v13 = (v13 >> 8) | ((v13 << 24) & M)
        v9 = (v9 + v13) & M
        v5 ^= v9
        v5 = (v5 >> 7) | ((v5 << 25) & M)
        v2 = (v2 + v6 + m[s4]) & M
        v14 ^= v2
        v14 = (v14 >> 16) | ((v14 << 16) & M)
        v10 = (v10 + v14) & M
        v6 ^= v10
        v6 = (v6 >> 12) | ((v6 << 20) & M)
        v2 = (v2 + v6 + m[s5]) & M
        v14 ^= v2
        v14 = (v14 >> 8) | ((v14 << 24) & M)
        v10 = (v10 + v14) & M
        v6 ^= v10
        v6 = (v6 >> 7) | ((v6 << 25) & M)
        v3 = (v3 + v7 + m[s6]) & M
        v15 ^= v3
        v15 = (v15 >> 16) | ((v15 << 16) & M)
        v11 = (v11 + v15) & M
        v7 ^= v11
        v7 = (v7 >> 12) | ((v7 << 20) & M)
        v3 = (v3 + v7 + m[s7]) & M
        v15 ^= v3
        v15 = (v15 >> 8) | ((v15 << 24) & M)
        v11 = (v11 + v15) & M
        v7 ^= v11
        v7 = (v7 >> 7) | ((v7 << 25) & M)
        v0 = (v0 + v5 + m[s8]) & M
        v15 ^= v0
        v15 = (v15 >> 16) | ((v15 << 16) & M)
        v10 = (v10 + v15) & M
        v5 ^= v10
        v5 = (v5 >> 12) | ((v5 << 20) & M)
        v0 = (v0 + v5 + m[s9]) & M
        v15 ^= v0
        v15 = (v15 >> 8) | ((v15 << 24) & M)
        v10 = (v10 + v15) & M
        v5 ^= v10
        v5 = (v5 >> 7) | ((v5 << 25) & M)
        v1 = (v1 + v6 + m[s10]) & M
        v12 ^= v1
        v12 = (v12 >> 16) | ((v12 << 16) & M)
        v11 = (v11 + v12) & M
        v6 ^= v11
        v6 = (v6 >> 12) | ((v6 << 20) & M)
        v1 = (v1 + v6 + m[s11]) & M
        v12 ^= v1
        v12 = (v12 >> 8) | ((v12 << 24) & M)
        v11 = (v11 + v12) & M
        v6 ^= v11
        v6 = (v6 >> 7) | ((v6 << 25) & M)
        v2 = (v2 + v7 + m[s12]) & M
        v13 ^= v2
        v13 = (v13 >> 16) | ((v13 << 16) & M)
        v8 = (v8 + v13) & M
        v7 ^= v8
        v7 = (v7 >> 12) | ((v7 << 20) & M)
        v2 = (v2 + v7 + m[s13]) & M
        v13 ^= v2
        v13 = (v13 >> 8) | ((v13 << 24) & M)
        v8 = (v8 + v13) & M
        v7 ^= v8
        v7 = (v7 >> 7) | ((v7 << 25) & M)
        v3 = (v3 + v4 + m[s14]) & M
        v14 ^= v3
        v14 = (v14 >> 16) | ((v14 << 16) & M)
        v9 = (v9 + v14) & M
        v4 ^= v9
        v4 = (v4 >> 12) | ((v4 << 20) & M)
        v3 = (v3 + v4 + m[s15]) & M
        v14 ^= v3
        v14 = (v14 >> 8) | ((v14 << 24) & M)
        v9 = (v9 + v14) & M
        v4 ^= v9
        v4 = (v4 >> 7) | ((v4 << 25) & M)
    return [h[0] ^ v0 ^ v8, h[1] ^ v1 ^ v9, h[2] ^ v2 ^ v10, h[3] ^ v3 ^ v11,
            h[4] ^ v4 ^ v12, h[5] ^ v5 ^ v13, h[6] ^ v6 ^ v14, h[7] ^ v7 ^ v15]


def blake2s(data, digest_size=32, key=b""):
    if not 1 <= digest_size <= 32:
        raise ValueError("BLAKE2s digest size must be 1-32")
    if len(key) > 32:
        raise ValueError("BLAKE2s key must be at most 32 bytes")
    h = list(IV)
    h[0] ^= 0x01010000 ^ (len(key) << 8) ^ digest_size
    data = bytes(data)
    if key:
        data = bytes(key) + bytes(64 - len(key)) + data
    n = len(data)
    t = 0
    offset = 0
    # Every block but the last is compressed as it comes; the last (possibly partial, or
    # empty for empty input) is padded and flagged.
    while n - offset > 64:
        t += 64
        h = _compress(h, data[offset:offset + 64], t, False)
        offset += 64
    rest = data[offset:]
    t += len(rest)
    h = _compress(h, rest + bytes(64 - len(rest)), t, True)
    out = 0
    for i in range(7, -1, -1):
        out = (out << 32) | h[i]
    return out.to_bytes(32, "little")[:digest_size]


_IPAD = int.from_bytes(b"\x36" * 64, "little")
_OPAD = int.from_bytes(b"\x5c" * 64, "little")


def hmac(key, data):
    """HMAC-BLAKE2s-256 (RFC 2104 with BLAKE2s's 64-byte block; longer keys are hashed first)."""
    if len(key) > 64:
        key = blake2s(key)
    k = int.from_bytes(key, "little")  # little-endian: the zero padding goes on the right
    inner = blake2s((k ^ _IPAD).to_bytes(64, "little") + bytes(data))
    return blake2s((k ^ _OPAD).to_bytes(64, "little") + inner)
