"""ChaCha20 (RFC 8439 section 2.3-2.4) and HChaCha20 (draft-irtf-cfrg-xchacha) in plain Python.

MicroPython-safe. The double round is unrolled on local variables, the fastest shape plain
Python allows; the keystream is XORed with the data as one big integer.
"""

import struct

M = 0xFFFFFFFF
_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"


def _rounds(x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15):
    for _ in range(10):
        x0 = (x0 + x4) & M
        x12 ^= x0
        x12 = ((x12 << 16) & M) | (x12 >> 16)
        x8 = (x8 + x12) & M
        x4 ^= x8
        x4 = ((x4 << 12) & M) | (x4 >> 20)
        x0 = (x0 + x4) & M
        x12 ^= x0
        x12 = ((x12 << 8) & M) | (x12 >> 24)
        x8 = (x8 + x12) & M
        x4 ^= x8
        x4 = ((x4 << 7) & M) | (x4 >> 25)
        x1 = (x1 + x5) & M
        x13 ^= x1
        x13 = ((x13 << 16) & M) | (x13 >> 16)
        x9 = (x9 + x13) & M
        x5 ^= x9
        x5 = ((x5 << 12) & M) | (x5 >> 20)
        x1 = (x1 + x5) & M
        x13 ^= x1
        x13 = ((x13 << 8) & M) | (x13 >> 24)
        x9 = (x9 + x13) & M
        x5 ^= x9
        x5 = ((x5 << 7) & M) | (x5 >> 25)
        x2 = (x2 + x6) & M
        x14 ^= x2
        x14 = ((x14 << 16) & M) | (x14 >> 16)
        x10 = (x10 + x14) & M
        x6 ^= x10
        x6 = ((x6 << 12) & M) | (x6 >> 20)
        x2 = (x2 + x6) & M
        x14 ^= x2
        x14 = ((x14 << 8) & M) | (x14 >> 24)
        x10 = (x10 + x14) & M
        x6 ^= x10
        x6 = ((x6 << 7) & M) | (x6 >> 25)
        x3 = (x3 + x7) & M
        x15 ^= x3
        x15 = ((x15 << 16) & M) | (x15 >> 16)
        x11 = (x11 + x15) & M
        x7 ^= x11
        x7 = ((x7 << 12) & M) | (x7 >> 20)
        x3 = (x3 + x7) & M
        x15 ^= x3
        x15 = ((x15 << 8) & M) | (x15 >> 24)
        x11 = (x11 + x15) & M
        x7 ^= x11
        x7 = ((x7 << 7) & M) | (x7 >> 25)
        x0 = (x0 + x5) & M
        x15 ^= x0
        x15 = ((x15 << 16) & M) | (x15 >> 16)
        x10 = (x10 + x15) & M
        x5 ^= x10
        x5 = ((x5 << 12) & M) | (x5 >> 20)
        x0 = (x0 + x5) & M
        x15 ^= x0
        x15 = ((x15 << 8) & M) | (x15 >> 24)
        x10 = (x10 + x15) & M
        x5 ^= x10
        x5 = ((x5 << 7) & M) | (x5 >> 25)
        x1 = (x1 + x6) & M
        x12 ^= x1
        x12 = ((x12 << 16) & M) | (x12 >> 16)
        x11 = (x11 + x12) & M
        x6 ^= x11
        x6 = ((x6 << 12) & M) | (x6 >> 20)
        x1 = (x1 + x6) & M
        x12 ^= x1
        x12 = ((x12 << 8) & M) | (x12 >> 24)
        x11 = (x11 + x12) & M
        x6 ^= x11
        x6 = ((x6 << 7) & M) | (x6 >> 25)
        x2 = (x2 + x7) & M
        x13 ^= x2
        x13 = ((x13 << 16) & M) | (x13 >> 16)
        x8 = (x8 + x13) & M
        x7 ^= x8
        x7 = ((x7 << 12) & M) | (x7 >> 20)
        x2 = (x2 + x7) & M
        x13 ^= x2
        x13 = ((x13 << 8) & M) | (x13 >> 24)
        x8 = (x8 + x13) & M
        x7 ^= x8
        x7 = ((x7 << 7) & M) | (x7 >> 25)
        x3 = (x3 + x4) & M
        x14 ^= x3
        x14 = ((x14 << 16) & M) | (x14 >> 16)
        x9 = (x9 + x14) & M
        x4 ^= x9
        x4 = ((x4 << 12) & M) | (x4 >> 20)
        x3 = (x3 + x4) & M
        x14 ^= x3
        x14 = ((x14 << 8) & M) | (x14 >> 24)
        x9 = (x9 + x14) & M
        x4 ^= x9
        x4 = ((x4 << 7) & M) | (x4 >> 25)
    return (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15)


def key_words(key):
    if len(key) != 32:
        raise ValueError("ChaCha20 key must be 32 bytes")
    return struct.unpack("<8I", key)


def block(kw, counter, nonce_words):
    """One 64-byte keystream block from key words, a 32-bit counter and 3 nonce words."""
    state = _SIGMA + tuple(kw) + (counter & M,) + tuple(nonce_words)
    out = _rounds(*state)
    return struct.pack("<16I", *[(out[i] + state[i]) & M for i in range(16)])


def keystream(key, counter, nonce, length):
    kw = key_words(key)
    if len(nonce) != 12:
        raise ValueError("ChaCha20 nonce must be 12 bytes")
    nw = struct.unpack("<3I", nonce)
    blocks = []
    for i in range((length + 63) // 64):
        blocks.append(block(kw, counter + i, nw))
    return b"".join(blocks)[:length]


def xor(data, stream):
    """data XOR stream (same length), as one big-integer operation."""
    n = len(data)
    if n == 0:
        return b""
    return (int.from_bytes(bytes(data), "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little")


def encrypt(key, counter, nonce, data):
    """ChaCha20 stream encryption (and decryption) starting at block `counter`."""
    return xor(data, keystream(key, counter, nonce, len(data)))


def hchacha20(key, nonce16):
    """The HChaCha20 subkey: rounds without the final addition, words 0-3 and 12-15."""
    if len(nonce16) != 16:
        raise ValueError("HChaCha20 nonce must be 16 bytes")
    out = _rounds(*(_SIGMA + key_words(key) + struct.unpack("<4I", nonce16)))
    return struct.pack("<8I", out[0], out[1], out[2], out[3], out[12], out[13], out[14], out[15])
