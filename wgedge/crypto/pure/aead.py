"""ChaCha20-Poly1305 (RFC 8439 section 2.8) and XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha).

MicroPython-safe. Tags are compared in constant time (as far as Python allows).
"""

import struct

from wgedge.crypto.pure import chacha20, poly1305


class AuthError(Exception):
    """The tag did not verify: the message was forged, damaged or keyed differently."""


def _pad16(n):
    return bytes((16 - n % 16) % 16)


def _tag(otk, ad, ciphertext):
    mac_data = (ad + _pad16(len(ad)) + ciphertext + _pad16(len(ciphertext))
                + struct.pack("<QQ", len(ad), len(ciphertext)))
    return poly1305.mac(otk, mac_data)


def _equal(a, b):
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


class ChaCha20Poly1305:
    """Same calling convention as `cryptography`'s class of that name."""

    def __init__(self, key):
        if len(key) != 32:
            raise ValueError("ChaCha20-Poly1305 key must be 32 bytes")
        self._key = bytes(key)

    def _otk(self, nonce):
        return chacha20.keystream(self._key, 0, nonce, 32)

    def encrypt(self, nonce, data, ad):
        ad = bytes(ad) if ad else b""
        ct = chacha20.encrypt(self._key, 1, nonce, data)
        return ct + _tag(self._otk(nonce), ad, ct)

    def decrypt(self, nonce, data, ad):
        data = bytes(data)
        if len(data) < 16:
            raise AuthError("ciphertext shorter than its tag")
        ad = bytes(ad) if ad else b""
        ct, tag = data[:-16], data[-16:]
        if not _equal(_tag(self._otk(nonce), ad, ct), tag):
            raise AuthError("authentication failed")
        return chacha20.encrypt(self._key, 1, nonce, ct)


def xchacha_encrypt(key, nonce, data, ad):
    if len(nonce) != 24:
        raise ValueError("XChaCha20 nonce must be 24 bytes")
    sub = chacha20.hchacha20(key, nonce[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + bytes(nonce[16:]), data, ad)


def xchacha_decrypt(key, nonce, data, ad):
    if len(nonce) != 24:
        raise ValueError("XChaCha20 nonce must be 24 bytes")
    sub = chacha20.hchacha20(key, nonce[:16])
    return ChaCha20Poly1305(sub).decrypt(b"\0\0\0\0" + bytes(nonce[16:]), data, ad)
