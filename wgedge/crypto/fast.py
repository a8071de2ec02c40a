"""The fast backend: OpenSSL through `cryptography`, BLAKE2s from hashlib (CPython only).

ChaCha20-Poly1305's AEAD object is handed out as it is, so the hot path calls OpenSSL with no
Python wrapper in between. XChaCha20 (cookie replies only) derives its subkey with the pure
HChaCha20 and then uses OpenSSL's ChaCha20-Poly1305.
"""

import hashlib

import cryptography
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

_blake2s = hashlib.blake2s
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class FastBackend:
    name = "fast"
    AuthError = InvalidTag

    def describe(self):
        try:
            from cryptography.hazmat.backends.openssl.backend import backend

            ssl = backend.openssl_version_text()
        except Exception:  # noqa: BLE001 - only for the description
            ssl = "OpenSSL"
        return "fast (cryptography %s, %s; BLAKE2s from hashlib)" % (cryptography.__version__,
                                                                      ssl)

    @staticmethod
    def hash(data):
        return _blake2s(data).digest()

    @staticmethod
    def mac(key, data):
        return _blake2s(data, digest_size=16, key=key).digest()

    @staticmethod
    def hmac(key, data):
        """HMAC-BLAKE2s (RFC 2104, 64-byte block); keys here are at most 32 bytes."""
        k = key.ljust(64, b"\0")
        inner = _blake2s(k.translate(_IPAD) + data).digest()
        return _blake2s(k.translate(_OPAD) + inner).digest()

    @staticmethod
    def x25519_public(private):
        return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()

    @staticmethod
    def x25519(private, public):
        try:
            return X25519PrivateKey.from_private_bytes(private).exchange(
                X25519PublicKey.from_public_bytes(public))
        except ValueError:  # all-zero result: a low-order point
            return None

    aead = staticmethod(ChaCha20Poly1305)

    @staticmethod
    def xaead_encrypt(key, nonce, data, ad):
        from wgedge.crypto.pure.chacha20 import hchacha20

        sub = hchacha20(key, nonce[:16])
        return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce[16:], data, ad)

    @staticmethod
    def xaead_decrypt(key, nonce, data, ad):
        from wgedge.crypto.pure.chacha20 import hchacha20

        sub = hchacha20(key, nonce[:16])
        return ChaCha20Poly1305(sub).decrypt(b"\0\0\0\0" + nonce[16:], data, ad)
