"""ChaCha20 (RFC 8439 sections 2.1-2.4) and HChaCha20 (draft-irtf-cfrg-xchacha section 2.2).

MicroPython-safe, and written for speed on purpose: this is the pure backend's hot path.

How it is fast in plain Python: the 20 rounds run once for a whole run of blocks, not once per
block. Each of the 16 state words is one big integer holding that word of every block side by
side, one block per 64-bit lane (the word in the low 32 bits, the high 32 bits a guard that
catches the carry of an addition or the spill of a shift). Masking with 0x00000000FFFFFFFF in
every lane after each addition and rotation keeps every lane exactly a 32-bit ChaCha20 word, so
one big-integer operation does the work of one word operation in every block at once: a
1420-byte packet (23 blocks, plus the block that gives the Poly1305 key) runs the rounds once
instead of 24 times. The same round function with a single lane (the mask 0xFFFFFFFF) is plain
ChaCha20 and serves HChaCha20. The block counter is one 32-bit word (RFC 8439 2.3); past
2^32 - 1 it wraps to 0.
"""

M32 = 0xFFFFFFFF
# "expand 32-byte k" as four little-endian words (RFC 8439 section 2.3).
C0, C1, C2, C3 = 0x61707865, 0x3320646E, 0x79622D32, 0x6B206574

# Blocks computed side by side at most; longer messages go in runs of this many. 64 blocks
# (4 KiB) keeps the integers small enough that an operation costs little more than its
# interpreter overhead.
MAX_LANES = 64

_lane_cache = {}


def _double_rounds(x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, m):
    """The 20 rounds (10 column + diagonal double rounds) on lane-packed words, mask `m`."""
    for _ in range(10):
        x0 = (x0 + x4) & m
        x12 ^= x0
        x12 = ((x12 << 16) | (x12 >> 16)) & m
        x8 = (x8 + x12) & m
        x4 ^= x8
        x4 = ((x4 << 12) | (x4 >> 20)) & m
        x0 = (x0 + x4) & m
        x12 ^= x0
        x12 = ((x12 << 8) | (x12 >> 24)) & m
        x8 = (x8 + x12) & m
        x4 ^= x8
        x4 = ((x4 << 7) | (x4 >> 25)) & m
        x1 = (x1 + x5) & m
        x13 ^= x1
        x13 = ((x13 << 16) | (x13 >> 16)) & m
        x9 = (x9 + x13) & m
        x5 ^= x9
        x5 = ((x5 << 12) | (x5 >> 20)) & m
        x1 = (x1 + x5) & m
        x13 ^= x1
        x13 = ((x13 << 8) | (x13 >> 24)) & m
        x9 = (x9 + x13) & m
        x5 ^= x9
        x5 = ((x5 << 7) | (x5 >> 25)) & m
        x2 = (x2 + x6) & m
        x14 ^= x2
        x14 = ((x14 << 16) | (x14 >> 16)) & m
        x10 = (x10 + x14) & m
        x6 ^= x10
        x6 = ((x6 << 12) | (x6 >> 20)) & m
        x2 = (x2 + x6) & m
        x14 ^= x2
        x14 = ((x14 << 8) | (x14 >> 24)) & m
        x10 = (x10 + x14) & m
        x6 ^= x10
        x6 = ((x6 << 7) | (x6 >> 25)) & m
        x3 = (x3 + x7) & m
        x15 ^= x3
        x15 = ((x15 << 16) | (x15 >> 16)) & m
        x11 = (x11 + x15) & m
        x7 ^= x11
        x7 = ((x7 << 12) | (x7 >> 20)) & m
        x3 = (x3 + x7) & m
        x15 ^= x3
        x15 = ((x15 << 8) | (x15 >> 24)) & m
        x11 = (x11 + x15) & m
        x7 ^= x11
        x7 = ((x7 << 7) | (x7 >> 25)) & m
        x0 = (x0 + x5) & m
        x15 ^= x0
        x15 = ((x15 << 16) | (x15 >> 16)) & m
        x10 = (x10 + x15) & m
        x5 ^= x10
        x5 = ((x5 << 12) | (x5 >> 20)) & m
        x0 = (x0 + x5) & m
        x15 ^= x0
        x15 = ((x15 << 8) | (x15 >> 24)) & m
        x10 = (x10 + x15) & m
        x5 ^= x10
        x5 = ((x5 << 7) | (x5 >> 25)) & m
        x1 = (x1 + x6) & m
        x12 ^= x1
        x12 = ((x12 << 16) | (x12 >> 16)) & m
        x11 = (x11 + x12) & m
        x6 ^= x11
        x6 = ((x6 << 12) | (x6 >> 20)) & m
        x1 = (x1 + x6) & m
        x12 ^= x1
        x12 = ((x12 << 8) | (x12 >> 24)) & m
        x11 = (x11 + x12) & m
        x6 ^= x11
        x6 = ((x6 << 7) | (x6 >> 25)) & m
        x2 = (x2 + x7) & m
        x13 ^= x2
        x13 = ((x13 << 16) | (x13 >> 16)) & m
        x8 = (x8 + x13) & m
        x7 ^= x8
        x7 = ((x7 << 12) | (x7 >> 20)) & m
        x2 = (x2 + x7) & m
        x13 ^= x2
        x13 = ((x13 << 8) | (x13 >> 24)) & m
        x8 = (x8 + x13) & m
        x7 ^= x8
        x7 = ((x7 << 7) | (x7 >> 25)) & m
        x3 = (x3 + x4) & m
        x14 ^= x3
        x14 = ((x14 << 16) | (x14 >> 16)) & m
        x9 = (x9 + x14) & m
        x4 ^= x9
        x4 = ((x4 << 12) | (x4 >> 20)) & m
        x3 = (x3 + x4) & m
        x14 ^= x3
        x14 = ((x14 << 8) | (x14 >> 24)) & m
        x9 = (x9 + x14) & m
        x4 ^= x9
        x4 = ((x4 << 7) | (x4 >> 25)) & m
    return (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15)


