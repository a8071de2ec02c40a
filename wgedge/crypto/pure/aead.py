"""ChaCha20-Poly1305 (RFC 8439 section 2.8) and XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha).

MicroPython-safe. One keystream run gives both the Poly1305 one-time key (block 0, RFC 8439
2.6) and the blocks that encrypt the data (from block 1). Tags are compared by accumulating the
XOR of every byte, so the time taken does not depend on where a forged tag first differs.
"""

from wgedge.crypto.pure import chacha20, poly1305


class AuthError(Exception):
    """The tag did not verify: the message was forged, damaged or keyed differently."""


_ZEROS = bytes(16)


def _tag(otk, ad, ciphertext):
    """Poly1305 over ad || pad16 || ciphertext || pad16 || le64(len ad) || le64(len ct)."""
    na = len(ad)
    nc = len(ciphertext)
    mac_data = b"".join((ad, _ZEROS[:-na % 16], ciphertext, _ZEROS[:-nc % 16],
                         na.to_bytes(8, "little"), nc.to_bytes(8, "little")))
    return poly1305.mac(otk, mac_data)


def equal(a, b):
    """Constant-time equality of two byte strings (the lengths are not secret)."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


class ChaCha20Poly1305:
    """Bound to a 32-byte key; the same calling convention as `cryptography`'s class of that name:
    encrypt(nonce, data, ad) -> ciphertext || tag, decrypt(nonce, data, ad) -> plaintext or
    AuthError. `ad` may be None (empty)."""

    def __init__(self, key):
        self._key_words = chacha20.key_words(key)

    def encrypt(self, nonce, data, ad):
        data = bytes(data)
        ad = bytes(ad) if ad else b""
        n = len(data)
        stream = chacha20.stream(self._key_words, chacha20.nonce_words(nonce), 0,
                                 1 + (n + 63) // 64)
        ciphertext = chacha20.xor(data, stream[64:64 + n])
        return ciphertext + _tag(stream[:32], ad, ciphertext)

    def decrypt(self, nonce, data, ad):
        data = bytes(data)
        ad = bytes(ad) if ad else b""
        n = len(data) - 16
        nw = chacha20.nonce_words(nonce)
        if n < 0:
            raise AuthError("ciphertext shorter than its tag")
        stream = chacha20.stream(self._key_words, nw, 0, 1 + (n + 63) // 64)
        ciphertext = data[:n]
        if not equal(_tag(stream[:32], ad, ciphertext), data[n:]):
            raise AuthError("authentication failed")
        return chacha20.xor(ciphertext, stream[64:64 + n])


def _xchacha(key, nonce):
    """The ChaCha20-Poly1305 object and 12-byte nonce that XChaCha20-Poly1305 reduces to."""
    if len(nonce) != 24:
        raise ValueError("XChaCha20 nonce must be 24 bytes")
    nonce = bytes(nonce)
    subkey = chacha20.hchacha20(key, nonce[:16])
    return ChaCha20Poly1305(subkey), b"\0\0\0\0" + nonce[16:]


def xchacha_encrypt(key, nonce, data, ad):
    aead, nonce12 = _xchacha(key, nonce)
    return aead.encrypt(nonce12, data, ad)


def xchacha_decrypt(key, nonce, data, ad):
    aead, nonce12 = _xchacha(key, nonce)
    return aead.decrypt(nonce12, data, ad)
