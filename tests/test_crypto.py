"""Both crypto backends: known-answer vectors from the standards, and pure vs fast on random
inputs (hypothesis)."""

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgedge import crypto
from wgedge.crypto.pure import chacha20, poly1305

FAST, PURE = crypto.load("fast"), crypto.load("pure")
BACKENDS = pytest.mark.parametrize("b", [FAST, PURE], ids=["fast", "pure"])
H = bytes.fromhex

# RFC 8439 2.8.2
AEAD_KEY = bytes(range(0x80, 0xA0))
AEAD_NONCE = H("070000004041424344454647")
AEAD_AD = H("50515253c0c1c2c3c4c5c6c7")
AEAD_PT = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
           b"the future, sunscreen would be it.")
AEAD_CT = H("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca96712"
            "82fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58"
            "fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116")
AEAD_TAG = H("1ae10b594f09e26a7e902ecbd0600691")


@BACKENDS
def test_rfc8439_aead(b):
    c = b.aead(AEAD_KEY)
    assert c.encrypt(AEAD_NONCE, AEAD_PT, AEAD_AD) == AEAD_CT + AEAD_TAG
    assert c.decrypt(AEAD_NONCE, AEAD_CT + AEAD_TAG, AEAD_AD) == AEAD_PT
    bad = bytearray(AEAD_CT + AEAD_TAG)
    bad[5] ^= 1
    with pytest.raises(b.AuthError):
        c.decrypt(AEAD_NONCE, bytes(bad), AEAD_AD)
    with pytest.raises(b.AuthError):
        c.decrypt(AEAD_NONCE, AEAD_CT + AEAD_TAG, b"other ad")


def test_rfc8439_chacha20_encryption_and_poly1305():
    # 2.4.2: "sunscreen" plaintext, key 00..1f, nonce 000000000000004a00000000, counter 1.
    ct = chacha20.encrypt(bytes(range(32)), 1, H("000000000000004a00000000"), AEAD_PT)
    assert ct[:16] == H("6e2e359a2568f98041ba0728dd0d6981")
    # The whole stream equals OpenSSL's ChaCha20 (16-byte nonce = LE counter || nonce).
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    enc = Cipher(algorithms.ChaCha20(bytes(range(32)), (1).to_bytes(4, "little")
                                     + H("000000000000004a00000000")), None).encryptor()
    assert ct == enc.update(AEAD_PT)
    # 2.5.2
    key = H("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    assert poly1305.mac(key, b"Cryptographic Forum Research Group") == H(
        "a8061dc1305136c6c22b8baf0c0127a9")


