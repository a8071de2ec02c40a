"""The userspace API text protocol against the core device (no sockets)."""

import pytest

from tests.memnet import SeededRng
from wgedge import crypto
from wgedge.core import uapi
from wgedge.core.device import Device, Output

BACKEND = crypto.load("fast")
K1 = bytes(range(1, 33))
K2 = bytes(range(2, 34))


def device():
    return Device(BACKEND, SeededRng("uapi"))


def apply(dev, text, now=10.0):
    ops = uapi.parse_set([line for line in text.strip().split("\n")])
    out = Output(dev)
    uapi.apply_set(dev, ops, now, out)
    return out


def pub(priv):
    return BACKEND.x25519_public(uapi.hex_to_key(uapi.key_to_hex(priv)))


def test_set_then_get_in_wireguard_go_order():
    dev = device()
    peer_pub = uapi.key_to_hex(pub(K2))
    apply(dev, """
private_key=%s
listen_port=51820
fwmark=7
public_key=%s
preshared_key=%s
endpoint=[fd00::2]:51821
persistent_keepalive_interval=0
replace_allowed_ips=true
allowed_ip=10.0.0.0/24
allowed_ip=fd00::/64
protocol_version=1
""" % (uapi.key_to_hex(K1), peer_pub, "ab" * 32))
    lines = uapi.get_lines(dev)
    assert lines[0].startswith("private_key=")
    assert lines[1:3] == ["listen_port=51820", "fwmark=7"]
    assert lines[3:] == [
        "public_key=" + peer_pub,
        "preshared_key=" + "ab" * 32,
        "protocol_version=1",
        "endpoint=[fd00::2]:51821",
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "tx_bytes=0",
        "rx_bytes=0",
        "persistent_keepalive_interval=0",
        "allowed_ip=10.0.0.0/24",
        "allowed_ip=fd00::/64",
    ]


def test_allowed_ip_minus_removes_one_prefix_and_prefixes_move_between_peers():
    dev = device()
    p1, p2 = uapi.key_to_hex(pub(K1)), uapi.key_to_hex(pub(K2))
    apply(dev, "public_key=%s\nallowed_ip=10.1.0.0/16\nallowed_ip=10.2.0.0/16" % p1)
    apply(dev, "public_key=%s\nallowed_ip=10.2.0.0/16" % p2)
    apply(dev, "public_key=%s\nallowed_ip=-10.1.0.0/16" % p1)
    text = "\n".join(uapi.get_lines(dev))
    assert "10.1.0.0/16" not in text
    assert text.count("allowed_ip=10.2.0.0/16") == 1
    assert text.index("allowed_ip=10.2.0.0/16") > text.index("public_key=" + p2)


def test_remove_update_only_replace_peers():
    dev = device()
    p1, p2 = uapi.key_to_hex(pub(K1)), uapi.key_to_hex(pub(K2))
    apply(dev, "public_key=%s\nupdate_only=true\nallowed_ip=10.0.0.1/32" % p1)
    assert dev.peers == {}
    apply(dev, "public_key=%s\npublic_key=%s" % (p1, p2))
    assert len(dev.peers) == 2
    apply(dev, "public_key=%s\nremove=true" % p1)
    assert list(dev.peers) == [pub(K2)]
    apply(dev, "replace_peers=true")
    assert dev.peers == {}


def test_host_bits_are_masked_as_wg_shows_them():
    dev = device()
    apply(dev, "public_key=%s\nallowed_ip=10.1.2.3/16" % uapi.key_to_hex(pub(K1)))
    assert "allowed_ip=10.1.0.0/16" in uapi.get_lines(dev)


BAD = [
    ("listen_port=70000", uapi.EINVAL),
    ("listen_port=-1", uapi.EINVAL),
    ("private_key=1234", uapi.EINVAL),
    ("private_key=" + "zz" * 32, uapi.EINVAL),
    ("allowed_ip=10.0.0.0/8", uapi.EINVAL),  # peer key before any public_key
    ("public_key=" + "00" * 32 + "\nallowed_ip=10.0.0.0/33", uapi.EINVAL),
    ("public_key=" + "00" * 32 + "\nallowed_ip=300.0.0.0/8", uapi.EINVAL),
    ("public_key=" + "00" * 32 + "\nendpoint=1.2.3.4", uapi.EINVAL),
    ("public_key=" + "00" * 32 + "\nendpoint=[::1:51820", uapi.EINVAL),
    ("public_key=" + "00" * 32 + "\nprotocol_version=2", uapi.EINVAL),
    ("public_key=" + "00" * 32 + "\nremove=yes", uapi.EINVAL),
    ("bogus=1", uapi.EINVAL),
    ("no equals sign", uapi.EPROTO),
]


