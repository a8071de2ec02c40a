"""The UCI and wg-quick loaders: valid files to the model, broken files to file:line messages,
and random text never raising anything but the loader's own error list."""

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgedge.config import model, uci, wgquick
from wgedge.core.ipaddr import format_cidr

KEY_A = "og3EZhpFsYGbfYYD0LNPS7PkHNcoB7L35p4UqW+2pSo="
KEY_B = "s+ZbzW6e6IDm1tMR4oW8Td8P6qiCajljerCD/c3Ty0Y="
KEY_C = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="

# Exactly as OpenWrt's uci writes /etc/config/network (tabs, single quotes, lists).
OPENWRT_NETWORK = textwrap.dedent("""\

    config interface 'loopback'
    \toption device 'lo'
    \toption proto 'static'
    \toption ipaddr '127.0.0.1'
    \toption netmask '255.0.0.0'

    config globals 'globals'
    \toption ula_prefix 'fd12:3456:789a::/48'

    config device
    \toption name 'br-lan'
    \toption type 'bridge'
    \tlist ports 'lan1'

    config interface 'wg0'
    \toption proto 'wireguard'
    \toption private_key '%s'
    \toption listen_port '51820'
    \tlist addresses '10.0.0.1/24'
    \tlist addresses 'fd00::1/64'
    \toption mtu '1400'
    \toption fwmark '0x10'
    \toption auto '1'
    \toption ip6prefix 'fd00:1::/64'

    config wireguard_wg0
    \toption description 'laptop'
    \toption public_key '%s'
    \toption preshared_key '%s'
    \tlist allowed_ips '10.0.0.2/32'
    \tlist allowed_ips 'fd00::2/128'
    \toption route_allowed_ips '1'
    \toption endpoint_host 'laptop.example.net'
    \toption endpoint_port '51821'
    \toption persistent_keepalive '25'

    config wireguard_wg0 'disabled_peer'
    \toption public_key '%s'
    \tlist allowed_ips '10.0.0.3/32'
    \toption disabled '1'
    """) % (KEY_A, KEY_B, KEY_C, KEY_C)


def test_openwrt_network_file():
    loaded = model.from_uci(OPENWRT_NETWORK, "network")
    assert loaded.errors == []
    assert [i.name for i in loaded.interfaces] == ["wg0"]
    i = loaded.interfaces[0]
    assert i.private_key == model.decode_key(KEY_A)
    assert (i.listen_port, i.mtu, i.fwmark) == (51820, 1400, 16)
    assert i.addresses == ["10.0.0.1/24", "fd00::1/64"]
    assert len(i.peers) == 1  # the disabled one is skipped
    p = i.peers[0]
    assert p.public_key == model.decode_key(KEY_B)
    assert p.preshared_key == model.decode_key(KEY_C)
    assert [format_cidr(*a) for a in p.allowed_ips] == ["10.0.0.2/32", "fd00::2/128"]
    assert p.route_allowed_ips and p.persistent_keepalive == 25
    assert (p.endpoint_host, p.endpoint_port) == ("laptop.example.net", 51821)
    warnings = [str(w) for w in loaded.warnings]
    assert any("loopback" in w and "ignored" in w for w in warnings)
    assert any("ip6prefix" in w for w in warnings)
    assert not any("'auto'" in w for w in warnings)


def test_syntax_quotes_escapes_joins_semicolons_comments():
    text = ("# comment\n"
            "config interface wg1 ; option proto wireguard\n"
            "  option private_key \"%s\"  # trailing comment\n"
            "  list addresses '10.1.0.1/''24'\n"
            "  option description 'it''s \\n literal'\n"
            "config wireguard_wg1 'p1'\n"
            "  option public_key %s\n"
            "  option allowed_ips '10.1.0.2/32 10.1.9.0/24'\n"
            "  option endpoint_host a\\ b\n") % (KEY_A, KEY_B)
    sections, errors = uci.parse(text, "f")
    assert errors == []
    assert sections[0].get("proto") == "wireguard"
    assert sections[0].lists["addresses"][0][0] == "10.1.0.1/24"
    assert sections[1].get("endpoint_host") == "a b"
    loaded = model.from_uci(text, "f")
    assert [str(e) for e in loaded.errors] == [
        "f:5: option 'description': unknown option for a wireguard interface",
        "f:9: option 'endpoint_host': expected a host name or address"]
    assert len(loaded.interfaces[0].peers) == 1
    assert len(loaded.interfaces[0].peers[0].allowed_ips) == 2


@pytest.mark.parametrize("word,value", [(w, True) for w in uci.TRUE_WORDS[:4]]
                         + [(w, False) for w in uci.FALSE_WORDS[:4]])
def test_booleans(word, value):
    assert uci.parse_bool(word) is value
    assert uci.parse_bool(word.upper()) is value


