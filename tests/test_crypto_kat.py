"""Known-answer tests for both crypto backends, from the standards' own vectors.

RFC 8439 (ChaCha20, Poly1305, ChaCha20-Poly1305), RFC 7748 (X25519), RFC 7693 and the BLAKE2
reference KAT file (BLAKE2s), draft-irtf-cfrg-xchacha-03 (HChaCha20, XChaCha20-Poly1305).
ChaCha20 and Poly1305 are not part of the backend interface; for "fast" their vectors run on
the `cryptography` primitives that the fast backend is built on. Also here: the interface
itself, misuse raising ValueError, and how `wgedge.crypto.load` picks a backend.
"""

import hashlib
import hmac
import sys

import cryptography
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.poly1305 import Poly1305

from wgedge import crypto
from wgedge.crypto.fast import FastBackend
from wgedge.crypto.pure import PureBackend, blake2s, chacha20, poly1305

H = bytes.fromhex
FAST, PURE = crypto.load("fast"), crypto.load("pure")
both = pytest.mark.parametrize("b", [FAST, PURE], ids=["fast", "pure"])


def _openssl_chacha20(key, counter, nonce, data):
    # cryptography's ChaCha20 takes a 16-byte nonce: the 32-bit block counter, little-endian,
    # then the RFC 8439 96-bit nonce.
    return Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce),
                  None).encryptor().update(data)


CHACHA20 = {"fast": _openssl_chacha20, "pure": chacha20.encrypt}
POLY1305 = {"fast": Poly1305.generate_tag, "pure": poly1305.mac}
primitives = pytest.mark.parametrize("impl", ["fast", "pure"])

# RFC 8439 2.4.2 and 2.8.2 share the "sunscreen" plaintext.
SUNSCREEN = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
             b"the future, sunscreen would be it.")


# --- ChaCha20 and Poly1305 (RFC 8439) -----------------------------------------------------------

@primitives
def test_rfc8439_2_3_2_chacha20_block(impl):
    key = bytes(range(32))
    nonce = H("000000090000004a00000000")
    expected = H("10 f1 e7 e4 d1 3b 59 15 50 0f dd 1f a3 20 71 c4"
                 "c7 d1 f4 c7 33 c0 68 03 04 22 aa 9a c3 d4 6c 4e"
                 "d2 82 64 46 07 9f aa 09 14 c2 d7 05 d9 8b 02 a2"
                 "b5 12 9c d1 de 16 4e b9 cb d0 83 e8 a2 50 3c 4e")
    assert CHACHA20[impl](key, 1, nonce, bytes(64)) == expected
    if impl == "pure":
        assert chacha20.block(key, 1, nonce) == expected


@primitives
def test_rfc8439_2_4_2_chacha20_encryption(impl):
    key = bytes(range(32))
    nonce = H("000000000000004a00000000")
    expected = H("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
                 "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
                 "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
                 "5af90bbf74a35be6b40b8eedf2785e42874d")
    assert CHACHA20[impl](key, 1, nonce, SUNSCREEN) == expected
    assert CHACHA20[impl](key, 1, nonce, expected) == SUNSCREEN


