"""One validator behind UCI and wg-quick files (validate.check_sections): the same ranges and the
same messages in both, typos answered with what was meant, what LuCI writes accepted, a whole
OpenWrt network file checked quietly, errors in line order, one mistake never hiding others."""

import textwrap

import pytest

from wgedge.config import loader, schema, suggest, uci, validate, wgquick
from wgedge.core.ipaddr import format_cidr
from wgedge.router import netsetup

KEY_A = "og3EZhpFsYGbfYYD0LNPS7PkHNcoB7L35p4UqW+2pSo="
KEY_B = "s+ZbzW6e6IDm1tMR4oW8Td8P6qiCajljerCD/c3Ty0Y="
KEY_C = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
PUB_A = "TzqT824iQ3FDTY/0Zx0+V0xbDrCJKmLsKLaZ13mVWgE="  # `wg pubkey` of KEY_A

UCI_HEAD = ("config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
            % KEY_A)
UCI_PEER = "config wireguard_wg0 'p1'\n\toption public_key '%s'\n" % KEY_B
WQ_HEAD = "[Interface]\nPrivateKey = %s\n" % KEY_A
WQ_PEER = "[Peer]\nPublicKey = %s\n" % KEY_B


def uci_errors(text):
    loaded = loader.from_uci(text, "f")
    return [str(e) for e in loaded.errors], [str(w) for w in loaded.warnings]


def wq_errors(text):
    loaded = wgquick.from_text(text, "d/wg0.conf")
    return [str(e) for e in loaded.errors], [str(w) for w in loaded.warnings]


# (row, schema option, wg-quick key, in a peer?, value): the same refusal in both formats.
SAME_RULE_ROWS = [
    (1, "fwmark", "FwMark", False, "-1"),
    (2, "fwmark", "FwMark", False, "0x1ffffffff"),
    (3, "fwmark", "FwMark", False, "4294967296"),
    (4, "listen_port", "ListenPort", False, "65536"),
    (5, "listen_port", "ListenPort", False, "-5"),
    (6, "mtu", "MTU", False, "67"),
    (7, "mtu", "MTU", False, "9001"),
    (8, "mtu", "MTU", False, "abc"),
    (9, "persistent_keepalive", "PersistentKeepalive", True, "abc"),
    (10, "persistent_keepalive", "PersistentKeepalive", True, "65536"),
    (11, "persistent_keepalive", "PersistentKeepalive", True, "-1"),
    (12, "allowed_ips", "AllowedIPs", True, "10.0.0.0/33"),
    (13, "addresses", "Address", False, "10.0.0.300/24"),
    (14, "private_key", "PrivateKey", False, KEY_A[:-2]),
    (15, "preshared_key", "PresharedKey", True, "x"),
]


@pytest.mark.parametrize("row,option,key,in_peer,value", SAME_RULE_ROWS)
def test_one_rule_one_message_in_both_formats(row, option, key, in_peer, value):
    """The old code validated each format on its own: MTU, keepalive and more read
    differently (and 'off' was a keepalive only in wg-quick)."""
    if option == "private_key":
        uci_text = UCI_HEAD.replace(KEY_A, value) + UCI_PEER + "\tlist allowed_ips '10.0.0.2'\n"
        wq_text = WQ_HEAD.replace(KEY_A, value) + WQ_PEER + "AllowedIPs = 10.0.0.2\n"
    elif in_peer:
        uci_text = UCI_HEAD + UCI_PEER + "\toption %s '%s'\n" % (option, value)
        wq_text = WQ_HEAD + WQ_PEER + "%s = %s\n" % (key, value)
        if option != "allowed_ips":
            uci_text += "\tlist allowed_ips '10.0.0.2'\n"
            wq_text += "AllowedIPs = 10.0.0.2\n"
    else:
        uci_text = UCI_HEAD + "\toption %s '%s'\n" % (option, value) + UCI_PEER + \
            "\tlist allowed_ips '10.0.0.2'\n"
        wq_text = WQ_HEAD + "%s = %s\n" % (key, value) + WQ_PEER + "AllowedIPs = 10.0.0.2\n"
    u, _ = uci_errors(uci_text)
    w, _ = wq_errors(wq_text)
    assert len(u) == 1 and len(w) == 1, (u, w)
    u_msg = u[0].split(": option '%s': " % option, 1)
    w_msg = w[0].split(": option '%s': " % key, 1)
    assert len(u_msg) == 2 and len(w_msg) == 2, (u, w)
    assert u_msg[1] == w_msg[1], (u, w)
    assert "invalid literal" not in u_msg[1]


