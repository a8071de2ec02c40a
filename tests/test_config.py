"""The UCI and wg-quick loaders: valid files to the model, broken files to file:line messages,
and random text never raising anything but the loader's own error list."""

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgedge.config import loader, schema, uci, wgquick
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
    loaded = loader.from_uci(OPENWRT_NETWORK, "network")
    assert loaded.errors == []
    assert [i.name for i in loaded.interfaces] == ["wg0"]
    i = loaded.interfaces[0]
    assert i.private_key == schema.decode_key(KEY_A)
    assert (i.listen_port, i.mtu, i.fwmark) == (51820, 1400, 16)
    assert i.addresses == ["10.0.0.1/24", "fd00::1/64"]
    assert len(i.peers) == 1  # the disabled one is skipped
    p = i.peers[0]
    assert p.public_key == schema.decode_key(KEY_B)
    assert p.preshared_key == schema.decode_key(KEY_C)
    assert [format_cidr(*a) for a in p.allowed_ips] == ["10.0.0.2/32", "fd00::2/128"]
    assert p.route_allowed_ips and p.persistent_keepalive == 25
    assert (p.endpoint_host, p.endpoint_port) == ("laptop.example.net", 51821)
    warnings = [str(w) for w in loaded.warnings]
    assert not any("loopback" in w or "globals" in w for w in warnings)
    assert loaded.summary() == ("network: not WireGuard, ignored: 1 interfaces (static); "
                                "1 globals; 1 device")
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
    loaded = loader.from_uci(text, "f")
    assert [str(e) for e in loaded.errors] == [
        "f:5: option 'description': unknown option for a wireguard interface",
        "f:9: option 'endpoint_host': expected a host name or an IP address, got 'a b'"]
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
     "config wireguard_wg0\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.2'\n"
     "config wireguard_wg0\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.3'\n"
     % (KEY_A, KEY_B, KEY_B), "f:7: option 'public_key': duplicate peer"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "\toption colour 'blue'\n" % KEY_A, "f:4: option 'colour': unknown option"),
    ("config bogus 'x'\n", "f:1: unknown section type 'bogus'"),
    ("config wireguard 'x'\n", "f:1: unknown section type 'wireguard': a peer's is "
     "wireguard_IFNAME"),
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
     "\toption mtu '50'\n" % KEY_A, "f:4: option 'mtu': must be from 68"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "config wireguard_wg0\n\toption public_key '%s'\n\tlist allowed_ips '10.0.0.2'\n"
     "\toption endpoint_port 'x'\n" % (KEY_A, KEY_B), "f:7: option 'endpoint_port'"),
    ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
     "\toption disabled 'maybe'\n" % KEY_A, "f:4: option 'disabled': expected a boolean"),
]


@pytest.mark.parametrize("text,message", BROKEN)
def test_broken_files_name_file_line_option(text, message):
    loaded = loader.from_uci(text, "f")
    got = [str(e) for e in loaded.errors]
    assert any(g.startswith(message) for g in got), got


def test_every_error_reported_at_once():
    text = ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key 'x'\n"
            "\toption listen_port 'y'\n\toption mtu 'z'\n")
    assert len(loader.from_uci(text, "f").errors) == 3


def test_key_file_addition(tmp_path):
    key = tmp_path / "wg0.key"
    key.write_text(KEY_A + "\n")
    conf = tmp_path / "wgedge"
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key_file 'wg0.key'\n")
    loaded = loader.load(str(conf))
    assert loaded.errors == [] and loaded.interfaces[0].private_key == schema.decode_key(KEY_A)
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key_file 'missing.key'\n")
    assert str(loader.load(str(conf)).errors[0]).endswith(
        "wgedge:3: option 'private_key_file': cannot read the key file: No such file or "
        "directory (a relative path starts at the config file's directory)")
    key.write_bytes(b"\xff\xfe")
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key_file '%s'\n" % key)
    assert "the key file is not text" in str(loader.load(str(conf)).errors[0])
    key.write_text(KEY_A[:-2] + "\n")
    assert "the key file holds no valid key: a key is 44 base64 characters" in str(
        loader.load(str(conf)).errors[0])


def test_generate_is_accepted_and_written_back(tmp_path):
    from wgedge.router import keys

    conf = tmp_path / "wgedge"
    conf.write_text("# keep me\nconfig interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key 'generate'\n")
    conf.chmod(0o600)
    loaded = loader.load(str(conf))
    assert loaded.errors == [] and loaded.interfaces[0].generate_line == 4
    keys.generate_keys(loaded)
    text = conf.read_text()
    assert text.startswith("# keep me\n") and "generate" not in text
    again = loader.load(str(conf))
    assert again.interfaces[0].private_key == loaded.interfaces[0].private_key
    assert conf.stat().st_mode & 0o777 == 0o600


