"""Crypto backends behind one small interface.

A backend is an object with these members (both `fast` and `pure` provide exactly these):

    name                              "fast" or "pure"
    describe()                        one line for logs and `wgedge info`
    warnings() -> [str]               what the operator should fix about this backend (the
                                      fast one: a `cryptography` before 42.0.0, which takes
                                      the slow path); [] when nothing
    AuthError                         exception class raised by AEAD open on a bad tag
    hash(data) -> 32 bytes            BLAKE2s-256
    mac(key, data) -> 16 bytes        keyed BLAKE2s with 16-byte output (WireGuard's MAC)
    hmac(key, data) -> 32 bytes       HMAC-BLAKE2s-256 (used by the Noise KDF)
    equal(a, b) -> bool               comparison of two MACs in time that does not depend
                                      on where they differ
    private_key(private) -> key       a private key prepared for repeated use (the fast
                                      backend loads it into OpenSSL once); wherever a private
                                      key is taken below, the 32 bytes or this form will do
    x25519_public(private) -> 32 bytes
    x25519(private, public) -> 32 bytes, or None when the result is all zeros
                                      (low-order point: the handshake must fail)
    aead(key) -> object with          ChaCha20-Poly1305 (RFC 8439) bound to a 32-byte key:
        encrypt(nonce12, data, ad) -> ciphertext || tag
        decrypt(nonce12, data, ad) -> plaintext, raises AuthError
        (the `cryptography` object itself in the fast backend: zero overhead on the hot path;
        `ad` may be None, meaning empty)
    xaead_encrypt(key, nonce24, data, ad) -> bytes      XChaCha20-Poly1305
    xaead_decrypt(key, nonce24, data, ad) -> bytes, raises AuthError

Private keys given to x25519 are clamped by the backend (RFC 7748). Neither backend needs NEON
or AES instructions: ChaCha20, Poly1305, BLAKE2s and X25519 are plain integer arithmetic.

This module stays importable under MicroPython: `load` imports lazily.
"""

BACKENDS = ("fast", "pure")


def load(name=None):
    """Return a backend instance.

    `name` is "fast", "pure" or None; None reads WGEDGE_CRYPTO and otherwise prefers fast,
    falling back to pure when `cryptography` is not installed. An explicit request that cannot
    be met raises ValueError (a misconfiguration the operator must see, not a silent fallback).
    """
    if name is None:
        name = _env_choice()
    if name not in (None, "", "auto") and name not in BACKENDS:
        raise ValueError("WGEDGE_CRYPTO must be 'fast' or 'pure', not %r" % (name,))
    if name == "pure":
        from wgedge.crypto.pure import PureBackend

        return PureBackend()
    try:
        from wgedge.crypto.fast import FastBackend
    except ImportError as exc:
        if name == "fast":
            raise ValueError("WGEDGE_CRYPTO=fast but the 'cryptography' package is missing: %s" % exc)
        from wgedge.crypto.pure import PureBackend

        return PureBackend()
    return FastBackend()


def _env_choice():
    try:
        import os

        return os.environ.get("WGEDGE_CRYPTO") or None
    except (ImportError, AttributeError):  # MicroPython without os.environ
        return None