@primitives
def test_rfc8439_2_5_2_poly1305(impl):
    key = H("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    tag = POLY1305[impl](key, b"Cryptographic Forum Research Group")
    assert tag == H("a8061dc1305136c6c22b8baf0c0127a9")


# RFC 8439 2.8.2
AEAD_KEY = bytes(range(0x80, 0xA0))
AEAD_NONCE = H("070000004041424344454647")
AEAD_AD = H("50515253c0c1c2c3c4c5c6c7")
AEAD_CT = H("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
            "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
            "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
            "3ff4def08e4b7a9de576d26586cec64b6116")
AEAD_TAG = H("1ae10b594f09e26a7e902ecbd0600691")


@both
def test_rfc8439_2_8_2_aead(b):
    aead = b.aead(AEAD_KEY)
    assert aead.encrypt(AEAD_NONCE, SUNSCREEN, AEAD_AD) == AEAD_CT + AEAD_TAG
    assert aead.decrypt(AEAD_NONCE, AEAD_CT + AEAD_TAG, AEAD_AD) == SUNSCREEN


@both
def test_aead_rejects_every_kind_of_damage(b):
    aead = b.aead(AEAD_KEY)
    sealed = AEAD_CT + AEAD_TAG
    for i in (0, 5, len(AEAD_CT) - 1, len(AEAD_CT), len(sealed) - 1):  # ciphertext and tag
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        with pytest.raises(b.AuthError):
            aead.decrypt(AEAD_NONCE, bytes(bad), AEAD_AD)
    with pytest.raises(b.AuthError):
        aead.decrypt(AEAD_NONCE, sealed, b"other ad")
    with pytest.raises(b.AuthError):
        aead.decrypt(AEAD_NONCE, sealed, None)
    with pytest.raises(b.AuthError):
        aead.decrypt(H("070000004041424344454648"), sealed, AEAD_AD)
    with pytest.raises(b.AuthError):
        b.aead(bytes(32)).decrypt(AEAD_NONCE, sealed, AEAD_AD)
    with pytest.raises(b.AuthError):
        aead.decrypt(AEAD_NONCE, sealed[:-1], AEAD_AD)
    with pytest.raises(b.AuthError):
        aead.decrypt(AEAD_NONCE, AEAD_TAG[:15], AEAD_AD)  # shorter than a tag


@both
def test_aead_empty_message_is_just_a_tag(b):
    # WireGuard's keepalive is an empty plaintext: 16 bytes of tag, which must verify.
    sealed = b.aead(AEAD_KEY).encrypt(AEAD_NONCE, b"", None)
    assert len(sealed) == 16
    assert b.aead(AEAD_KEY).decrypt(AEAD_NONCE, sealed, None) == b""
    assert b.aead(AEAD_KEY).decrypt(AEAD_NONCE, sealed, b"") == b""


# --- HChaCha20 and XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03) ------------------------------

def test_hchacha20_section_2_2_1():
    # The fast backend derives its XChaCha20 subkey with this same function.
    subkey = chacha20.hchacha20(bytes(range(32)), H("000000090000004a0000000031415927"))
    assert subkey == H("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")


@both
def test_xchacha20_poly1305_appendix_a_3_1(b):
    key = bytes(range(0x80, 0xA0))
    nonce = bytes(range(0x40, 0x58))
    ciphertext = H("bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
                   "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
                   "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
                   "21f9664c97637da9768812f615c68b13b52e")
    tag = H("c0875924c1c7987947deafd8780acf49")
    assert b.xaead_encrypt(key, nonce, SUNSCREEN, AEAD_AD) == ciphertext + tag
    assert b.xaead_decrypt(key, nonce, ciphertext + tag, AEAD_AD) == SUNSCREEN
    with pytest.raises(b.AuthError):
        b.xaead_decrypt(key, nonce, ciphertext + tag, b"")
    with pytest.raises(b.AuthError):
        b.xaead_decrypt(key, bytes(24), ciphertext + tag, AEAD_AD)


# --- X25519 (RFC 7748) ---------------------------------------------------------------------------

@both
def test_rfc7748_5_2_x25519(b):
    assert b.x25519(H("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                    H("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) == H(
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    # The second vector's u has its top bit set, which X25519 must ignore.
    assert b.x25519(H("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
                    H("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")) == H(
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")


@both
def test_rfc7748_5_2_iterated_1_and_1000_times(b):
    # k = u = 9; repeatedly k, u = X25519(k, u), k. Pure Python takes about 1.5 s here.
    k = u = (9).to_bytes(32, "little")
    for i in range(1000):
        k, u = b.x25519(k, u), k
        if i == 0:
            assert k == H("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
    assert k == H("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")


@both
def test_rfc7748_6_1_alice_and_bob(b):
    alice_private = H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob_private = H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_public = b.x25519_public(alice_private)
    bob_public = b.x25519_public(bob_private)
    assert alice_public == H("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert bob_public == H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert b.x25519(alice_private, bob_public) == shared
    assert b.x25519(bob_private, alice_public) == shared


LOW_ORDER_POINTS = [
    bytes(32),  # 0
    (1).to_bytes(32, "little"),  # order 4
    H("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # order 8
    H("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),  # order 8
    H("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p - 1: order 2
]


@both
@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p[:4].hex())
def test_x25519_low_order_point_gives_none(b, point):
    # The clamped scalar is a multiple of 8, so every point of order 1, 2, 4 or 8 gives zero,
    # which the backend reports as None so the handshake fails (WireGuard paper section 5.4).
    assert b.x25519(bytes(range(32)), point) is None
    assert b.x25519(b"\xff" * 32, point) is None


# --- BLAKE2s (RFC 7693, BLAKE2 reference KAT) and HMAC-BLAKE2s ----------------------------------

@both
def test_blake2s_rfc7693_and_empty(b):
    assert b.hash(b"abc") == H("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
    assert b.hash(b"") == H("69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9")


# blake2s-kat.txt from the BLAKE2 reference package (testvectors/blake2s-test.txt): key 00..1f,
# input 00..(n-1), 32-byte digests. n = 63, 64, 65 straddle the first block boundary after the
# key block.
KEYED_KAT = {
    0: "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49",
    1: "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1",
    2: "6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803",
    32: "c03bc642b20959cbe133a0303e0c1abff3e31ec8e1a328ec8565c36decff5265",
    63: "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd",
    64: "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4",
    65: "21fe0ceb0052be7fb0f004187cacd7de67fa6eb0938d927677f2398c132317a8",
    255: "3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd",
}


@pytest.mark.parametrize("n", sorted(KEYED_KAT))
def test_blake2s_reference_keyed_kat(n):
    key, data = bytes(range(32)), bytes(range(n))
    assert blake2s.blake2s(data, 32, key) == H(KEYED_KAT[n])
    assert hashlib.blake2s(data, key=key).digest() == H(KEYED_KAT[n])  # what "fast" uses


@both
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 255])
def test_mac_is_keyed_blake2s_128(b, n):
    key, data = bytes(range(32)), bytes(range(n))
    assert b.mac(key, data) == hashlib.blake2s(data, digest_size=16, key=key).digest()
    assert b.mac(key[:16], data) == hashlib.blake2s(data, digest_size=16, key=key[:16]).digest()


@both
@pytest.mark.parametrize("key_len", [0, 1, 16, 32, 63, 64, 65, 100])
def test_hmac_blake2s_matches_stdlib(b, key_len):
    key = bytes(range(7, 7 + key_len))
    for data in (b"", b"x", bytes(range(64)), bytes(200)):
        assert b.hmac(key, data) == hmac.new(key, data, hashlib.blake2s).digest()


# --- The interface and its misuse ---------------------------------------------------------------

MEMBERS = ("name", "describe", "AuthError", "hash", "mac", "hmac", "x25519_public", "x25519",
           "aead", "xaead_encrypt", "xaead_decrypt")


@both
def test_backend_has_the_whole_interface(b):
    for member in MEMBERS:
        assert hasattr(b, member), member
    assert issubclass(b.AuthError, Exception)
    assert not issubclass(b.AuthError, ValueError)  # a forged packet is not a caller's bug
    aead = b.aead(bytes(32))
    assert callable(aead.encrypt) and callable(aead.decrypt)


def test_describe_names_backend_and_versions():
    assert FAST.name == "fast" and PURE.name == "pure"
    text = FAST.describe()
    assert text.startswith("fast (") and cryptography.__version__ in text and "OpenSSL" in text
    assert PURE.describe().startswith("pure (")


@both
def test_misuse_raises_value_error(b):
    with pytest.raises(ValueError):
        b.aead(bytes(16))
    with pytest.raises(ValueError):
        b.aead(bytes(32)).encrypt(bytes(8), b"data", None)
    with pytest.raises(ValueError):
        b.xaead_encrypt(bytes(32), bytes(12), b"data", None)
    with pytest.raises(ValueError):
        b.x25519(bytes(31), bytes(32))
    with pytest.raises(ValueError):
        b.x25519(bytes(32), bytes(33))
    with pytest.raises(ValueError):
        b.x25519_public(bytes(16))


# --- Choosing a backend (wgedge.crypto.load) ----------------------------------------------------

@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("WGEDGE_CRYPTO", raising=False)
    return monkeypatch


def test_load_by_name(no_env):
    assert isinstance(crypto.load("pure"), PureBackend)
    assert isinstance(crypto.load("fast"), FastBackend)


def test_load_prefers_fast(no_env):
    assert crypto.load().name == "fast"


@pytest.mark.parametrize("value, expected", [("pure", "pure"), ("fast", "fast"),
                                             ("auto", "fast"), ("", "fast")])
def test_load_reads_wgedge_crypto(no_env, value, expected):
    no_env.setenv("WGEDGE_CRYPTO", value)
    assert crypto.load().name == expected


def test_explicit_name_wins_over_environment(no_env):
    no_env.setenv("WGEDGE_CRYPTO", "pure")
    assert crypto.load("fast").name == "fast"


@pytest.mark.parametrize("value", ["quantum", "FAST", "openssl"])
def test_invalid_choice_raises(no_env, value):
    no_env.setenv("WGEDGE_CRYPTO", value)
    with pytest.raises(ValueError, match="WGEDGE_CRYPTO"):
        crypto.load()
    with pytest.raises(ValueError):
        crypto.load(value)


def test_without_cryptography_falls_back_to_pure_unless_fast_was_asked_for(no_env):
    # A None entry in sys.modules makes the import fail, as on a host without `cryptography`.
    no_env.setitem(sys.modules, "wgedge.crypto.fast", None)
    assert crypto.load().name == "pure"
    with pytest.raises(ValueError, match="cryptography"):
        crypto.load("fast")
    no_env.setenv("WGEDGE_CRYPTO", "fast")
    with pytest.raises(ValueError, match="cryptography"):
        crypto.load()


def test_fast_hchacha20_through_openssl_matches_pure_and_draft():
    import os

    from wgedge.crypto import fast
    from wgedge.crypto.pure import chacha20

    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    assert fast.hchacha20(key, nonce) == bytes.fromhex(
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    for _ in range(50):
        k, n = os.urandom(32), os.urandom(16)
        assert fast.hchacha20(k, n) == chacha20.hchacha20(k, n)


def test_aead_for_a_cryptography_that_takes_only_bytes():
    """Before cryptography 40 the AEAD refuses memoryviews (TypeError); the fast backend then
    wraps it so that datagrams split from a UDP GRO buffer still decrypt. Run for real with
    cryptography 38 by `make test` (the minimum-versions venv) and by `make qemu-test`."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    from wgedge.crypto import fast

    class BytesOnly:
        def __init__(self, key):
            self.aead = ChaCha20Poly1305(key)

        def encrypt(self, nonce, data, ad):
            if not isinstance(data, bytes):
                raise TypeError("data must be bytes")
            return self.aead.encrypt(nonce, data, ad)

        def decrypt(self, nonce, data, ad):
            if not isinstance(data, bytes):
                raise TypeError("data must be bytes")
            return self.aead.decrypt(nonce, data, ad)

    assert not fast.takes_views(BytesOnly)
    key, nonce = bytes(range(32)), bytes(12)
    wrapped = fast.BytesAEAD(key, BytesOnly)
    sealed = wrapped.encrypt(nonce, memoryview(b"xx" + b"payload")[2:], b"ad")
    assert sealed == ChaCha20Poly1305(key).encrypt(nonce, b"payload", b"ad")
    assert wrapped.decrypt(nonce, memoryview(b"yy" + sealed)[2:], b"ad") == b"payload"