def test_keepalive_off_and_peer_without_allowed_ips_read_alike():
    u = loader.from_uci(UCI_HEAD + UCI_PEER + "\toption persistent_keepalive 'off'\n", "f")
    w = wgquick.from_text(WQ_HEAD + WQ_PEER + "PersistentKeepalive = off\n", "d/wg0.conf")
    for loaded, name in ((u, "allowed_ips"), (w, "AllowedIPs")):
        assert loaded.errors == []
        assert loaded.interfaces[0].peers[0].persistent_keepalive == 0
        assert [str(x) for x in loaded.warnings if name in str(x)] != [], loaded.warnings


def test_wg_quick_repeats_and_spaces_as_wg_quick_reads_them():
    text = WQ_HEAD + "Address = 10.0.0.1/24\nAddress = fd00::1/64, 10.1.0.1/24\nListenPort = 1\n" \
        "ListenPort = 2\n" + WQ_PEER + "AllowedIPs = 10.0.0.2/32 , 10.0.9.0/24\n" \
        "AllowedIPs = fd00::2/128\nEndpoint = [fd00::9]:51000\n"
    loaded = wgquick.from_text(text, "d/wg0.conf")
    assert loaded.errors == []
    i = loaded.interfaces[0]
    assert i.addresses == ["10.0.0.1/24", "fd00::1/64", "10.1.0.1/24"] and i.listen_port == 2
    assert [str(w) for w in loaded.warnings] == [
        "d/wg0.conf:6: option 'ListenPort': given again (first at line 5): this one counts"]
    p = i.peers[0]
    assert [format_cidr(*a) for a in p.allowed_ips] == ["10.0.0.2/32", "10.0.9.0/24",
                                                         "fd00::2/128"]
    assert (p.endpoint_host, p.endpoint_port) == ("fd00::9", 51000)
    assert wq_errors(WQ_HEAD + WQ_PEER + "Endpoint = host.example:0\n")[0] == [
        "d/wg0.conf:5: option 'Endpoint': must be from 1 to 65535, got '0'"]


# --- typos: an error saying what was meant -----------------------------------------------------
TYPO_ROWS = [
    (1, UCI_HEAD.replace("'wireguard'", "'wireguad'"),
     "f:2: option 'proto': unknown protocol 'wireguad'; did you mean 'wireguard'?"),
    (2, UCI_HEAD.replace("'wireguard'", "'WireGuard'"),
     "f:2: option 'proto': unknown protocol 'WireGuard'; did you mean 'wireguard'?"),
    (3, UCI_HEAD + "\toption listen_prot '51820'\n",
     "f:4: option 'listen_prot': unknown option for a wireguard interface; did you mean "
     "'listen_port'?"),
    (4, UCI_HEAD + "\toption ip6prefx 'fd00::/48'\n",
     "f:4: option 'ip6prefx': unknown option for a wireguard interface; did you mean "
     "'ip6prefix'?"),
    (5, UCI_HEAD + UCI_PEER + "\tlist allowed_ip '10.0.0.2'\n",
     "f:6: option 'allowed_ip': unknown option for a peer; did you mean 'allowed_ips'?"),
    (6, UCI_HEAD + UCI_PEER + "\toption persistent_keepalve '25'\n",
     "f:6: option 'persistent_keepalve': unknown option for a peer; did you mean "
     "'persistent_keepalive'?"),
    (7, UCI_HEAD + "config wireguard_wg 'p1'\n",
     "f:4: peer section for interface 'wg', which is not a wireguard interface in this file; "
     "did you mean 'wireguard_wg0'?"),
    (8, UCI_HEAD + "config wireguad_wg0 'p1'\n",
     "f:4: unknown section type 'wireguad_wg0'; did you mean 'wireguard_wg0'?"),
    (9, "config interfce 'wg0'\n", "f:1: unknown section type 'interfce'; did you mean "
     "'interface'?"),
    (10, UCI_HEAD.replace("option proto", "option prot"),
     "f:2: option 'prot': unknown option; did you mean 'proto'?"),
]


