"""The userspace API text protocol against the core device (no sockets)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.memnet import SeededRng
from wgedge import crypto
from wgedge.core import uapi, uapi_get
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
    lines = uapi_get.get_lines(dev)
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
    text = "\n".join(uapi_get.get_lines(dev))
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
    assert "allowed_ip=10.1.0.0/16" in uapi_get.get_lines(dev)


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
    before = uapi_get.get_lines(dev)
    with pytest.raises(uapi.UapiError) as info:
        apply(dev, "public_key=%s\nallowed_ip=10.8.0.0/16\n%s" % (uapi.key_to_hex(pub(K2)), text)
              if not text.startswith(("listen", "private", "bogus", "no eq", "allowed"))
              else text)
    assert info.value.errno == errno
    assert uapi_get.get_lines(dev) == before


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

    def answer(op, lines):
        request = iface._control_begin(op)
        request.feed(lines)
        return request.finish()

    monkeypatch.setattr(loop.uapi, "apply_set", broken)
    reply, keep = answer("set=1", ["listen_port=51820"])
    assert (reply, keep) == (b"errno=%d\n\n" % uapi.ENOANO, True)
    monkeypatch.undo()
    monkeypatch.setattr(loop.uapi.SetParser, "_parse_line", broken)  # a bug in the parser
    reply, keep = answer("set=1", ["listen_port=51820"])
    assert (reply, keep) == (b"errno=%d\n\n" % uapi.ENOANO, True)
    monkeypatch.undo()
    reply, keep = answer("get=1", [])
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
    assert list(uapi_get.get_pieces(dev)) == []
    apply(dev, "private_key=%s\nlisten_port=51820" % uapi.key_to_hex(K1))
    _many_peers(dev, 5)
    _many_peers(dev, 1, prefixes_each=3 * uapi_get.ALLOWED_IPS_PER_PIECE + 7, base=100)
    pieces = list(uapi_get.get_pieces(dev))
    assert "".join(pieces) == "\n".join(uapi_get.get_lines(dev)) + "\n"
    # A piece is whole lines and at most ALLOWED_IPS_PER_PIECE prefixes: the work per piece
    # is bounded however many prefixes one peer has.
    assert all(p.endswith("\n") for p in pieces)
    assert max(p.count("allowed_ip=") for p in pieces) <= uapi_get.ALLOWED_IPS_PER_PIECE
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
    """What a get spanning wake-ups shows (uapi_get.get_pieces): never half a peer; peers removed
    before their turn are left out, peers added after the start are not listed, and a
    peer's allowed IPs are those it had at its turn."""
    dev = device()
    apply(dev, "private_key=%s" % uapi.key_to_hex(K1))
    keys = _many_peers(dev, 40, prefixes_each=2)
    big = _many_peers(dev, 1, prefixes_each=2 * uapi_get.ALLOWED_IPS_PER_PIECE, base=500)[0]
    later = _many_peers(dev, 5, base=600)
    hexes = [uapi.key_to_hex(k) for k in keys + [big] + later]
    pieces = []
    for i, piece in enumerate(uapi_get.get_pieces(dev)):
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
    assert len(blocks[uapi.key_to_hex(big)][1]) == 2 * uapi_get.ALLOWED_IPS_PER_PIECE


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


# --- parsing a set as it arrives (uapi.SetParser) ----------------------------------------------
# The reference: parse_set as it was when a set was parsed whole at its blank line, into a
# list of (key, value) pairs, with the helpers it used then. Deliberately naive (a character
# loop for hex keys); SetParser must give what it gives, for every split of every input.
def _ref_hex_to_key(text):
    if len(text) != 64:
        raise ValueError("length")
    out = bytearray(32)
    lower = text.lower()
    for i in range(32):
        hi, lo = "0123456789abcdef".find(lower[2 * i]), "0123456789abcdef".find(lower[2 * i + 1])
        if hi < 0 or lo < 0:
            raise ValueError("not hex")
        out[i] = (hi << 4) | lo
    return bytes(out)


def _ref_parse_endpoint(text):
    from wgedge.core.ipaddr import format_ip, parse_ip

    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1:close + 2] != ":":
            raise ValueError("brackets")
        host, port_text = text[1:close], text[close + 2:]
        zone = ""
        if "%" in host:
            host, zone = host.split("%", 1)
        host = format_ip(parse_ip(host))
        if len(parse_ip(host)) != 16:
            raise ValueError("v4 in brackets")
        port = uapi._parse_int(port_text, 1, 65535, "endpoint port")
        return (host + ("%" + zone if zone else ""), port, 0, 0)
    host, sep, port_text = text.rpartition(":")
    if not sep or ":" in host:
        raise ValueError("no port")
    addr = parse_ip(host)
    if len(addr) != 4:
        raise ValueError("not v4")
    return (format_ip(addr), uapi._parse_int(port_text, 1, 65535, "endpoint port"))


