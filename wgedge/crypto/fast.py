"""The fast backend: OpenSSL through `cryptography`, BLAKE2s from hashlib (CPython only).

The interface is described in wgedge/crypto/__init__.py. `aead(key)` hands out `cryptography`'s
ChaCha20Poly1305 object itself, so the transport hot path calls OpenSSL with no Python wrapper
in between. `cryptography` has no XChaCha20-Poly1305; it is only used for cookie replies, so
the subkey comes from the pure HChaCha20 and OpenSSL does the rest (draft-irtf-cfrg-xchacha
section 2.3: ChaCha20-Poly1305 under the subkey, nonce = 4 zero bytes || last 8 nonce bytes).
"""

import hashlib
import hmac as _hmac

import cryptography
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

_blake2s = hashlib.blake2s
_hmac_digest = _hmac.digest


def _openssl_version():
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        return backend.openssl_version_text()
    except Exception:  # noqa: BLE001 - only for the description; the backend works without it
        return "OpenSSL (version unknown)"


def _xchacha(key, nonce):
    # Imported here: cookie replies are rare, and the pure package costs memory on a router.
    from wgedge.crypto.pure.chacha20 import hchacha20

    if len(nonce) != 24:
        raise ValueError("XChaCha20 nonce must be 24 bytes")
    nonce = bytes(nonce)
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])), b"\0\0\0\0" + nonce[16:]


class FastBackend:
    name = "fast"
    AuthError = InvalidTag

    def describe(self):
        return "fast (cryptography %s / %s; BLAKE2s from hashlib)" % (
            cryptography.__version__, _openssl_version())

    @staticmethod
    def hash(data):
        return _blake2s(data).digest()

    @staticmethod
    def mac(key, data):
        return _blake2s(data, digest_size=16, key=key).digest()

    @staticmethod
    def hmac(key, data):
        return _hmac_digest(key, data, _blake2s)

    @staticmethod
    def x25519_public(private):
        return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()

    @staticmethod
    def x25519(private, public):
        # Wrong key lengths are a caller's bug and raise here, outside the try below.
        ours = X25519PrivateKey.from_private_bytes(private)
        theirs = X25519PublicKey.from_public_bytes(public)
        try:
            return ours.exchange(theirs)
        except ValueError:  # OpenSSL refuses an all-zero result: a low-order point
            return None

    aead = staticmethod(ChaCha20Poly1305)

    @staticmethod
    def xaead_encrypt(key, nonce, data, ad):
        aead, nonce12 = _xchacha(key, nonce)
        return aead.encrypt(nonce12, data, ad)

    @staticmethod
    def xaead_decrypt(key, nonce, data, ad):
        aead, nonce12 = _xchacha(key, nonce)
        return aead.decrypt(nonce12, data, ad)
