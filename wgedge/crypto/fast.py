"""The fast backend: OpenSSL through `cryptography`, BLAKE2s from hashlib (CPython only).

The interface is described in wgedge/crypto/__init__.py. `aead(key)` hands out `cryptography`'s
ChaCha20Poly1305 object itself, so the transport hot path calls OpenSSL with no Python wrapper
in between (before cryptography 40, which takes only bytes, a thin wrapper that converts).
`cryptography` has no XChaCha20-Poly1305; it is only used for cookie replies, so the subkey
comes from HChaCha20 (itself computed through OpenSSL's ChaCha20) and OpenSSL does the rest
(draft-irtf-cfrg-xchacha section 2.3: ChaCha20-Poly1305 under the subkey, nonce = 4 zero bytes
|| last 8 nonce bytes).
"""

import hashlib
import hmac as _hmac
import struct

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


_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_ZERO_BLOCK = bytes(64)


def hchacha20(key, nonce16):
    """HChaCha20 through OpenSSL: a ChaCha20 keystream block is rounds(state) + state, and
    HChaCha20 is rounds(state) itself at words 0-3 and 12-15, whose state words are the
    constants and the 16-byte nonce (OpenSSL's 16-byte ChaCha20 IV is exactly counter ||
    nonce). Cookie replies under a flood need this to be cheap."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    block = Cipher(algorithms.ChaCha20(key, nonce16), None).encryptor().update(_ZERO_BLOCK)
    ks = struct.unpack("<16I", block)
    iv = struct.unpack("<4I", nonce16)
    out = [(ks[i] - _SIGMA[i]) & 0xFFFFFFFF for i in range(4)]
    out += [(ks[12 + i] - iv[i]) & 0xFFFFFFFF for i in range(4)]
    return struct.pack("<8I", *out)


def _xchacha(key, nonce):
    if len(nonce) != 24:
        raise ValueError("XChaCha20 nonce must be 24 bytes")
    nonce = bytes(nonce)
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])), b"\0\0\0\0" + nonce[16:]


def takes_views(aead_class):
    """Whether this `cryptography` accepts a memoryview as AEAD input. Datagrams split from
    a UDP GRO buffer arrive as memoryviews; cryptography before 40 (Debian 12 ships 38)
    insists on bytes."""
    aead, nonce = aead_class(bytes(32)), bytes(12)
    try:
        aead.decrypt(nonce, memoryview(aead.encrypt(nonce, b"", None)), None)
    except TypeError:
        return False
    return True


class BytesAEAD:
    """ChaCha20-Poly1305 for a `cryptography` that takes only bytes: hands it bytes."""

    __slots__ = ("_aead",)

    def __init__(self, key, aead_class=ChaCha20Poly1305):
        self._aead = aead_class(key)

    def encrypt(self, nonce, data, ad):
        return self._aead.encrypt(nonce, bytes(data), ad)

    def decrypt(self, nonce, data, ad):
        return self._aead.decrypt(nonce, bytes(data), ad)


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

    equal = staticmethod(_hmac.compare_digest)

    @staticmethod
    def private_key(private):
        # OpenSSL derives the public key when it loads a private one (a scalar multiplication,
        # as costly as the exchange): keys used more than once are loaded once.
        return X25519PrivateKey.from_private_bytes(private)

    @staticmethod
    def x25519_public(private):
        if not isinstance(private, X25519PrivateKey):
            private = X25519PrivateKey.from_private_bytes(private)
        public = private.public_key()
        raw = getattr(public, "public_bytes_raw", None)
        if raw is not None:
            return raw()
        # cryptography < 40 (Debian 12 ships 38) has no public_bytes_raw(). Imported only
        # here: the serialization package adds 2.5 MB of RSS to a bare interpreter.
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return public.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @staticmethod
    def x25519(private, public):
        # Wrong key lengths are a caller's bug and raise here, outside the try below.
        if not isinstance(private, X25519PrivateKey):
            private = X25519PrivateKey.from_private_bytes(private)
        theirs = X25519PublicKey.from_public_bytes(public)
        try:
            return private.exchange(theirs)
        except ValueError:  # OpenSSL refuses an all-zero result: a low-order point
            return None

    aead = staticmethod(ChaCha20Poly1305 if takes_views(ChaCha20Poly1305) else BytesAEAD)

    @staticmethod
    def xaead_encrypt(key, nonce, data, ad):
        aead, nonce12 = _xchacha(key, nonce)
        return aead.encrypt(nonce12, bytes(data), ad)

    @staticmethod
    def xaead_decrypt(key, nonce, data, ad):
        aead, nonce12 = _xchacha(key, nonce)
        return aead.decrypt(nonce12, bytes(data), ad)