def _ref_parse_set(lines):
    from wgedge.core.ipaddr import parse_cidr

    ops = []
    in_peer = False
    for lineno, line in enumerate(lines, 1):
        key, eq, value = line.partition("=")
        if not eq:
            raise uapi.UapiError(uapi.EPROTO, "line %d: expected key=value (a line of %d "
                                 "characters without '=')" % (lineno, len(line)))
        try:
            if key == "public_key":
                in_peer = True
                ops.append((key, _ref_hex_to_key(value)))
            elif key in uapi._DEVICE_KEYS and not in_peer:
                if key == "private_key":
                    ops.append((key, _ref_hex_to_key(value)))
                elif key == "listen_port":
                    ops.append((key, uapi._parse_int(value, 0, 65535, "listen_port")))
                elif key == "fwmark":
                    ops.append((key, uapi._parse_int(value, 0, 0xFFFFFFFF, "fwmark")))
                else:
                    ops.append((key, uapi._parse_bool_true(key, value)))
            elif key in uapi._PEER_KEYS and in_peer:
                if key in ("remove", "update_only", "replace_allowed_ips"):
                    ops.append((key, uapi._parse_bool_true(key, value)))
                elif key == "preshared_key":
                    ops.append((key, _ref_hex_to_key(value)))
                elif key == "endpoint":
                    ops.append((key, _ref_parse_endpoint(value)))
                elif key == "persistent_keepalive_interval":
                    ops.append((key, uapi._parse_int(value, 0, 65535, key)))
                elif key == "allowed_ip":
                    remove = value.startswith("-")
                    addr, bits = parse_cidr(value[1:] if remove else value)
                    ops.append((key, (remove, addr, bits)))
                elif value != "1":
                    raise ValueError("protocol_version")
            else:
                where = "a peer" if in_peer else "the interface"
                if key in uapi._DEVICE_KEYS or key in uapi._PEER_KEYS:
                    raise uapi.UapiError(uapi.EINVAL, "line %d: %s is not a key for %s"
                                         % (lineno, key, where))
                raise uapi.UapiError(uapi.EINVAL, "line %d: unknown key (%d characters) for %s"
                                     % (lineno, len(key), where))
        except ValueError:
            raise uapi.UapiError(uapi.EINVAL, "line %d: %s takes %s (got %d characters)"
                                 % (lineno, key, uapi._EXPECTED[key], len(value)))
    return ops


def _outcome(parse):
    """-> ("ok", [(key, value)]) or ("error", errno, message)."""
    try:
        return ("ok", list(parse()))
    except uapi.UapiError as exc:
        return ("error", exc.errno, exc.message)


_HEXKEY = st.binary(min_size=32, max_size=32).map(uapi.key_to_hex)
_V4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "%d.%d.%d.%d" % t)
_V6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda w: ":".join("%x" % x for x in w))
_ADDRESS = st.one_of(_V4, _V6, st.sampled_from(["::", "::1", "fd00::1", "::ffff:1.2.3.4",
                                                "1.2.3", "01.2.3.4", "1:2:3", ":::", ""]))
_NUMBER = st.one_of(st.integers(0, 70000).map(str), st.sampled_from(
    ["", "-1", "4294967295", "4294967296", "0x10", "1_0", " 1", "１", "99999999999"]))