def _lanes(n):
    """(one, mask, index) for n lanes: 1 in every lane, 0xFFFFFFFF in every lane, i in lane i."""
    lanes = _lane_cache.get(n)
    if lanes is None:
        one = int.from_bytes(b"\x01\0\0\0\0\0\0\0" * n, "little")
        index = 0
        for i in range(n - 1, -1, -1):
            index = (index << 64) | i
        lanes = (one, one * M32, index)
        _lane_cache[n] = lanes
    return lanes


def words(data):
    """Little-endian 32-bit words of `data` (a multiple of 4 bytes long), as a list."""
    return [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]


def key_words(key):
    if len(key) != 32:
        raise ValueError("ChaCha20 key must be 32 bytes")
    return words(key)


def nonce_words(nonce):
    if len(nonce) != 12:
        raise ValueError("ChaCha20 nonce must be 12 bytes")
    return words(nonce)


def _run(kw, nw, counter, n):
    """Keystream blocks counter .. counter+n-1 (n <= MAX_LANES) as 64*n bytes."""
    one, m, index = _lanes(n)
    state = (C0 * one, C1 * one, C2 * one, C3 * one,
             kw[0] * one, kw[1] * one, kw[2] * one, kw[3] * one,
             kw[4] * one, kw[5] * one, kw[6] * one, kw[7] * one,
             ((counter & M32) * one + index) & m, nw[0] * one, nw[1] * one, nw[2] * one)
    x = _double_rounds(*(state + (m,)))
    # Add the input state (RFC 8439 2.3), pair the words into 64-bit lanes (word 2j low, 2j+1
    # high: the little-endian byte order of the block), then lay the lanes out block by block.
    size = 8 * n
    pairs = []
    for j in range(0, 16, 2):
        low = (x[j] + state[j]) & m
        high = (x[j + 1] + state[j + 1]) & m
        pairs.append((low | (high << 32)).to_bytes(size, "little"))
    return b"".join([p[i:i + 8] for i in range(0, size, 8) for p in pairs])


def stream(kw, nw, counter, nblocks):
    """Keystream blocks counter .. counter+nblocks-1 (64*nblocks bytes) from key and nonce words."""
    if nblocks <= MAX_LANES:
        return _run(kw, nw, counter, nblocks) if nblocks else b""
    runs = []
    for first in range(0, nblocks, MAX_LANES):
        runs.append(_run(kw, nw, counter + first, min(MAX_LANES, nblocks - first)))
    return b"".join(runs)


def block(key, counter, nonce):
    """The 64-byte ChaCha20 block function (RFC 8439 section 2.3)."""
    return _run(key_words(key), nonce_words(nonce), counter, 1)


def keystream(key, counter, nonce, length):
    """`length` keystream bytes from block `counter`."""
    out = stream(key_words(key), nonce_words(nonce), counter, (length + 63) // 64)
    return out if len(out) == length else out[:length]


def xor(data, keystream_bytes):
    """data XOR keystream (the same length), as one big-integer operation."""
    n = len(data)
    if n == 0:
        return b""
    return (int.from_bytes(data, "little") ^ int.from_bytes(keystream_bytes, "little")).to_bytes(
        n, "little")


def encrypt(key, counter, nonce, data):
    """ChaCha20 encryption, which is also decryption (RFC 8439 section 2.4), from `counter`."""
    return xor(data, keystream(key, counter, nonce, len(data)))


def hchacha20(key, nonce16):
    """The HChaCha20 subkey: the rounds without the final addition, words 0-3 and 12-15."""
    if len(nonce16) != 16:
        raise ValueError("HChaCha20 nonce must be 16 bytes")
    x = _double_rounds(*([C0, C1, C2, C3] + key_words(key) + words(nonce16) + [M32]))
    out = 0
    for w in (x[15], x[14], x[13], x[12], x[3], x[2], x[1], x[0]):
        out = (out << 32) | w
    return out.to_bytes(32, "little")