def test_key_round_trip_and_bad_keys():
    assert schema.encode_key(schema.decode_key(KEY_A)) == KEY_A
    for bad in ("", "x" * 44, KEY_A[:-1], KEY_A[:-2] + "==", KEY_A.replace("o", "!")):
        with pytest.raises(ValueError):
            schema.decode_key(bad)


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
    loaded = loader.from_uci(text, "fuzz")
    for e in loaded.errors + loaded.warnings:
        assert isinstance(e, uci.ConfigError) and str(e).startswith("fuzz")
    wq = wgquick.from_text(text, "/f/wg0.conf")
    for e in wq.errors + wq.warnings:
        assert isinstance(e, uci.ConfigError)


# --- messages never quote what could be a key (the rule at the top of wgedge/config/uci.py) ----
# (row, text, key_like): 16 base64 characters in a row make a text key_like, whatever else is
# around them; addresses, ports, host names and interface names have no such run.
KEY_LIKE_ROWS = [
    (1, KEY_A, True),
    (2, KEY_A[:16], True),
    (3, KEY_A[:15], False),
    (4, "10.0.0.1/24 " + KEY_A[:20], True),
    (5, "x" * 15 + "." + "y" * 15, False),
    (6, "a" * 16, True),
    (7, "0123456789abcdef" * 4, True),  # a key in hex, as `wg` sends it
    (8, "2001:db8:1234:5678::1/128", False),
    (9, "192.168.100.200/24", False),
    (10, "wg_office_links", False),
    (11, "laptop.example.net", False),
    (12, "", False),
    (13, "+/=+/=+/=+/=+/=+/", True),
]


@pytest.mark.parametrize("row,text,expected", KEY_LIKE_ROWS)
def test_key_like_rows(row, text, expected):
    assert uci.key_like(text) is expected
    if expected:
        assert uci.shown(text) == "%d characters that could be a key (not shown)" % len(text)
        assert text not in uci.redact("a " + text + " b")
    else:
        assert uci.shown(text) == repr(text)
        assert uci.redact("a " + text + " b") == "a " + text + " b"


def test_config_error_redacts_its_message_as_a_last_guard():
    e = uci.ConfigError("f", 3, "got " + KEY_A + " here", uci.option_name(KEY_A[:-1]))
    assert str(e) == ("f:3: option '[43 characters that could be a key, not shown]': got "
                      "[44 characters that could be a key, not shown] here")
    assert KEY_A[:16] not in repr(e) and KEY_A[:16] not in e.message
    assert str(uci.ConfigError("f", 3, "x", "PersistentKeepalive")) == \
        "f:3: option 'PersistentKeepalive': x"


# Where a key pasted into the wrong option lands: still file, line, option, what was expected.
ALNUM_B = KEY_B[:20].replace("+", "x")  # passes as an option or section name
PASTED = "config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n" % KEY_A


@pytest.mark.parametrize("line,expected", [
    ("\tlist addresses '%s'" % KEY_B,
     "f:4: option 'addresses': expected an address with an optional prefix length, like "
     "10.0.0.1/24 or fd00::1/64, got 44 characters that could be a key (not shown)"),
    ("\tlist addresses '10.0.0.300/24'", "f:4: option 'addresses': bad IPv4 address '10.0.0.300'"),
    ("\toption listen_port '%s'" % KEY_B,
     "f:4: option 'listen_port': expected a number from 0 to 65535, got 44 characters that "
     "could be a key (not shown)"),
    ("\toption listen_port 'x1'", "f:4: option 'listen_port': expected a number from 0 to "
     "65535, got 'x1'"),
    ("\toption mtu '\u00b2'", "f:4: option 'mtu': expected a number from 68 to 9000"),
    ("\toption mtu '99999999999999999999'", "f:4: option 'mtu': must be from 68 to 9000, "
     "got 20 characters that could be a key (not shown)"),
    ("\toption fwmark '0x%s'" % KEY_B[:10], "f:4: option 'fwmark': expected a mark from 0 to "
     "4294967295, decimal or 0x hex, got '0x%s'" % KEY_B[:10]),
    ("\toption fwmark '0x1ffffffff'", "f:4: option 'fwmark': expected a mark"),
    ("\toption nohostroute '%s'" % KEY_B, "f:4: option 'nohostroute': expected a boolean "
     "(0/1, no/yes, off/on, false/true), got 44 characters that could be a key (not shown)"),
    ("\toption %s '1'" % ALNUM_B, "f:4: option '[20 characters that could be a key, not "
     "shown]': unknown option for a wireguard interface"),
    ("\tlist mtu '1400'", "f:4: option 'mtu': takes one value: write `option mtu`, not `list`"),
    ("config wireguard_%s" % ALNUM_B, "f:4: peer section for interface 20 characters that "
     "could be a key (not shown), which is not a wireguard interface in this file"),
    ("config interface '%s'" % KEY_B, "f:4: bad section name 44 characters that could be a "
     "key (not shown): use letters, digits and _"),
    ("config interface '%s'\n\toption proto 'wireguard'" % ALNUM_B, "f:4: interface name 20 "
     "characters that could be a key (not shown) is longer than 15 characters"),
    ("%s" % KEY_B, "f:4: unknown keyword 44 characters that could be a key (not shown) "
     "(expected config, option or list)"),
    ("config wgedge\n\toption watchdog_device '%s'" % KEY_B, "f:5: option 'watchdog_device': "
     "expected an absolute path, like /dev/watchdog"),
])
def test_a_key_in_the_wrong_option_is_not_echoed(line, expected):
    loaded = loader.from_uci(PASTED + line + "\n", "f")
    got = [str(e) for e in loaded.errors]
    assert any(g.startswith(expected) for g in got), got
    for text in got:
        assert KEY_A[:12] not in text and KEY_B[:12] not in text