_VALUES = {
    "private_key": st.one_of(_HEXKEY, _HEXKEY.map(str.upper), st.just("00" * 32),
                             st.text(max_size=70)),
    "public_key": st.one_of(_HEXKEY, _HEXKEY.map(lambda k: k[:-1] + "g"),
                            _HEXKEY.map(lambda k: "0x" + k[2:]), st.text(max_size=70)),
    "preshared_key": st.one_of(_HEXKEY, st.just("00" * 32), st.text(max_size=66)),
    "listen_port": _NUMBER, "fwmark": _NUMBER, "persistent_keepalive_interval": _NUMBER,
    "replace_peers": st.sampled_from(["true", "false", ""]),
    "remove": st.sampled_from(["true", "True"]),
    "update_only": st.sampled_from(["true", "1"]),
    "replace_allowed_ips": st.sampled_from(["true", "yes"]),
    "endpoint": st.one_of(
        st.tuples(_ADDRESS, _NUMBER).map(lambda t: "%s:%s" % t),
        st.tuples(_ADDRESS, st.sampled_from(["", "%eth0", "%", "%é"]), _NUMBER).map(
            lambda t: "[%s%s]:%s" % t),
        st.sampled_from(["1." * 40 + "1:1", "[" + "1" * 60 + "]:1"]), st.text(max_size=30)),
    "allowed_ip": st.one_of(
        st.tuples(st.sampled_from(["", "-", " ", "- "]), _ADDRESS,
                  st.sampled_from(["", "/0", "/8", "/32", "/64", "/128", "/129", "/x", "/"]),
                  st.sampled_from(["", " ", "\t"])).map(lambda t: "%s%s%s%s" % t),
        st.sampled_from([" " * 70 + "10.0.0.1/32", "1" * 70]), st.text(max_size=30)),
    "protocol_version": st.sampled_from(["1", "2", ""]),
}
_LINE = st.one_of(
    st.sampled_from(sorted(_VALUES)).flatmap(
        lambda key: _VALUES[key].map(lambda value: key + "=" + value)),
    st.text(max_size=20).filter(lambda t: "\n" not in t))


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.lists(st.sampled_from(sorted(_VALUES)).flatmap(  # mostly valid peer sections
        lambda key: _VALUES[key].map(lambda value: key + "=" + value)), max_size=30),
    st.lists(_LINE, max_size=30)).map(lambda lines: [t.replace("\n", " ") for t in lines]),
       st.lists(st.integers(0, 30), max_size=6))
def test_set_parsed_as_it_arrives_is_parse_set_whole(lines, cuts):
    """Fed in any pieces, SetParser gives exactly what the former whole-request parse_set
    gave (every (key, value), or the same errno and message), and so does parse_set."""
    expected = _outcome(lambda: _ref_parse_set(lines))
    assert _outcome(lambda: uapi.operations(uapi.parse_set(lines))) == expected
    parser = uapi.SetParser()
    bounds = sorted(set(c for c in cuts if c <= len(lines))) + [len(lines)]
    start = 0
    for end in bounds:
        parser.feed(lines[start:end])
        start = end
    assert _outcome(lambda: uapi.operations(parser.finish())) == expected


def test_parsed_set_is_smaller_than_its_text():
    """What a set holds while its lines arrive: under half the text for a peer with a key,
    an endpoint and two prefixes, at most 4/3 of it for the least favourable lines."""
    peer = ["public_key=" + "ab" * 32, "endpoint=192.0.2.1:51820",
            "allowed_ip=10.1.2.0/24", "allowed_ip=fd00:1:2::/64"]
    text = sum(len(line) + 1 for line in peer)
    assert len(uapi.parse_set(peer)) * 2 <= text
    for worst in ("allowed_ip=::", "endpoint=[::]:1", "allowed_ip=-::/0", "endpoint=[::%a]:1"):
        lines = [peer[0]] + [worst] * 1000
        assert 3 * len(uapi.parse_set(lines)) <= 4 * sum(len(line) + 1 for line in lines)


def test_a_long_value_is_refused_before_ipaddr_loops_over_it(monkeypatch):
    """A line of megabytes must cost C-speed scans, not a Python step per character (ipaddr
    checks an address character by character: 0.14 s for an 8 MiB one here): an address or
    prefix longer than any valid one is refused before ipaddr sees it."""
    seen = []

    def watch(real):
        def check(text):
            seen.append(len(text))
            return real(text)
        return check

    monkeypatch.setattr(uapi, "parse_ip", watch(uapi.parse_ip))
    monkeypatch.setattr(uapi, "parse_cidr", watch(uapi.parse_cidr))
    big = "1" * (1 << 20) + ".1.1.1"
    for value in ("allowed_ip=" + big, "allowed_ip=-" + big, "allowed_ip=1.1.1.1/" + big,
                  "endpoint=" + big + ":1", "endpoint=[" + big + "]:1",
                  "endpoint=[" + big + "%eth0]:1"):
        with pytest.raises(uapi.UapiError) as info:
            uapi.parse_set(["public_key=" + "00" * 32, value])
        assert info.value.errno == uapi.EINVAL and "line 2" in info.value.message
    assert seen == []
    # The longest valid ones still pass.
    uapi.parse_set(["public_key=" + "00" * 32,
                    "allowed_ip=  ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128  ",
                    "endpoint=[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%" + "z" * 99
                    + "]:65535", "endpoint=255.255.255.255:65535"])
    assert seen == [53, 45, 15]  # the prefix with its spaces, the two addresses