@pytest.mark.parametrize("row,text,expected", TYPO_ROWS)
def test_a_likely_typo_is_an_error_with_a_suggestion(row, text, expected):
    errors, _ = uci_errors(text)
    assert expected in errors, errors


def test_wg_quick_typo_suggests_the_wg_quick_key():
    errors, _ = wq_errors(WQ_HEAD + "ListenPrt = 5\n" + WQ_PEER + "AllowedIP = 10.0.0.2\n")
    assert errors == [
        "d/wg0.conf:3: option 'ListenPrt': unknown option in [Interface]; did you mean "
        "'ListenPort'?",
        "d/wg0.conf:6: option 'AllowedIP': unknown option in [Peer]; did you mean 'AllowedIPs'?"]


def test_wg_quick_section_typo_suggests_the_section():
    errors, _ = wq_errors(WQ_HEAD + "[Peers]\nPublicKey = %s\n" % KEY_B)
    assert errors[0] == ("d/wg0.conf:3: unknown section '[Peers]' (expected [Interface] or "
                         "[Peer]); did you mean [Peer]?")


def test_summary_never_shows_a_key():
    loaded = loader.from_uci("config interface 'x'\n\toption proto '%s'\n" % KEY_B, "f")
    assert loaded.errors == [] and KEY_B[:12] not in loaded.summary()
    assert loaded.summary() == ("f: not WireGuard, ignored: 1 interfaces ([44 characters that "
                                "could be a key, not shown])")


def test_check_exits_1_on_a_proto_typo(tmp_path, capsys):
    """Old code: 'OK (wireguard interfaces: none)', exit 0."""
    from wgedge import cli

    conf = tmp_path / "net"
    conf.write_text(UCI_HEAD.replace("'wireguard'", "'wireguad'"))
    conf.chmod(0o600)
    assert cli.main(["check", str(conf)]) == 1
    out = capsys.readouterr()
    assert "did you mean 'wireguard'?" in out.err and "OK" not in out.out


@pytest.mark.parametrize("word,known,expected", [
    ("wireguad", ["wireguard"], "wireguard"), ("wiregaurd", ["wireguard"], "wireguard"),
    ("wg", ["wireguard"], None), ("static", ["wireguard"], None), ("mut", ["mtu"], "mtu"),
    ("mtu", ["mtu"], None), ("dns", ["mtu"], None), ("listenport", ["listen_port"],
                                                     "listen_port"),
    ("x", [], None), ("", ["a"], None)])
def test_suggest_rows(word, known, expected):
    assert suggest.closest(word, known) == expected


# --- a whole OpenWrt network file ---------------------------------------------------------------
ROUTER = textwrap.dedent("""\
    config interface 'loopback'
    \toption device 'lo'
    \toption proto 'static'
    \toption ipaddr '127.0.0.1'
    \toption netmask '255.0.0.0'

    config globals 'globals'
    \toption ula_prefix 'fd12:3456:789a::/48'
    \toption packet_steering '1'

    config device
    \toption name 'br-lan'
    \toption type 'bridge'
    \tlist ports 'lan1'
    \tlist ports 'lan2'

    config device
    \toption type '8021q'
    \toption ifname 'wan'
    \toption vid '7'
    \toption name 'wan.7'

    config interface 'lan'
    \toption device 'br-lan'
    \toption proto 'static'
    \toption ipaddr '192.168.1.1'
    \toption netmask '255.255.255.0'
    \toption ip6assign '60'

    config interface 'wan'
    \toption device 'wan.7'
    \toption proto 'pppoe'
    \toption username 'user'
    \toption password 'secret'

    config interface 'wan6'
    \toption device '@wan'
    \toption proto 'dhcpv6'

    config interface 'guest'
    \toption proto 'dhcp'
    \toption device 'br-guest'

    config route
    \toption interface 'lan'
    \toption target '10.50.0.0/16'
    \toption gateway '192.168.1.254'

    config switch_vlan
    \toption device 'switch0'
    \toption vlan '1'

    config interface 'wg0'
    \toption proto 'wireguard'
    \toption private_key '%s'
    \tlist addresses '10.9.0.1/24'

    config wireguard_wg0
    \toption public_key '%s'
    \tlist allowed_ips '10.9.0.2/32'
    """) % (KEY_A, KEY_B)


