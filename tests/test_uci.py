"""wgedge/config/uci.py reads a file as OpenWrt's uci does (each rule here was checked with
the real uci: tests/uci_golden/ holds what it printed), and the model gets what uci gives
netifd. The parser's warnings say where the file means less than it seems to."""

import os

import pytest

from wgedge import cli
from wgedge.config import export, loader, uci

KEY_A = "og3EZhpFsYGbfYYD0LNPS7PkHNcoB7L35p4UqW+2pSo="
KEY_B = "s+ZbzW6e6IDm1tMR4oW8Td8P6qiCajljerCD/c3Ty0Y="

WG0 = "config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n" % KEY_A


def parse(text):
    warnings = []
    sections, errors = uci.parse(text, "f", warnings)
    return sections, [str(e) for e in errors], [str(w) for w in warnings]


def only(text):
    sections, errors, _ = parse(text)
    assert not errors, errors
    assert len(sections) == 1
    return sections[0]


def test_section_types_may_hold_dash_and_dot_names_may_not():
    sections, errors, _ = parse("config bridge-vlan\n\toption vlan '1'\nconfig a.b 'x'\n"
                                "config device\n\toption name 'br-lan'\n")
    assert not errors
    assert [(s.type, s.name) for s in sections] == [("bridge-vlan", None), ("a.b", "x"),
                                                    ("device", None)]
    assert sections[0].get("vlan") == "1"
    _, errors, _ = parse("config interface 'wg-0'\n\toption x 'y'\n\toption z 'w'\n")
    # one error for the bad name, none for the options of the refused section
    assert errors == ["f:1: bad section name 'wg-0': use letters, digits and _"]


@pytest.mark.parametrize("line,value", [
    ("option v host#name", "host"),
    ("option v 1420#c", "1420"),
    ("option v 'a#b'", "a#b"),
    ('option v "a#b"', "a#b"),
    ("option v 'a'#b", "a"),
    ("option v a\\#b", "a#b"),
    ("option v 'a' # comment", "a"),
])
def test_a_bare_hash_starts_a_comment(line, value):
    assert only("config t 'x'\n\t%s\n" % line).get("v") == value


def test_hash_in_the_endpoint_and_the_mtu_reach_the_model_as_uci_reads_them():
    text = WG0 + ("\toption mtu 1380#c\nconfig wireguard_wg0\n\toption public_key '%s'\n"
                  "\tlist allowed_ips '10.0.0.2/32'\n\toption endpoint_host host#name\n" % KEY_B)
    loaded = loader.from_uci(text, "f")
    assert not loaded.errors, [str(e) for e in loaded.errors]
    assert loaded.interfaces[0].mtu == 1380
    assert loaded.interfaces[0].peers[0].endpoint_host == "host"


def test_an_empty_or_missing_option_value_sets_nothing():
    s = only("config t 'x'\n\toption mtu ''\n\toption bare\n\toption d \"\"\n")
    assert s.options == {} and s.order == []
    loaded = loader.from_uci(WG0 + "\toption mtu ''\n\toption listen_port\n", "f")
    assert not loaded.errors, [str(e) for e in loaded.errors]
    assert loaded.interfaces[0].mtu == 1420 and loaded.interfaces[0].listen_port == 0
    assert any("option 'mtu': no value: the option is not set" in str(w)
               for w in loaded.warnings)


def test_an_empty_value_after_a_value_keeps_the_value_as_uci_does():
    sections, errors, warnings = parse("config t 'x'\n\toption mtu '1400'\n\toption mtu ''\n")
    assert sections[0].get("mtu") == "1400" and not errors
    assert warnings == ["f:3: option 'mtu': an empty value changes nothing: the value from "
                        "line 2 stays"]


def test_an_empty_list_item_is_an_item():
    s = only("config t 'x'\n\tlist l ''\n\tlist l 'a'\n\tlist l\n")
    assert [v for v, _ in s.lists["l"]] == ["", "a", ""]


def test_option_then_list_gives_a_list_of_both_in_the_option_s_place():
    s = only("config t 'x'\n\toption a '1'\n\toption b '2'\n\tlist a '3'\n")
    assert s.order == ["a", "b"]
    assert s.lists["a"] == [("1", 2), ("3", 4)] and "a" not in s.options
    assert export.export([s], "p") == "package p\n\nconfig t 'x'\n\tlist a '1'\n\tlist a '3'\n" \
        "\toption b '2'\n\n"


def test_an_option_after_a_list_replaces_it_with_a_warning():
    sections, errors, warnings = parse("config t 'x'\n\tlist a '1'\n\toption a '2'\n")
    assert sections[0].get("a") == "2" and "a" not in sections[0].lists and not errors
    assert warnings == ["f:3: option 'a': replaces the list given at line 2"]


def test_a_quoted_value_may_span_lines_and_a_backslash_joins_them():
    s = only("config t 'x'\n\toption a 'one\ntwo'\n\toption b \"x\\\ny\"\n\toption c p\\\nq\n"
             "\toption d 'e'\n")
    assert s.get("a") == "one\ntwo" and s.get("b") == "xy" and s.get("c") == "pq"
    assert s.line_of("d") == 8


def test_config_type_with_empty_name_is_unnamed():
    sections, errors, _ = parse("config t ''\nconfig t \"\"\nconfig t\n")
    assert not errors
    assert [s.name for s in sections] == [None, None, None]
    # uci's ids: the section counter and a hash of the type
    assert [s.uci_name for s in sections] == ["cfg01b619", "cfg02b619", "cfg03b619"]