BROKEN = [
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key 'abc'\n",
     "f:3: option 'private_key': a key is 44 base64 characters"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "\toption listen_port '70000'\n" % KEY_A, "f:4: option 'listen_port': must be from 0"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "config wireguard_wg0\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.0/33'\n"
     % (KEY_A, KEY_B), "f:6: option 'allowed_ips': prefix length 33"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "config wireguard_wg0\n\toption public_key '%s'\n" % (KEY_A, KEY_B),
     "f:4: option 'allowed_ips': peer has no allowed_ips"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "config wireguard_wg0\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.2'\n"
     "config wireguard_wg0\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.3'\n"
     % (KEY_A, KEY_B, KEY_B), "f:7: option 'public_key': duplicate peer"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "\toption colour 'blue'\n" % KEY_A, "f:4: option 'colour': unknown option"),
    ("config bogus 'x'\n", "f:1: unknown section type 'bogus'"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "config wireguard_wg9\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.2'\n"
     % (KEY_A, KEY_B), "f:4: peer section for interface 'wg9'"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n", "f:1: option 'private_key': "
     "interface 'wg0' has no private_key"),
    ("option proto 'x'\n", "f:1: option 'proto': option outside a config section"),
    ("config interface 'a-b'\n", "f:1: bad section name 'a-b'"),
    ("config interface 'wg0'\n\toption proto 'wireguard\n", "f:2: unterminated single quote"),
    ("config interface 'wg0'\n\toption proto \"wireguard\n", "f:2: unterminated double quote"),
    ("frobnicate\n", "f:1: unknown keyword 'frobnicate'"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "\toption mtu '100'\n" % KEY_A, "f:4: option 'mtu': must be from 1280"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "config wireguard_wg0\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.2'\n"
     "\toption endpoint_port 'x'\n" % (KEY_A, KEY_B), "f:7: option 'endpoint_port'"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "\toption disabled 'maybe'\n" % KEY_A, "f:4: option 'disabled': expected a boolean"),
]


@pytest.mark.parametrize("text,message", BROKEN)
def test_broken_files_name_file_line_option(text, message):
    loaded = model.from_uci(text, "f")
    got = [str(e) for e in loaded.errors]
    assert any(g.startswith(message) for g in got), got


def test_every_error_reported_at_once():
    text = ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key 'x'\n"
            "\toption listen_port 'y'\n\toption mtu 'z'\n")
    assert len(model.from_uci(text, "f").errors) == 3


def test_key_file_addition(tmp_path):
    key = tmp_path / "wg0.key"
    key.write_text(KEY_A + "\n")
    conf = tmp_path / "wgedge"
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key_file 'wg0.key'\n")
    loaded = model.load(str(conf))
    assert loaded.errors == [] and loaded.interfaces[0].private_key == model.decode_key(KEY_A)
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key_file 'missing.key'\n")
    assert "cannot read key file" in str(model.load(str(conf)).errors[0])


def test_generate_is_accepted_and_written_back(tmp_path):
    from wgedge import manage

    conf = tmp_path / "wgedge"
    conf.write_text("# keep me\nconfig interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key 'generate'\n")
    conf.chmod(0o600)
    loaded = model.load(str(conf))
    assert loaded.errors == [] and loaded.interfaces[0].generate_line == 4
    manage.generate_keys(loaded)
    text = conf.read_text()
    assert text.startswith("# keep me\n") and "generate" not in text
    again = model.load(str(conf))
    assert again.interfaces[0].private_key == loaded.interfaces[0].private_key
    assert conf.stat().st_mode & 0o777 == 0o600


def test_key_round_trip_and_bad_keys():
    assert model.encode_key(model.decode_key(KEY_A)) == KEY_A
    for bad in ("", "x" * 44, KEY_A[:-1], KEY_A[:-2] + "==", KEY_A.replace("o", "!")):
        with pytest.raises(ValueError):
            model.decode_key(bad)


WGQUICK = """[Interface]
PrivateKey = %s
Address = 10.2.0.1/24, fd02::1/64
ListenPort = 51820
MTU = 1380
DNS = 1.1.1.1

[Peer]
PublicKey = %s
AllowedIPs = 10.2.0.2/32, 192.168.5.0/24
Endpoint = [2001:db8::5]:51821
PersistentKeepalive = 15
""" % (KEY_A, KEY_B)


def test_wg_quick_file():
    loaded = wgquick.from_text(WGQUICK, "/etc/wireguard/wg7.conf")
    assert loaded.errors == []
    i = loaded.interfaces[0]
    assert (i.name, i.listen_port, i.mtu) == ("wg7", 51820, 1380)
    assert i.addresses == ["10.2.0.1/24", "fd02::1/64"]
    p = i.peers[0]
    assert (p.endpoint_host, p.endpoint_port, p.persistent_keepalive) == ("2001:db8::5", 51821, 15)
    assert p.route_allowed_ips
    assert any("DNS" in str(w) for w in loaded.warnings)
    bad = wgquick.from_text(WGQUICK.replace("ListenPort = 51820", "ListenPort = x")
                            .replace("PublicKey", "PublicKee"), "/x/wg7.conf")
    msgs = [str(e) for e in bad.errors]
    assert any(m.startswith("/x/wg7.conf:4: option 'ListenPort'") for m in msgs)
    assert any(m.startswith("/x/wg7.conf:9: option 'PublicKee'") for m in msgs)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("config option list interface wireguard_wg0 "
                                              "'\"\\;#\n\t=abcxyz019./:-[]")), max_size=300))
def test_random_text_only_gives_loader_errors(text):
    loaded = model.from_uci(text, "fuzz")
    for e in loaded.errors + loaded.warnings:
        assert isinstance(e, uci.ConfigError) and str(e).startswith("fuzz")
    wq = wgquick.from_text(text, "/f/wg0.conf")
    for e in wq.errors + wq.warnings:
        assert isinstance(e, uci.ConfigError)