def test_set_parser_under_micropython(micropython):
    """SetParser, operations and the faster hex_to_key run under MicroPython and give what
    CPython gives."""
    lines = ["private_key=" + "A1" * 32, "listen_port=51820", "fwmark=4294967295",
             "public_key=" + "0f" * 32, "preshared_key=" + "00" * 32,
             "endpoint=[fe80::1%eth0]:51820", "endpoint=192.0.2.1:1",
             "persistent_keepalive_interval=25", "replace_allowed_ips=true",
             "allowed_ip=10.0.0.0/8", "allowed_ip=-fd00::/64", "protocol_version=1",
             "public_key=" + "ee" * 32, "update_only=true", "remove=true"]
    script = ("from wgedge.core import uapi\n"
              "p = uapi.SetParser()\n"
              "lines = %r\n"
              "p.feed(lines[:5])\np.feed(lines[5:])\n"
              "for key, value in uapi.operations(p.finish()):\n"
              "    if isinstance(value, bytes):\n"
              "        value = uapi.key_to_hex(value)\n"
              "    elif isinstance(value, tuple) and key == 'allowed_ip':\n"
              "        value = (value[0], uapi.key_to_hex(value[1]), value[2])\n"
              "    print(key, value)\n"
              "for bad in ('0x' + 'a' * 62, 'g' * 64, '-' + 'a' * 63):\n"
              "    try:\n"
              "        uapi.hex_to_key(bad)\n"
              "        print('accepted', bad)\n"
              "    except ValueError:\n"
              "        print('refused')\n" % (lines,))
    expected = []
    for key, value in uapi.operations(uapi.parse_set(lines)):
        if isinstance(value, bytes):
            value = uapi.key_to_hex(value)
        elif key == "allowed_ip":
            value = (value[0], uapi.key_to_hex(value[1]), value[2])
        expected.append("%s %s" % (key, value))
    expected += ["refused"] * 3
    assert micropython(script).splitlines() == expected


# --- DH(our static, their static) waits for the first handshake (noise.static_static) ---------
class _CountingCrypto:
    """The fast backend, counting X25519 operations."""

    def __init__(self):
        self.real = BACKEND
        self.x25519_calls = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def x25519(self, private, public):
        self.x25519_calls += 1
        return self.real.x25519(private, public)


def _hub_and_spoke():
    from tests.memnet import Net

    crypto = _CountingCrypto()
    net = Net(crypto=crypto)
    a, b = net.node("a", "192.0.2.1"), net.node("b", "192.0.2.2")
    apply(a.device, "public_key=%s\nendpoint=192.0.2.2:51820\nallowed_ip=10.0.0.2/32"
          % uapi.key_to_hex(b.public))
    apply(b.device, "public_key=%s\nendpoint=192.0.2.1:51820\nallowed_ip=10.0.0.1/32"
          % uapi.key_to_hex(a.public))
    return net, crypto, a, b


def _ping(net, src, dst, src_ip, dst_ip):
    """A packet from src's TUN to dst's, through whatever handshake it takes: delivered?"""
    from tests.memnet import ipv4_packet

    before = len(dst.tun)
    net.send(src, [ipv4_packet(src_ip, dst_ip, b"hello")])
    net.pump()
    return len(dst.tun) == before + 1


def test_peers_added_by_a_set_cost_no_dh_until_their_first_handshake():
    from wgedge.core import noise

    net, crypto, a, b = _hub_and_spoke()
    before = crypto.x25519_calls
    _many_peers(a.device, 2000, base=1000)  # (10.0.3.232 and up: not 10.0.0.2)
    assert crypto.x25519_calls == before  # was one X25519 per peer
    hs = [p.handshake for p in a.device.peers.values()]
    assert all(h.precomputed_static_static is noise.NOT_YET for h in hs)
    assert _ping(net, a, b, "10.0.0.1", "10.0.0.2")
    mine = a.device.peers[b.public].handshake.precomputed_static_static
    assert mine == BACKEND.x25519(a.device.noise.static_key, b.public)
    assert sum(h.precomputed_static_static is noise.NOT_YET for h in hs) == len(hs) - 1
    assert _ping(net, b, a, "10.0.0.2", "10.0.0.1")


