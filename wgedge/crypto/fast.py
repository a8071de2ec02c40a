"""The fast backend: OpenSSL through `cryptography`, BLAKE2s built into CPython (CPython only).

The interface is described in wgedge/crypto/__init__.py. `aead(key)` hands out `cryptography`'s
ChaCha20Poly1305 object itself, so the transport hot path calls OpenSSL with no Python wrapper
in between (before cryptography 40, which takes only bytes, a thin wrapper that converts).

How fast that is depends on the `cryptography` release (docs/firmware.md): before 42.0.0 each
encrypt or decrypt went through Python and cffi; 42 moved ChaCha20Poly1305 into the Rust core;
from 43.0.0 on (FAST_AEAD_SINCE) a packet costs a third of 42's and a seventh of 41's.
`slow_path()` says which one runs; `wgedge info` and the daemon's start-up log warn about a
slow one.

Memory (the daemon's RSS on a router): BLAKE2s comes from CPython's `_blake2` and HMAC is
written out here, so neither `hashlib` nor `hmac` loads the interpreter's libcrypto beside the
OpenSSL inside `cryptography` (3 MB of RSS on x86). X25519 keys and the AEAD class are taken from the
Rust bindings the public modules re-export, where they exist (cryptography 42 and later):
the public X25519 classes' own check imports cryptography's whole OpenSSL backend module
(RSA, EC, padding: 1.3 MB) only to ask whether X25519 is supported, and the public `aead`
module is inside the `ciphers` package, whose `__init__` loads every cipher, mode and the
"decrepit" algorithms (ten modules). Each name falls back to the public API when the
bindings lack it (cryptography 38, Debian 12's).
`cryptography` has no XChaCha20-Poly1305; it is only used for cookie replies, so the subkey
comes from HChaCha20 (itself computed through OpenSSL's ChaCha20) and OpenSSL does the rest
(draft-irtf-cfrg-xchacha section 2.3: ChaCha20-Poly1305 under the subkey, nonce = 4 zero bytes
|| last 8 nonce bytes).
"""

import struct

import cryptography
from cryptography.exceptions import InvalidTag

try:
    from _blake2 import blake2s as _blake2s
except ImportError:  # an interpreter without the module: hashlib finds BLAKE2s elsewhere
    from hashlib import blake2s as _blake2s
try:
    from _operator import _compare_digest
except ImportError:
    from hmac import compare_digest as _compare_digest

# ChaCha20-Poly1305 per 1420-byte packet by release (docs/firmware.md, x86): before 42.0.0 it
# runs through Python and cffi (14-18 us); 42.x has it in the Rust core (6-12 us); from 43.0.0
# on it costs 2-3 us, the fast path.
RUST_AEAD_SINCE = (42, 0, 0)
FAST_AEAD_SINCE = (43, 0, 0)


def version_tuple(text):
    """'47.0.0' -> (47, 0, 0); the leading numbers of each part ('42.0.0rc1' -> (42, 0, 0))."""
    out = []
    for part in text.split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        out.append(int(digits) if digits else 0)
    while len(out) < 3:
        out.append(0)
    return tuple(out)


def slow_path(version=None):
    """None when this `cryptography` (or `version`) runs ChaCha20-Poly1305 on the fast path;
    otherwise a warning for the operator that names the release that fixes it."""
    version = cryptography.__version__ if version is None else version
    found = version_tuple(version)
    if found >= FAST_AEAD_SINCE:
        return None
    fix = ".".join(str(n) for n in FAST_AEAD_SINCE)
    if found >= RUST_AEAD_SINCE:
        how = "a slower path: about 3 times the CPU time per packet"
    else:
        how = ("the slow path: ChaCha20-Poly1305 through Python and cffi, about 7 times the "
               "CPU time per packet")
    return "cryptography %s takes %s of cryptography %s or newer; install %s or newer" % (
        version, how, fix, fix)


def _rust_openssl():
    """cryptography's Rust OpenSSL bindings (42 and later), or None. Private to cryptography:
    every use below falls back to the public API when a name is missing."""
    try:
        from cryptography.hazmat.bindings._rust import openssl
    except ImportError:
        return None
    return openssl


_RUST = _rust_openssl()
_RUST_X25519 = getattr(_RUST, "x25519", None)
ChaCha20Poly1305 = getattr(getattr(_RUST, "aead", None), "ChaCha20Poly1305", None)
if ChaCha20Poly1305 is None:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
if all(hasattr(_RUST_X25519, n) for n in ("X25519PrivateKey", "from_private_bytes",
                                           "from_public_bytes")):
    X25519PrivateKey = _RUST_X25519.X25519PrivateKey
    _load_private = _RUST_X25519.from_private_bytes
    _load_public = _RUST_X25519.from_public_bytes
else:
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

    _load_private = X25519PrivateKey.from_private_bytes
    _load_public = X25519PublicKey.from_public_bytes


def openssl_version_text(number=None):
    """The OpenSSL version as text ("OpenSSL 3.5.4") from the number cryptography's bindings
    report (3.x and later: 0xMNN00PP0; 1.1.x: 0xMNNFFPPS), without importing its OpenSSL
    backend module."""
    if number is None:
        number = getattr(_RUST, "openssl_version", lambda: None)()
        if not isinstance(number, int):
            return _backend_openssl_version()
    major = number >> 28
    if major >= 3:
        return "OpenSSL %d.%d.%d" % (major, (number >> 20) & 0xFF, (number >> 4) & 0xFF)
    text = "OpenSSL %d.%d.%d" % (major, (number >> 20) & 0xFF, (number >> 12) & 0xFF)
    letter = (number >> 4) & 0xFF
    return text + (chr(ord("a") + letter - 1) if 0 < letter <= 26 else "")


def _backend_openssl_version():
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        return backend.openssl_version_text()
    except Exception:  # noqa: BLE001 - only for the description; the backend works without it
        return "OpenSSL (version unknown)"


# HMAC (RFC 2104) over BLAKE2s, block size 64: the key XOR ipad/opad as byte translations.
_HMAC_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_blake2s(key, data):
    key = bytes(key)
    if len(key) > _HMAC_BLOCK:
        key = _blake2s(key).digest()
    key = key + bytes(_HMAC_BLOCK - len(key))
    inner = _blake2s(key.translate(_IPAD))
    inner.update(data)
    return _blake2s(key.translate(_OPAD) + inner.digest()).digest()


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
        return "fast (cryptography %s / %s; AEAD %s path; BLAKE2s built into CPython)" % (
            cryptography.__version__, openssl_version_text(),
            "slow" if slow_path() else "fast")

    @staticmethod
    def warnings():
        text = slow_path()
        return [text] if text else []

    @staticmethod
    def hash(data):
        return _blake2s(data).digest()

    @staticmethod
    def mac(key, data):
        return _blake2s(data, digest_size=16, key=key).digest()

    hmac = staticmethod(hmac_blake2s)

    equal = staticmethod(_compare_digest)

    @staticmethod
    def private_key(private):
        # OpenSSL derives the public key when it loads a private one (a scalar multiplication,
        # as costly as the exchange): keys used more than once are loaded once.
        return _load_private(private)

    @staticmethod
    def x25519_public(private):
        if not isinstance(private, X25519PrivateKey):
            private = _load_private(private)
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
            private = _load_private(private)
        theirs = _load_public(public)
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
