"""The pure-Python backend: ChaCha20-Poly1305, XChaCha20-Poly1305, BLAKE2s, X25519.

Runs anywhere Python does, MicroPython included; no NEON, AES or any native code needed.
Interface as described in wgedge/crypto/__init__.py.
"""

from wgedge.crypto.pure import aead, blake2s, x25519


class PureBackend:
    name = "pure"
    AuthError = aead.AuthError

    def describe(self):
        return "pure (plain-Python ChaCha20-Poly1305, BLAKE2s, X25519)"

    @staticmethod
    def warnings():
        return []

    @staticmethod
    def hash(data):
        return blake2s.blake2s(data)

    @staticmethod
    def mac(key, data):
        return blake2s.blake2s(data, 16, key)

    @staticmethod
    def hmac(key, data):
        return blake2s.hmac(key, data)

    equal = staticmethod(aead.equal)

    @staticmethod
    def private_key(private):
        return private  # nothing to prepare: scalarmult takes the 32 bytes

    @staticmethod
    def x25519_public(private):
        return x25519.public(private)

    @staticmethod
    def x25519(private, public):
        shared = x25519.scalarmult(private, public)
        acc = 0
        for b in shared:
            acc |= b
        return shared if acc else None

    @staticmethod
    def aead(key):
        return aead.ChaCha20Poly1305(key)

    @staticmethod
    def xaead_encrypt(key, nonce, data, ad):
        return aead.xchacha_encrypt(key, nonce, data, ad)

    @staticmethod
    def xaead_decrypt(key, nonce, data, ad):
        return aead.xchacha_decrypt(key, nonce, data, ad)