@pytest.mark.parametrize("initiator", ["a", "b"])
def test_a_new_private_key_forgets_the_cached_dh(initiator):
    """Handshakes work, a sets a new private key (by a set, as `wg set` does), b takes a's
    new public key: handshakes work again, whichever side starts (a stale DH(static, static)
    on a's side would break both directions)."""
    net, crypto, a, b = _hub_and_spoke()
    assert _ping(net, a, b, "10.0.0.1", "10.0.0.2")
    old_public = a.public
    apply(a.device, "private_key=%s" % uapi.key_to_hex(bytes(range(100, 132))))
    assert a.public != old_public
    apply(b.device, "public_key=%s\nremove=true\npublic_key=%s\nendpoint=192.0.2.1:51820\n"
          "allowed_ip=10.0.0.1/32" % (uapi.key_to_hex(old_public), uapi.key_to_hex(a.public)))
    net.advance(10)  # past REKEY_TIMEOUT: a may initiate again
    if initiator == "a":
        assert _ping(net, a, b, "10.0.0.1", "10.0.0.2")
    else:
        assert _ping(net, b, a, "10.0.0.2", "10.0.0.1")
    assert (a.device.peers[b.public].handshake.precomputed_static_static
            == BACKEND.x25519(a.device.noise.static_key, b.public))


def test_a_peer_key_whose_dh_is_all_zeros_never_handshakes():
    """A low-order public key (here all zeros) makes DH(static, static) all zeros: no
    initiation is made, the refusal is counted, and the result (None, not "not yet") is kept,
    so later attempts cost no X25519."""
    from wgedge.core import consts as C

    net, crypto, a, b = _hub_and_spoke()
    apply(a.device, "public_key=%s\nendpoint=192.0.2.9:1\nallowed_ip=10.0.0.9/32"
          % uapi.key_to_hex(bytes(32)))
    bad = a.device.peers[bytes(32)]
    for attempt in range(3):
        before = crypto.x25519_calls
        sent = len(a.sent)
        assert not _ping(net, a, b, "10.0.0.1", "10.0.0.9")
        assert len(a.sent) == sent  # no initiation left
        assert bad.handshake.precomputed_static_static is None
        assert crypto.x25519_calls == before + (1 if attempt == 0 else 0)
        net.advance(C.REKEY_TIMEOUT + 1)
    assert a.device.drops.get(C.DROP_NO_PRIVATE_KEY) == 3
    assert _ping(net, a, b, "10.0.0.1", "10.0.0.2")  # the good peer is unaffected


def test_a_set_past_max_peers_changes_nothing(monkeypatch):
    """All or nothing at the peer limit too: a set that would pass MAX_PEERS is refused
    before anything changes (it used to add peers up to the limit, then fail half applied);
    removals and replace_peers in the same request count where they stand in it."""
    monkeypatch.setattr(uapi.C, "MAX_PEERS", 5)
    dev = device()
    keys = [uapi.key_to_hex(pub(bytes([i]) * 32)) for i in range(1, 12)]
    apply(dev, "\n".join("public_key=%s\nallowed_ip=10.0.0.%d/32" % (k, i)
                         for i, k in enumerate(keys[:3])))
    before = "\n".join(uapi_get.get_lines(dev))
    lines = ["public_key=%s\nallowed_ip=10.1.0.%d/32" % (k, i) for i, k in enumerate(keys[3:6])]
    with pytest.raises(uapi.UapiError) as exc:
        apply(dev, "listen_port=4000\n" + "\n".join(lines))
    assert exc.value.errno == uapi.EINVAL and "too many peers" in exc.value.message
    assert "\n".join(uapi_get.get_lines(dev)) == before
    # a removal after the additions comes too late: six peers at one point
    with pytest.raises(uapi.UapiError):
        apply(dev, "\n".join(lines) + "\npublic_key=%s\nremove=true" % keys[0])
    assert "\n".join(uapi_get.get_lines(dev)) == before
    # the same additions fit after one removal
    apply(dev, "public_key=%s\nremove=true\n" % keys[0] + "\n".join(lines))
    assert len(dev.peers) == 5
    with pytest.raises(uapi.UapiError):
        apply(dev, "public_key=%s" % keys[10])
    apply(dev, "replace_peers=true\n" + "\n".join("public_key=%s" % k for k in keys[6:11]))
    assert list(dev.peers) == [uapi.hex_to_key(k) for k in keys[6:11]]