def test_sections_of_one_type_and_name_merge_later_options_win():
    sections, errors, warnings = parse(
        "config interface 'lan'\n\toption ipaddr '1'\n\toption x 'a'\n"
        "config interface 'wan'\n"
        "config interface 'lan'\n\toption ipaddr '2'\n\tlist dns 'd'\n")
    assert not errors
    assert [s.name for s in sections] == ["lan", "wan"]
    lan = sections[0]
    assert lan.get("ipaddr") == "2" and lan.get("x") == "a" and lan.order == ["ipaddr", "x", "dns"]
    assert lan.lines == [1, 5]
    assert warnings[0] == ("f:5: section 'interface' 'lan' at line 1 is given again here: the "
                           "two are merged, later options win (as OpenWrt reads them)")


def test_merged_wireguard_sections_reach_the_model_once():
    text = WG0 + ("\tlist addresses '10.0.0.1/24'\nconfig wireguard_wg0 'p'\n\toption public_key "
                  "'%s'\n\tlist allowed_ips '10.0.0.2/32'\nconfig interface 'wg0'\n"
                  "\toption listen_port '51999'\nconfig wireguard_wg0 'p'\n"
                  "\tlist allowed_ips '10.0.0.3/32'\n" % KEY_B)
    loaded = loader.from_uci(text, "f")
    assert not loaded.errors, [str(e) for e in loaded.errors]
    (iface,) = loaded.interfaces
    assert iface.listen_port == 51999 and len(iface.peers) == 1
    assert len(iface.peers[0].allowed_ips) == 2
    assert sum("merged" in str(w) for w in loaded.warnings) == 2


def test_one_name_with_two_types_is_an_error_naming_both_lines():
    _, errors, _ = parse("config interface 'wg0'\n\toption proto 'wireguard'\n"
                         "config device 'wg0'\n\toption name 'x'\n")
    assert errors == ["f:3: section 'wg0' is already a 'interface' section (line 1): one name "
                      "cannot have two types"]


def test_a_stray_byte_that_is_not_utf8_does_not_refuse_the_file(tmp_path):
    path = tmp_path / "network"
    path.write_bytes((WG0 + "config wireguard_wg0\n\toption public_key '%s'\n"
                      "\tlist allowed_ips '10.0.0.2/32'\n" % KEY_B).encode()
                     + b"\toption description 'caf\xe9'\n")
    loaded = loader.load(str(path))
    assert not loaded.errors, [str(e) for e in loaded.errors]
    assert loaded.interfaces[0].peers[0].description == "caf\ufffd"
    assert any("not UTF-8" in str(w) for w in loaded.warnings)
    assert cli.main(["check", str(path)]) == 0


def test_check_export_prints_the_bytes_back(tmp_path, capfdbinary):
    path = tmp_path / "network"
    path.write_bytes(b"config t\n\toption d 'caf\xe9'\n\toption e it\\'s\n")
    assert cli.main(["check", "--export", str(path)]) == 0
    out, err = capfdbinary.readouterr()
    assert out == b"package network\n\nconfig t\n\toption d 'caf\xe9'\n\toption e 'it'\\''s'\n\n"
    assert b"not UTF-8" in err


def test_check_export_refuses_what_it_cannot_read(tmp_path, capfdbinary):
    assert cli.main(["check", "--export", str(tmp_path / "missing")]) == 1
    path = tmp_path / "wg0.conf"
    path.write_text("[Interface]\n")
    assert cli.main(["check", "--export", str(path)]) == 1
    path = tmp_path / "network"
    path.write_text("config t 'x'\n\toption a b c\n")
    assert cli.main(["check", "--export", str(path)]) == 1
    out, err = capfdbinary.readouterr()
    assert out == b""
    assert b"cannot read" in err and b"wg-quick" in err
    assert ("error: %s:2: too many words" % path).encode() in err


def test_a_bare_word_before_a_semicolon_cuts_the_line_as_in_uci():
    sections, errors, warnings = parse("config t 'x'\n\toption a b;option c d\n"
                                       "\toption e 'f';option g h\n")
    assert not errors
    assert sections[0].order == ["a", "e", "g"]
    assert warnings == ["f:2: the rest of the line after ';' is ignored (as uci does): put a "
                        "space before the ';' or start a new line"]


def test_errors_do_not_cascade_and_come_in_line_order():
    _, errors, _ = parse("option a b\noption c d\nconfig\n\toption e f\nconfig t 'x'\n"
                         "\toption g h i\n\toption 'k-1' v\nfrobnicate\n")
    assert errors == [
        "f:1: option 'a': option outside a config section",
        "f:3: config without arguments",
        "f:6: too many words (quote a value that holds spaces)",
        "f:7: bad option name 'k-1': use letters, digits and _",
        "f:8: unknown keyword 'frobnicate' (expected config, option or list)"]


def test_a_nul_byte_refuses_the_file():
    sections, errors, _ = parse("config t 'x'\n\toption a 'b\0c'\n")
    assert sections == [] and errors == ["f:2: a NUL byte: this is not a text file"]


def test_export_quotes_as_uci():
    s = only("config \"we'ird\" 'x'\n\toption a \"it's\"\n\tlist b ''\n")
    assert export.export([s], "p", names=True) == (
        "package p\n\nconfig we'\\''ird 'x'\n\toption a 'it'\\''s'\n\tlist b ''\n\n")


def test_goldens_are_not_all_trivial():
    """The golden set reads files with every rule above (a guard that the inputs stay
    varied when someone regenerates them)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uci_golden")
    text = b"".join(open(os.path.join(here, n), "rb").read() for n in os.listdir(here)
                    if "." not in n)
    for needle in (b"bridge-vlan", b"#", b"\\\n", b"';", b"''", b"\r\n", b"\xe9",
                   b"config wireguard_wg0\n", b"'it'\\''s'"):
        assert needle in text, needle
