"""The MicroPython-safe modules, run under real MicroPython 1.27 (WebAssembly build, node).

tests/test_subset.py reads the source; this file runs it: every safe module must import, and
the pure crypto backend must give the RFC answers there, byte for byte the same as CPython's
`cryptography` gives here. Scripts print one "name value" line per result; pytest compares.
"""

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.mpy_helper import ROOT, module_name, safe_module_paths

# Hex printing that works on every MicroPython build (bytes.hex is not everywhere).
HEX = 'def hx(b):\n    return "".join("%02x" % c for c in b)\n'


def parse_lines(stdout):
    """ "name value" lines -> {name: value}; other lines are ignored."""
    return dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)


def test_every_safe_module_imports(micropython):
    names = [module_name(p) for p in safe_module_paths()]
    assert "wgedge.core.consts" in names
    script = "import sys\n" + "".join(
        "import %s\nprint('imported', %r)\n" % (name, name) for name in names
    ) + "print('implementation', sys.implementation.name, sys.implementation.version)\n"
    out = micropython(script)
    imported = [line.split()[1] for line in out.splitlines() if line.startswith("imported ")]
    assert imported == names
    assert "implementation micropython (1, 27, 0" in out


def test_core_constants_match_cpython(micropython):
    from wgedge.core import consts

    names = sorted(n for n in dir(consts) if n.isupper())
    script = "from wgedge.core import consts\n" + "".join(
        "print(%r, repr(consts.%s))\n" % (n, n) for n in names
    )
    got = parse_lines(micropython(script))
    assert got == {n: repr(getattr(consts, n)) for n in names}


# RFC 8439 section 2.8.2: the AEAD example ("sunscreen").
AEAD_KEY = bytes(range(0x80, 0xA0))
AEAD_NONCE = bytes.fromhex("070000004041424344454647")
AEAD_AD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
AEAD_PLAINTEXT = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    b"future, sunscreen would be it."
)
AEAD_TAG = "1ae10b594f09e26a7e902ecbd0600691"  # as printed in the RFC

# RFC 7748 section 5.2 (first X25519 vector) and section 6.1 (Alice's key pair).
X25519_SCALAR = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
X25519_U = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
X25519_OUT = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def expected_on_cpython():
    """The same operations through `cryptography`, checked against the RFC text."""
    sealed = ChaCha20Poly1305(AEAD_KEY).encrypt(AEAD_NONCE, AEAD_PLAINTEXT, AEAD_AD)
    assert sealed[-16:].hex() == AEAD_TAG
    shared = X25519PrivateKey.from_private_bytes(X25519_SCALAR).exchange(
        X25519PublicKey.from_public_bytes(X25519_U))
    assert shared.hex() == X25519_OUT
    public = X25519PrivateKey.from_private_bytes(ALICE_PRIVATE).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    assert public.hex() == ALICE_PUBLIC
    return {"aead_sealed": sealed.hex(), "aead_opened": AEAD_PLAINTEXT.hex(),
            "aead_tampered": "AuthError", "x25519": shared.hex(), "x25519_public": public.hex(),
            "x25519_low_order": "None", "default_backend": "pure"}


PURE_VECTORS_SCRIPT = HEX + '''
from wgedge import crypto
b = crypto.load("pure")
print("backend", b.name)
print("default_backend", crypto.load().name)  # no `cryptography` here: falls back to pure

aead = b.aead(bytes(range(0x80, 0xa0)))
nonce = b"\\x07\\x00\\x00\\x00@ABCDEFG"
ad = b"PQRS\\xc0\\xc1\\xc2\\xc3\\xc4\\xc5\\xc6\\xc7"
sealed = aead.encrypt(nonce, PLAINTEXT, ad)
print("aead_sealed", hx(sealed))
print("aead_opened", hx(aead.decrypt(nonce, sealed, ad)))
try:
    aead.decrypt(nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), ad)
    print("aead_tampered", "accepted")
except b.AuthError:
    print("aead_tampered", "AuthError")

print("x25519", hx(b.x25519(SCALAR, U)))
print("x25519_public", hx(b.x25519_public(ALICE)))
print("x25519_low_order", b.x25519(ALICE, bytes(32)))
'''


def test_pure_backend_rfc_vectors(micropython):
    if not (ROOT / "wgedge" / "crypto" / "pure" / "__init__.py").is_file():
        pytest.fail("wgedge/crypto/pure/__init__.py is missing: the pure backend is required")
    script = "PLAINTEXT = %r\nSCALAR = %r\nU = %r\nALICE = %r\n" % (
        AEAD_PLAINTEXT, X25519_SCALAR, X25519_U, ALICE_PRIVATE) + PURE_VECTORS_SCRIPT
    got = parse_lines(micropython(script, timeout=300))
    assert got.pop("backend") == "pure"
    assert got == expected_on_cpython()