def test_whole_router_file_checks_wireguard_and_stays_quiet(tmp_path, capsys):
    """Old code: one warning per non-WireGuard section (eleven lines)."""
    from wgedge import cli

    conf = tmp_path / "network"
    conf.write_text(ROUTER)
    conf.chmod(0o600)
    assert cli.main(["check", str(conf)]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.splitlines() == [
        "%s: not WireGuard, ignored: 5 interfaces (dhcp, dhcpv6, pppoe, static); 1 globals; "
        "2 device; 1 route; 1 switch_vlan" % conf,
        "%s: OK (wireguard interfaces: wg0)" % conf]
    # ... while a mistake in its WireGuard part is still found, alone
    conf.write_text(ROUTER.replace("'10.9.0.2/32'", "'10.9.0.2/33'"))
    assert cli.main(["check", str(conf)]) == 1
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        "error: %s:60: option 'allowed_ips': prefix length 33 is too long for '10.9.0.2/33'"
        % conf], out.err


def test_section_types_of_dsa_routers_are_counted_not_refused():
    """bridge-vlan (LuCI's DSA VLAN filtering) reaches the model once uci.py reads it."""
    sections, errors = uci.parse(UCI_HEAD, "f")
    bv = uci.Section("bridge-vlan", None, 9)
    bv.options["device"] = ("br-lan", 10)
    other = uci.Section("amneziawg_awg0", None, 11)
    awg = uci.Section("interface", "awg0", 12)
    awg.options["proto"] = ("amneziawg", 13)
    awg.options["private_key"] = (KEY_C, 14)
    awg.order = ["proto", "private_key"]
    loaded = schema.Loaded("f")
    validate.check_sections(sections + [bv, other, awg], loaded)
    assert loaded.errors == [] and [i.name for i in loaded.interfaces] == ["wg0"]
    assert loaded.summary() == ("f: not WireGuard, ignored: 1 interfaces (amneziawg); "
                                "1 bridge-vlan; 1 peers of other protocols")


# --- what LuCI's WireGuard page writes ----------------------------------------------------------
LUCI = textwrap.dedent("""\
    config interface 'wg0'
    \toption proto 'wireguard'
    \toption private_key '%s'
    \toption listen_port '51820'
    \tlist addresses '10.9.0.1/24'
    \toption mtu '1000'
    \toption fwmark '0x1f'
    \toption nohostroute '1'
    \toption ip6assign '64'

    config wireguard_wg0
    \toption description 'phone'
    \toption public_key '%s'
    \toption private_key '%s'
    \toption preshared_key '%s'
    \tlist allowed_ips '10.9.0.2/32 10.9.5.0/24'
    \tlist allowed_ips 'fd00:9::2/128'
    \toption route_allowed_ips '1'
    \toption endpoint_host 'phone.example.net'
    \toption endpoint_port '51821'
    \toption persistent_keepalive '25'

    config wireguard_wg0
    \toption description 'laptop, no allowed IPs yet'
    \toption public_key '%s'
    \toption disabled '0'
    """) % (KEY_A, KEY_B, KEY_C, KEY_C, PUB_A.replace("W", "X"))


def test_luci_written_file_is_accepted():
    """Old code: the peer's private_key, the 'a b' list item, mtu 1000 and the peer without
    allowed_ips were errors."""
    loaded = loader.from_uci(LUCI, "network")
    assert loaded.errors == [], [str(e) for e in loaded.errors]
    i = loaded.interfaces[0]
    assert (i.mtu, i.fwmark, i.nohostroute) == (1000, 31, True)
    phone, laptop = i.peers
    assert phone.description == "phone" and phone.preshared_key == schema.decode_key(KEY_C)
    assert [format_cidr(*a) for a in phone.allowed_ips] == ["10.9.0.2/32", "10.9.5.0/24",
                                                             "fd00:9::2/128"]
    assert laptop.allowed_ips == []
    assert [str(w) for w in loaded.warnings] == [
        "network:9: option 'ip6assign': OpenWrt option accepted but ignored by wgedge",
        "network:23: option 'allowed_ips': peer has no allowed_ips: it can complete "
        "handshakes, but no packet is sent to it or accepted from it"]