def test_endpoint_host_is_a_host_name_or_an_address():
    for good in ("laptop.example.net", "10.0.0.2", "fd00::2", "[fd00::2]", "a_b.example.",
                 "fe80::1%eth0.2", "fe80::1%br-lan",
                 "x" * 63 + ".net"):
        assert schema.valid_host(good.strip("[]")), good
    for bad in ("", "a b", KEY_A, "10.0.0.300", "1.2.3", "-a.net", "a..net", "x" * 64 + ".net",
                "caf\u00e9.net", "a/b", "10.0.0.1%eth0", "fe80::1%", "fe80::1%a b"):
        assert not schema.valid_host(bad), bad


def test_peer_label_never_a_key():
    peer = schema.PeerConfig()
    peer.line = 7
    peer.name = KEY_B[:20].replace("+", "x").replace("/", "y")
    assert schema.peer_label(peer) == "at line 7"
    peer.description = "Site B office"
    assert schema.peer_label(peer) == "Site B office"
    peer.description = "key " + KEY_A
    peer.name = "site_b"
    assert schema.peer_label(peer) == "site_b"


def test_wg_quick_messages_name_line_option_and_not_the_key():
    text = WGQUICK.replace("Address = 10.2.0.1/24", "Address = 10.2.0.1/24, " + KEY_C) \
        .replace("MTU = 1380", "MTU = " + KEY_C).replace("[Peer]", "[%s]" % KEY_C) + \
        "[Peer]\nPublicKey = %s\nAllowedIPs = 10.2.0.9/32\nEndpoint = %s:51820\n" \
        "PersistentKeepalive = %s\nFwMark = 1\n" % (KEY_A, KEY_C, KEY_C)
    got = [str(e) for e in wgquick.from_text(text, "/x/wg7.conf").errors]
    shown_key = "44 characters that could be a key (not shown)"
    assert got[:4] == [
        "/x/wg7.conf:3: option 'Address': expected an address with an optional prefix length, "
        "like 10.0.0.1/24 or fd00::1/64, got " + shown_key,
        "/x/wg7.conf:5: option 'MTU': expected a number from 68 to 9000, got " + shown_key,
        "/x/wg7.conf:8: unknown section 46 characters that could be a key (not shown) "
        "(expected [Interface] or [Peer])",
        "/x/wg7.conf:9: option 'PublicKey': outside a section (expected [Interface] or [Peer] "
        "first)"], got
    assert got[-3:] == [
        "/x/wg7.conf:16: option 'Endpoint': expected a host name or an IP address before the "
        "port, got 50 characters that could be a key (not shown)",
        "/x/wg7.conf:17: option 'PersistentKeepalive': expected off or 0 to 65535 seconds, got "
        + shown_key,
        "/x/wg7.conf:18: option 'FwMark': unknown option in [Peer]"], got
    assert not any(KEY_C[:12] in g for g in got)


def test_the_secrets_rule_gives_the_same_messages_under_micropython(micropython):
    """uci.py is MicroPython-safe: its rule (shown, redact, the ConfigError guard) and the
    parser's refusals read the same there."""
    text = ("config interface '%s'\n%s\nconfig %s 'x'\n\toption %s '1'\n"
            "config wgedge\n\toption %s 'x'\n" % (KEY_A, KEY_B, KEY_C, KEY_A, ALNUM_B))
    script = ("from wgedge.config import uci\n"
              "sections, errors = uci.parse(%r, 'f')\n"
              "for e in errors:\n    print(str(e))\n"
              "for t in %r:\n    print(uci.shown(t), '|', uci.redact('a ' + t + ' b'))\n"
              "print(uci.ConfigError('f', 2, 'got ' + %r, uci.option_name(%r)))\n"
              % (text, [row[1] for row in KEY_LIKE_ROWS], KEY_A, ALNUM_B))
    _, errors = uci.parse(text, "f")
    refusals = "".join("%s\n" % e for e in errors)
    # three refusals: the section name, the keyword, the option name (a section type may
    # hold any printable character, as in uci, so `config KEY_C` is not the parser's error)
    assert len(errors) == 3 and not any(k[:12] in refusals for k in (KEY_A, KEY_B, KEY_C))
    expected = refusals + "".join(
        "%s | %s\n" % (uci.shown(row[1]), uci.redact("a " + row[1] + " b"))
        for row in KEY_LIKE_ROWS)
    expected += "%s\n" % uci.ConfigError("f", 2, "got " + KEY_A, uci.option_name(ALNUM_B))
    assert micropython(script) == expected