@pytest.mark.parametrize("text,errno", BAD)
def test_bad_lines_answer_errno_and_change_nothing(text, errno):
    dev = device()
    apply(dev, "private_key=%s\npublic_key=%s\nallowed_ip=10.9.0.0/16" % (
        uapi.key_to_hex(K1), uapi.key_to_hex(pub(K2))))
    before = uapi.get_lines(dev)
    with pytest.raises(uapi.UapiError) as info:
        apply(dev, "public_key=%s\nallowed_ip=10.8.0.0/16\n%s" % (uapi.key_to_hex(pub(K2)), text)
              if not text.startswith(("listen", "private", "bogus", "no eq", "allowed"))
              else text)
    assert info.value.errno == errno
    assert uapi.get_lines(dev) == before


def test_peer_with_own_public_key_is_ignored():
    dev = device()
    apply(dev, "private_key=%s" % uapi.key_to_hex(K1))
    apply(dev, "public_key=%s\nallowed_ip=10.0.0.0/8" % uapi.key_to_hex(dev.public_key))
    assert dev.peers == {}


def test_endpoint_forms():
    assert uapi.parse_endpoint("192.0.2.1:51820") == ("192.0.2.1", 51820)
    assert uapi.parse_endpoint("[2001:DB8::1]:1") == ("2001:db8::1", 1, 0, 0)
    for bad in ("192.0.2.1:0", "192.0.2.1:65536", "host:1", ":1", "[1.2.3.4]:5", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            uapi.parse_endpoint(bad)


def test_internal_error_in_a_set_answers_and_keeps_the_daemon(monkeypatch):
    """A bug while applying a set (an exception that is no UapiError) gets wireguard-go's
    'unknown error' errno and a log line; the loop, the connection and the device live on."""
    from wgedge.io import loop

    iface = loop.Interface.__new__(loop.Interface)
    iface.device, iface.udp, iface.epoll = device(), None, None

    def broken(*args, **kwargs):
        raise AttributeError("a bug")

    monkeypatch.setattr(loop.uapi, "apply_set", broken)
    reply, keep = iface._control_request("set=1", ["listen_port=51820"])
    assert (reply, keep) == (b"errno=%d\n\n" % uapi.ENOANO, True)
    monkeypatch.undo()
    reply, keep = iface._control_request("get=1", [])
    assert keep and b"".join(reply).endswith(b"errno=0\n\n")


def _many_peers(dev, count, prefixes_each=1, base=0):
    """Peers with made-up public keys (any 32 bytes will do) and 10.x.y.z/32 prefixes."""
    keys = []
    lines = []
    for i in range(base, base + count):
        key = bytes([7]) + i.to_bytes(4, "big") + bytes(27)
        keys.append(key)
        lines.append("public_key=" + uapi.key_to_hex(key))
        lines.append("endpoint=192.0.2.%d:%d" % (i % 250 + 1, 1000 + i))
        for j in range(prefixes_each):
            n = i * prefixes_each + j
            lines.append("allowed_ip=10.%d.%d.%d/32" % (n >> 16 & 255, n >> 8 & 255, n & 255))
    apply(dev, "\n".join(lines))
    return keys


def test_get_pieces_join_to_the_get_lines_answer():
    dev = device()
    assert list(uapi.get_pieces(dev)) == []
    apply(dev, "private_key=%s\nlisten_port=51820" % uapi.key_to_hex(K1))
    _many_peers(dev, 5)
    _many_peers(dev, 1, prefixes_each=3 * uapi.ALLOWED_IPS_PER_PIECE + 7, base=100)
    pieces = list(uapi.get_pieces(dev))
    assert "".join(pieces) == "\n".join(uapi.get_lines(dev)) + "\n"
    # A piece is whole lines and at most ALLOWED_IPS_PER_PIECE prefixes: the work per piece
    # is bounded however many prefixes one peer has.
    assert all(p.endswith("\n") for p in pieces)
    assert max(p.count("allowed_ip=") for p in pieces) <= uapi.ALLOWED_IPS_PER_PIECE
    assert len(pieces) == 1 + 5 + 4


PEER_FIELDS = ["public_key", "preshared_key", "protocol_version", "endpoint",
               "last_handshake_time_sec", "last_handshake_time_nsec", "tx_bytes", "rx_bytes",
               "persistent_keepalive_interval"]


def _peer_blocks(text):
    """-> {public key hex: (fields in order, [allowed ips])}; asserts every block is whole."""
    blocks = {}
    current = None
    for line in text.rstrip("\n").split("\n"):
        key, eq, value = line.partition("=")
        assert eq and value, line
        if key == "public_key":
            current = blocks.setdefault(value, ([], []))
            assert not current[0], "peer listed twice"
        if current is None:
            continue  # interface lines
        if key == "allowed_ip":
            current[1].append(value)
        else:
            assert not current[1], "peer field after its allowed IPs: " + line
            current[0].append(key)
    for fields, _ in blocks.values():
        assert fields == PEER_FIELDS, fields
    return blocks


def test_get_pieces_while_the_device_changes_between_pieces():
    """What a get spanning wake-ups shows (uapi.get_pieces): never half a peer; peers removed
    before their turn are left out, peers added after the start are not listed, and a
    peer's allowed IPs are those it had at its turn."""
    dev = device()
    apply(dev, "private_key=%s" % uapi.key_to_hex(K1))
    keys = _many_peers(dev, 40, prefixes_each=2)
    big = _many_peers(dev, 1, prefixes_each=2 * uapi.ALLOWED_IPS_PER_PIECE, base=500)[0]
    later = _many_peers(dev, 5, base=600)
    hexes = [uapi.key_to_hex(k) for k in keys + [big] + later]
    pieces = []
    for i, piece in enumerate(uapi.get_pieces(dev)):
        pieces.append(piece)
        if i == 3:
            apply(dev, "public_key=%s\nremove=true" % hexes[0])  # already shown: stays
            apply(dev, "public_key=%s\nremove=true" % hexes[20])  # not yet: left out
            apply(dev, "public_key=%s\nallowed_ip=10.99.0.1/32" % hexes[30])  # not yet: shown
            _many_peers(dev, 3, base=900)  # added after the start: not listed
        if i == 41:  # the big peer's first piece (of three) was just made
            apply(dev, "public_key=%s\nremove=true" % uapi.key_to_hex(big))
            apply(dev, "public_key=%s\nremove=true" % hexes[-1])
    blocks = _peer_blocks("".join(pieces))
    expected = [h for h in hexes if h not in (hexes[20], hexes[-1])]
    assert list(blocks) == expected
    assert "10.99.0.1/32" in blocks[hexes[30]][1]
    assert len(blocks[uapi.key_to_hex(big)][1]) == 2 * uapi.ALLOWED_IPS_PER_PIECE


CANARY = "cHJpdmF0ZWtleWNhbmFyeXByaXZhdGVrZXljYW5hcnk="  # base64 of 32 bytes, key-shaped
CANARY_HEX = "70726976617465" + "6b6579" * 19  # 64 hex digits, key-shaped


@pytest.mark.parametrize("line", [
    "private_key=" + CANARY, "private_key=" + CANARY_HEX + "0", "listen_port=" + CANARY,
    "fwmark=" + CANARY, "replace_peers=" + CANARY, CANARY, CANARY[:-1], CANARY_HEX,
    "bogus=" + CANARY, CANARY + "=" + CANARY_HEX, "public_key=" + CANARY,
    "PEER endpoint=" + CANARY, "PEER allowed_ip=" + CANARY, "PEER allowed_ip=-" + CANARY,
    "PEER preshared_key=" + CANARY, "PEER persistent_keepalive_interval=" + CANARY,
    "PEER protocol_version=" + CANARY, "PEER remove=" + CANARY, "PEER " + CANARY,
    "PEER private_key=" + CANARY_HEX, "PEER unknown=" + CANARY_HEX,
])
def test_errors_name_the_line_and_key_never_the_value(line):
    """UapiError messages are logged: a value on a malformed line may be a pasted key."""
    lines = [line]
    if line.startswith("PEER "):
        lines = ["public_key=" + "00" * 32, line[5:]]
    with pytest.raises(uapi.UapiError) as info:
        uapi.parse_set(lines)
    message = info.value.message
    assert "line %d" % len(lines) in message
    for secret in (CANARY, CANARY[:12], CANARY_HEX[:16], CANARY_HEX[-16:], "cHJpdmF0"):
        assert secret not in message, message