@pytest.mark.parametrize("value,mtu,message", [
    ("1280", 1280, None), ("8940", 8940, None), ("68", 68, None), ("9000", 9000, None),
    ("0", 1420, "warning: f:4: option 'mtu': 0 leaves the MTU at its default, 1420"),
    ("67", None, "error: f:4: option 'mtu': must be from 68 to 9000, got '67'"),
])
def test_mtu_takes_openwrts_range(value, mtu, message):
    loaded = loader.from_uci(UCI_HEAD + "\toption mtu '%s'\n" % value, "f")
    got = ["error: %s" % e for e in loaded.errors] + ["warning: %s" % w for w in loaded.warnings]
    assert got == ([message] if message else [])
    if mtu:
        assert loaded.interfaces[0].mtu == mtu


def test_small_mtu_with_ipv6_is_warned_about():
    loaded = loader.from_uci(UCI_HEAD + "\toption mtu '1200'\n\tlist addresses 'fd00::1/64'\n",
                            "f")
    assert loaded.errors == []
    assert [str(w) for w in loaded.warnings] == [
        "f:4: option 'mtu': IPv6 needs an MTU of at least 1280: the kernel turns IPv6 off on "
        "the interface with a smaller one"]


# --- wg-quick Table --------------------------------------------------------------------------
@pytest.mark.parametrize("value,table,routes", [
    (None, None, [("0.0.0.0", 1), ("128.0.0.0", 1), ("10.5.0.0", 16)]),
    ("auto", None, [("0.0.0.0", 1), ("128.0.0.0", 1), ("10.5.0.0", 16)]),
    ("off", "off", []),
    ("1234", 1234, [("0.0.0.0", 0, 1234), ("10.5.0.0", 16, 1234)]),
    ("main", 254, [("0.0.0.0", 1), ("128.0.0.0", 1), ("10.5.0.0", 16)]),
])
def test_table_decides_the_routes(value, table, routes):
    """Old code: Table was 'accepted but ignored', so `off` still routed 0.0.0.0/1 and
    128.0.0.0/1."""
    text = WQ_HEAD + ("Table = %s\n" % value if value else "") + WQ_PEER + \
        "AllowedIPs = 0.0.0.0/0, 10.5.0.0/16\n"
    loaded = wgquick.from_text(text, "d/wg0.conf")
    assert loaded.errors == [] and loaded.warnings == []
    assert loaded.interfaces[0].table == table
    assert netsetup.route_prefixes(loaded.interfaces[0]) == routes


def test_bad_table_is_refused_and_uci_has_no_table():
    errors, _ = wq_errors(WQ_HEAD + "Table = Off\n")
    assert errors == ["d/wg0.conf:3: option 'Table': expected off, auto, main or a routing "
                      "table number from 1 to 4294967295, got 'Off'"]
    errors, _ = uci_errors(UCI_HEAD + "\toption table 'off'\n")
    assert errors == ["f:4: option 'table': unknown option for a wireguard interface"]


# --- error wording ---------------------------------------------------------------------------
def test_missing_proto_says_what_to_add():
    """Old code: a warning 'is proto nothing, not wireguard: ignored', and OK."""
    errors, _ = uci_errors(UCI_HEAD.replace("\toption proto 'wireguard'\n", ""))
    assert errors == ["f:1: option 'proto': interface 'wg0' has no proto: add option proto "
                      "'wireguard'"]
    # a peer section naming it is as clear a sign as a private_key
    errors, _ = uci_errors("config interface 'wg0'\n\toption mtu '1400'\n" + UCI_PEER)
    assert errors[0] == ("f:1: option 'proto': interface 'wg0' has no proto: add option "
                         "proto 'wireguard'")
    # a plain interface without proto (no WireGuard options, no peers) is someone else's
    loaded = loader.from_uci("config interface 'x'\n\toption device 'eth0'\n", "f")
    assert loaded.errors == [] and "no proto" in loaded.summary()