# An in-memory WireGuard session run identically under MicroPython and CPython: the same keys,
# random source and clock must produce the same bytes on the wire, byte for byte.
SESSION_SCRIPT = HEX + '''
import hashlib
from wgedge import crypto
from wgedge.core.device import Device
from wgedge.core.ipaddr import parse_cidr


class Rng:
    def __init__(self, seed):
        self.seed = seed
        self.n = 0
        self.buf = b""

    def __call__(self, k):
        while len(self.buf) < k:
            self.buf += hashlib.sha256(self.seed + self.n.to_bytes(8, "little")).digest()
            self.n += 1
        out = self.buf[:k]
        self.buf = self.buf[k:]
        return out


def packet(src, dst, payload):
    total = 20 + len(payload)
    return (bytes([0x45, 0, total >> 8, total & 255, 0, 0, 0, 0, 64, 17, 0, 0])
            + bytes(src) + bytes(dst) + payload)


backend = crypto.load(BACKEND)
ra, rb = Rng(b"alice"), Rng(b"bob")
a = Device(backend, ra, ra(32))
b = Device(backend, rb, rb(32))
a.wall_offset = b.wall_offset = 1700000000.0
pa = a.add_peer(b.public_key)
pb = b.add_peer(a.public_key)
pa.set_preshared_key(bytes(range(32)))
pb.set_preshared_key(bytes(range(32)))
a.allowed_ips.insert(parse_cidr("10.0.0.2/32")[0], 32, pa)
b.allowed_ips.insert(parse_cidr("10.0.0.1/32")[0], 32, pb)
ea, eb = ("192.0.2.1", 51820), ("192.0.2.2", 51820)
pa.endpoint = eb
now = 50.0
where = {ea: a, eb: b}
queue = []


def carry(src, out):
    for d, dst in out.datagrams():
        queue.append((d, dst, src))
    for p in out.tun:
        print("tun", hx(p))


carry(ea, a.send_packets([packet(b"\\n\\0\\0\\1", b"\\n\\0\\0\\2", b"hello from alice")], now))
while queue:
    d, dst, src = queue.pop(0)
    print("wire", hx(d))
    carry(dst, where[dst].receive_datagrams([(d, src)], now))
now += 1.5
carry(eb, b.send_packets([packet(b"\\n\\0\\0\\2", b"\\n\\0\\0\\1", b"and back from bob")], now))
while queue:
    d, dst, src = queue.pop(0)
    print("wire", hx(d))
    carry(dst, where[dst].receive_datagrams([(d, src)], now))
print("counters", pa.tx_bytes, pa.rx_bytes, pb.tx_bytes, pb.rx_bytes)
print("drops", len(a.drops) + len(b.drops))
from wgedge.core import uapi, uapi_get
print("get pieces", len(list(uapi_get.get_pieces(a))),
      "".join(uapi_get.get_pieces(a)) == "\\n".join(uapi_get.get_lines(a)) + "\\n")
'''


def test_session_bytes_identical_under_micropython_and_cpython(micropython):
    import contextlib
    import io

    mpy = micropython("BACKEND = 'pure'\n" + SESSION_SCRIPT, timeout=300)
    results = {}
    for backend in ("pure", "fast"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile("BACKEND = %r\n" % backend + SESSION_SCRIPT, "<session>", "exec"), {})
        results[backend] = buf.getvalue()
    lines = mpy.splitlines()
    kinds = [line.split()[0] for line in lines]
    assert kinds.count("wire") == 4  # initiation, response, staged data, data back
    assert kinds.count("tun") == 2
    assert "drops 0" in lines
    assert "get pieces 2 True" in lines  # the control socket's piecewise get (uapi_get.get_pieces)
    assert mpy == results["pure"] == results["fast"]


def test_uci_parser_runs_under_micropython(micropython):
    from wgedge.config import uci

    text = ("config interface 'wg0' ; option proto \"wire\"'guard'\n"
            "  list addresses '10.0.0.1/24'\n  option bad 'unterminated\n")
    script = "from wgedge.config import uci\nsections, errors = uci.parse(%r, 'f')\n" % text + (
        "for s in sections:\n    print('section', s.type, s.name, s.get('proto'), "
        "s.lists.get('addresses'))\nfor e in errors:\n    print('error', str(e))\n")
    sections, errors = uci.parse(text, "f")
    expected = "".join("section %s %s %s %s\n" % (s.type, s.name, s.get("proto"),
                                                  s.lists.get("addresses")) for s in sections)
    expected += "".join("error %s\n" % e for e in errors)
    assert micropython(script) == expected
    assert "error f:3: unterminated single quote" in expected


def test_uapi_errors_under_micropython(micropython):
    script = ("from wgedge.core import uapi\n"
              "for lines in (['bogus=1'], ['listen_port=99999'], ['nokey']):\n"
              "    try:\n"
              "        uapi.parse_set(lines)\n"
              "    except uapi.UapiError as e:\n"
              "        print('errno', e.errno, e.message)\n")
    out = micropython(script).splitlines()
    assert [line.split()[1] for line in out] == ["-22", "-22", "-71"]


def test_allowedips_moves_and_order_under_micropython(micropython):
    """Per-peer prefixes are a dict; MicroPython's dicts keep no insertion order, so entries()
    must give the order the peer was given them by itself."""
    script = (
        "from wgedge.core.allowedips import AllowedIPs\n"
        "from wgedge.core.ipaddr import parse_cidr, format_cidr\n"
        "t = AllowedIPs()\n"
        "for i in range(40):\n"
        "    a, b = parse_cidr('10.%d.0.0/16' % (39 - i))\n"
        "    t.insert(a, b, 'p' if i % 3 else 'q')\n"
        "for i in range(0, 40, 5):\n"
        "    a, b = parse_cidr('10.%d.0.0/16' % i)\n"
        "    t.insert(a, b, 'q')\n"
        "t.remove(*parse_cidr('10.1.0.0/16'), 'p')\n"
        "for peer in ('p', 'q'):\n"
        "    print(peer, ' '.join(format_cidr(a, b) for a, b in t.entries(peer)))\n"
        "print(len(t), t.lookup(parse_cidr('10.5.1.1/32')[0]))\n")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(script, "<allowedips>", "exec"), {})
    assert micropython(script) == buf.getvalue()
    # 10.35 was p's third but moved to q; q lists its own first, then the ones it took
    assert buf.getvalue().startswith("p 10.38.0.0/16 10.37.0.0/16 10.34.0.0/16")
    assert "10.0.0.0/16 10.5.0.0/16 10.10.0.0/16" in buf.getvalue().splitlines()[1]
