"""The pure backend against the fast one (OpenSSL and hashlib) on random inputs (hypothesis).

The fast backend is the reference: every answer of the pure backend must be byte for byte the
same, every forgery must fail on both. The pure ChaCha20 computes many blocks side by side in
one integer, so lengths run well past one run of lanes (chacha20.MAX_LANES blocks).
"""

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.poly1305 import Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from wgedge import crypto
from wgedge.crypto.pure import blake2s, chacha20, poly1305

FAST, PURE = crypto.load("fast"), crypto.load("pure")

keys = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=12, max_size=12)
# Lengths drawn first, so long packets are as likely as short ones (st.binary favours short).
messages = st.integers(0, 1500).flatmap(lambda n: st.binary(min_size=n, max_size=n))
ads = st.none() | st.binary(max_size=64)


@settings(max_examples=150, deadline=None)
@given(keys, nonces, messages, ads)
def test_aead_same_ciphertext_and_round_trip(key, nonce, data, ad):
    sealed = FAST.aead(key).encrypt(nonce, data, ad)
    assert PURE.aead(key).encrypt(nonce, data, ad) == sealed
    assert PURE.aead(key).decrypt(nonce, sealed, ad) == data
    assert FAST.aead(key).decrypt(nonce, PURE.aead(key).encrypt(nonce, data, ad), ad) == data


@settings(max_examples=100, deadline=None)
@given(keys, nonces, st.binary(max_size=300), ads, st.data())
def test_aead_tampering_fails_on_both(key, nonce, data, ad, draw):
    sealed = bytearray(FAST.aead(key).encrypt(nonce, data, ad))
    i = draw.draw(st.integers(0, len(sealed) - 1), label="byte")
    sealed[i] ^= draw.draw(st.integers(1, 255), label="flip")
    for b in (FAST, PURE):
        with pytest.raises(b.AuthError):
            b.aead(key).decrypt(nonce, bytes(sealed), ad)


@settings(max_examples=25, deadline=None)
@given(keys, nonces, messages, st.binary(max_size=32))
def test_aead_takes_bytearray_and_memoryview(key, nonce, data, ad):
    # The I/O layer hands over slices of its buffers; both backends must take them as bytes.
    sealed = FAST.aead(key).encrypt(nonce, data, ad)
    aead = PURE.aead(bytearray(key))
    assert aead.encrypt(bytearray(nonce), memoryview(data), bytearray(ad)) == sealed
    assert aead.decrypt(memoryview(nonce), memoryview(bytearray(sealed)), memoryview(ad)) == data


@settings(max_examples=60, deadline=None)
@given(keys, st.binary(min_size=24, max_size=24), st.binary(max_size=100), ads)
def test_xaead_same_ciphertext_and_tampering(key, nonce, data, ad):
    sealed = FAST.xaead_encrypt(key, nonce, data, ad)
    assert PURE.xaead_encrypt(key, nonce, data, ad) == sealed
    assert PURE.xaead_decrypt(key, nonce, sealed, ad) == data
    bad = bytearray(sealed)
    bad[-1] ^= 1
    for b in (FAST, PURE):
        with pytest.raises(b.AuthError):
            b.xaead_decrypt(key, nonce, bytes(bad), ad)


@settings(max_examples=40, deadline=None)
@given(keys, nonces, st.integers(0, 2**32 - 200), st.integers(0, 9000))
def test_chacha20_stream_equals_openssl(key, nonce, counter, length):
    data = bytes(range(256)) * (length // 256 + 1)
    data = data[:length]
    expected = Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce),
                      None).encryptor().update(data)
    assert chacha20.encrypt(key, counter, nonce, data) == expected


@settings(max_examples=150, deadline=None)
@given(keys, st.binary(max_size=300))
def test_poly1305_equals_openssl(key, data):
    assert poly1305.mac(key, data) == Poly1305.generate_tag(key, data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_hash_same(data):
    assert PURE.hash(data) == FAST.hash(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=32), st.binary(max_size=300))
def test_mac_same(key, data):
    assert PURE.mac(key, data) == FAST.mac(key, data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=200))
def test_hmac_same(key, data):
    assert PURE.hmac(key, data) == FAST.hmac(key, data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=32), st.integers(1, 32), st.binary(max_size=200))
def test_blake2s_any_key_and_digest_size_equals_hashlib(key, size, data):
    expected = hashlib.blake2s(data, digest_size=size, key=key).digest()
    assert blake2s.blake2s(data, size, key) == expected


@settings(max_examples=15, deadline=None)
@given(keys, keys)
def test_x25519_same(a, b):
    public_b = FAST.x25519_public(b)
    assert PURE.x25519_public(a) == FAST.x25519_public(a)
    assert PURE.x25519(a, public_b) == FAST.x25519(a, public_b)
    # A prepared key (loaded once, used for many exchanges) gives the same results.
    for backend in (FAST, PURE):
        prepared = backend.private_key(a)
        assert backend.x25519_public(prepared) == FAST.x25519_public(a)
        assert backend.x25519(prepared, public_b) == FAST.x25519(a, public_b)
        assert backend.x25519(prepared, public_b) == FAST.x25519(a, public_b)  # reusable


@settings(max_examples=10, deadline=None)
@given(keys, keys)
def test_x25519_any_u_coordinate(a, u):
    # Arbitrary 32 bytes as the peer's u: off the curve (the twist), top bit set, or at least
    # p. Both backends must agree, including on None for an all-zero result.
    assert PURE.x25519(a, u) == FAST.x25519(a, u)


def test_chacha20_counter_wraps_as_one_32_bit_word():
    # Far beyond any WireGuard message (2^32 blocks is 256 GiB), but the lanes must still agree
    # with single blocks when a run of blocks crosses the wrap.
    key, nonce = bytes(range(32)), bytes(range(12))
    run = chacha20.keystream(key, 2**32 - 2, nonce, 4 * 64)
    singles = [chacha20.block(key, c, nonce) for c in (2**32 - 2, 2**32 - 1, 0, 1)]
    assert run == b"".join(singles)
    assert singles[2] == chacha20.block(key, 2**32, nonce)