def test_other_proto_with_wireguard_peers_is_an_error():
    errors, _ = uci_errors(UCI_HEAD.replace("'wireguard'", "'static'") + UCI_PEER)
    assert errors == ["f:2: option 'proto': interface 'wg0' is proto 'static', but "
                      "wireguard_wg0 sections give it peers: write option proto 'wireguard'"]


@pytest.mark.parametrize("fmt", ["uci", "wg-quick"])
def test_peer_with_the_interfaces_own_key_is_an_error(fmt):
    """Old code: accepted; the daemon then dropped the peer, which vanished from status."""
    if fmt == "uci":
        errors, _ = uci_errors(UCI_HEAD + UCI_PEER.replace(KEY_B, PUB_A) +
                               "\tlist allowed_ips '10.0.0.2'\n")
        assert errors == ["f:5: option 'public_key': this is the interface's own public key "
                          "(from its private_key): a peer is the other end of the tunnel, "
                          "with the other end's public key"]
    else:
        errors, _ = wq_errors(WQ_HEAD + WQ_PEER.replace(KEY_B, PUB_A) + "AllowedIPs = 10.0.0.2\n")
        assert errors == ["d/wg0.conf:4: option 'PublicKey': this is the interface's own "
                          "public key (from its PrivateKey): a peer is the other end of the "
                          "tunnel, with the other end's public key"]
    assert PUB_A[:12] not in errors[0] and KEY_A[:12] not in errors[0]


def test_errors_come_in_line_order():
    """Old code: syntax errors first, then interfaces, then peers, then duplicates."""
    text = (UCI_PEER.replace(KEY_B, "x") + "\tlist allowed_ips '10.0.0.2'\n"     # 1-3
            + UCI_HEAD + "\toption mtu 'big'\n"                                      # 4-7
            + "\toption bad-name 'x'\n"                                              # 8
            + UCI_PEER.replace("p1", "p2") + "\tlist allowed_ips '10.0.0.3'\n"      # 9-11
            + UCI_PEER.replace("p1", "p3") + "\tlist allowed_ips '10.0.0.4'\n"      # 12-14
            + "\toption listen_port 'x'\n")                                           # 15
    loaded = loader.from_uci(text, "f")
    lines = [e.line for e in loaded.errors]
    assert lines == sorted(lines) and lines == [2, 7, 8, 12, 15], \
        [str(e) for e in loaded.errors]


@pytest.mark.parametrize("fmt", ["uci", "wg-quick"])
def test_a_too_long_name_hides_nothing(fmt, tmp_path):
    """Old code: only the name was reported; the section's other errors, and its peers',
    came out once the name was fixed."""
    if fmt == "uci":
        text = (UCI_HEAD.replace("'wg0'", "'wg_far_too_long_0'") + "\toption mtu 'x'\n"
                + UCI_PEER.replace("wg0", "wg_far_too_long_0") + "\tlist allowed_ips '10/8'\n")
        errors, _ = uci_errors(text)
        assert [e.split(":")[1] for e in errors] == ["1", "4", "7"], errors
        assert "longer than 15 characters" in errors[0]
    else:
        path = tmp_path / "wg_far_too_long_0.conf"
        path.write_text(WQ_HEAD + "MTU = x\n" + WQ_PEER + "AllowedIPs = 10/8\n")
        loaded = loader.load(str(path))
        errors = [str(e) for e in loaded.errors]
        assert errors[0] == "%s: the file name must be IFNAME.conf with a 1-15 character " \
            "name" % path
        assert [e.split(":")[1] for e in errors[1:]] == ["3", "6"], errors
        assert loaded.interfaces == []


def test_interface_public_key_must_match_its_private_key():
    """Not written by LuCI, but found in copied files: accepted when right, never used."""
    loaded = loader.from_uci(UCI_HEAD + "\toption public_key '%s'\n" % PUB_A, "f")
    assert loaded.errors == [] and loaded.warnings == []
    errors, _ = uci_errors(UCI_HEAD + "\toption public_key '%s'\n" % KEY_B)
    assert errors == ["f:4: option 'public_key': not the public key of this interface's "
                      "private_key (wgedge derives it from that; remove this option)"]