def test_hchacha20_draft_vector():
    assert chacha20.hchacha20(bytes(range(32)), H("000000090000004a0000000031415927")) == H(
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")


@BACKENDS
def test_xchacha20_poly1305_draft_vector(b):
    # draft-irtf-cfrg-xchacha-03 A.3.1
    key = bytes(range(0x80, 0xA0))
    nonce = H("404142434445464748494a4b4c4d4e4f5051525354555657")
    ct = b.xaead_encrypt(key, nonce, AEAD_PT, AEAD_AD)
    assert ct[:16] == H("bd6d179d3e83d43b9576579493c0e939")
    assert ct[-16:] == H("c0875924c1c7987947deafd8780acf49")
    assert b.xaead_decrypt(key, nonce, ct, AEAD_AD) == AEAD_PT
    with pytest.raises(b.AuthError):
        b.xaead_decrypt(key, nonce, ct, b"")


@BACKENDS
def test_rfc7748_x25519(b):
    # 5.2
    assert b.x25519(H("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                    H("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) == H(
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    assert b.x25519(H("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
                    H("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")) == H(
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")
    # 6.1: Alice and Bob
    a_priv = H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b_priv = H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    a_pub = b.x25519_public(a_priv)
    b_pub = b.x25519_public(b_priv)
    assert a_pub == H("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert b_pub == H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert b.x25519(a_priv, b_pub) == shared == b.x25519(b_priv, a_pub)


def test_rfc7748_iterated_once_and_thousand_times():
    k = u = (9).to_bytes(32, "little")
    for i in range(1000):
        k, u = PURE.x25519(k, u), k
        if i == 0:
            assert k == H("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
    assert k == H("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")


@BACKENDS
def test_low_order_point_gives_none(b):
    assert b.x25519(bytes(range(32)), bytes(32)) is None
    assert b.x25519(bytes(range(32)), (1).to_bytes(32, "little")) is None


@BACKENDS
def test_blake2s_vectors(b):
    # RFC 7693 appendix B
    assert b.hash(b"abc") == H(
        "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
    assert b.hash(b"") == H("69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9")
    # BLAKE2 reference KAT (blake2s-kat.txt): key 00..1f, input 00..(n-1), 32-byte digests.
    from wgedge.crypto.pure.blake2s import blake2s

    key = bytes(range(32))
    assert blake2s(b"", 32, key) == H(
        "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49")
    assert blake2s(b"\x00", 32, key) == H(
        "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1")
    assert b.mac(key, b"abc") == hashlib.blake2s(b"abc", digest_size=16, key=key).digest()


@BACKENDS
def test_hmac_blake2s_matches_stdlib(b):
    for key, data in ((b"k" * 32, b""), (bytes(32), b"x" * 100), (b"short", b"y" * 64)):
        assert b.hmac(key, data) == hmac.new(key, data, hashlib.blake2s).digest()


def test_load_and_environment(monkeypatch):
    assert crypto.load("pure").name == "pure"
    assert crypto.load("fast").name == "fast"
    monkeypatch.delenv("WGEDGE_CRYPTO", raising=False)
    assert crypto.load().name == "fast"
    monkeypatch.setenv("WGEDGE_CRYPTO", "pure")
    assert crypto.load().name == "pure"
    monkeypatch.setenv("WGEDGE_CRYPTO", "quantum")
    with pytest.raises(ValueError, match="WGEDGE_CRYPTO"):
        crypto.load()


# --- pure vs fast on random inputs -------------------------------------------------------------
keys = st.binary(min_size=32, max_size=32)


@settings(max_examples=150, deadline=None)
@given(keys, st.binary(min_size=12, max_size=12), st.binary(max_size=1500), st.binary(max_size=64))
def test_aead_pure_equals_fast(key, nonce, data, ad):
    ct = FAST.aead(key).encrypt(nonce, data, ad)
    assert PURE.aead(key).encrypt(nonce, data, ad) == ct
    assert PURE.aead(key).decrypt(nonce, ct, ad) == data
    tampered = bytearray(ct)
    tampered[len(ct) // 2] ^= 0x80
    for b in (FAST, PURE):
        with pytest.raises(b.AuthError):
            b.aead(key).decrypt(nonce, bytes(tampered), ad)


@settings(max_examples=100, deadline=None)
@given(keys, st.binary(min_size=24, max_size=24), st.binary(max_size=64), st.binary(max_size=32))
def test_xaead_pure_equals_fast(key, nonce, data, ad):
    ct = FAST.xaead_encrypt(key, nonce, data, ad)
    assert PURE.xaead_encrypt(key, nonce, data, ad) == ct
    assert PURE.xaead_decrypt(key, nonce, ct, ad) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=32), st.binary(max_size=300))
def test_hashes_pure_equal_fast(key, data):
    assert PURE.hash(data) == FAST.hash(data)
    assert PURE.hmac(key, data) == FAST.hmac(key, data)
    if key:
        assert PURE.mac(key, data) == FAST.mac(key, data)


@settings(max_examples=20, deadline=None)
@given(keys, keys)
def test_x25519_pure_equals_fast(a, b):
    assert PURE.x25519_public(a) == FAST.x25519_public(a)
    assert PURE.x25519(a, FAST.x25519_public(b)) == FAST.x25519(a, FAST.x25519_public(b))
