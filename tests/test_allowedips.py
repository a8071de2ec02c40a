"""Cryptokey routing: table tests and random prefix sets against a brute-force reference."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgedge.core.allowedips import AllowedIPs
from wgedge.core.ipaddr import format_cidr, format_ip, mask, parse_cidr, parse_ip


def ins(t, text, peer):
    addr, bits = parse_cidr(text)
    t.insert(addr, bits, peer)


def test_longest_prefix_and_moves():
    t = AllowedIPs()
    ins(t, "10.0.0.0/8", "a")
    ins(t, "10.1.0.0/16", "b")
    ins(t, "10.1.2.3/32", "c")
    ins(t, "0.0.0.0/0", "d")
    ins(t, "fd00::/8", "a")
    ins(t, "fd00:1::/32", "b")
    ins(t, "::/0", "d")
    cases = {"10.2.3.4": "a", "10.1.9.9": "b", "10.1.2.3": "c", "11.0.0.1": "d",
             "fd99::1": "a", "fd00:1::5": "b", "2001:db8::1": "d"}
    for addr, peer in cases.items():
        assert t.lookup(parse_ip(addr)) == peer, addr
    ins(t, "10.1.0.0/16", "a")  # taken from b, as `wg set` does
    assert t.lookup(parse_ip("10.1.9.9")) == "a"
    assert t.entries("b") == [parse_cidr("fd00:1::/32")]
    assert t.remove(*parse_cidr("10.0.0.0/8"), "b") is False  # not b's
    assert t.remove(*parse_cidr("10.0.0.0/8"), "a") is True
    assert t.lookup(parse_ip("10.2.3.4")) == "d"
    t.remove_peer("d")
    assert t.lookup(parse_ip("11.0.0.1")) is None and t.lookup(parse_ip("2001:db8::1")) is None
    assert [format_cidr(*e) for e in t.entries("a")] == ["fd00::/8", "10.1.0.0/16"]


def test_host_bits_masked_in_entries():
    t = AllowedIPs()
    ins(t, "192.168.77.5/20", "x")
    assert [format_cidr(*e) for e in t.entries("x")] == ["192.168.64.0/20"]


def prefixes(n):
    return st.lists(st.tuples(st.binary(min_size=n, max_size=n), st.integers(0, n * 8),
                              st.sampled_from("abcde")), max_size=40)


def brute(entries, addr):
    best, best_len = None, -1
    for pfx, bits, peer in entries:
        if mask(addr, bits) == mask(pfx, bits) and bits > best_len:
            best, best_len = peer, bits
    return best


@pytest.mark.parametrize("n", [4, 16])
def test_random_sets_against_brute_force(n):
    @settings(max_examples=150, deadline=None)
    @given(prefixes(n), st.lists(st.binary(min_size=n, max_size=n), max_size=30))
    def check(ops, probes):
        t = AllowedIPs()
        ref = {}
        for pfx, bits, peer in ops:
            t.insert(pfx, bits, peer)
            ref[(mask(pfx, bits), bits)] = peer  # last writer owns the prefix
        entries = [(p, b, peer) for (p, b), peer in ref.items()]
        for addr in probes + [p for p, _, _ in ops]:
            assert t.lookup(addr) == brute(entries, addr)
        for peer in "abcde":
            assert sorted(t.entries(peer)) == sorted((p, b) for p, b, q in entries if q == peer)

    check()


@pytest.mark.parametrize("n", [4, 16])
def test_inserts_moves_and_removes_against_a_reference(n):
    """Any sequence of insert / remove / remove_peer: lookups, sizes and each peer's entries,
    in the order the peer was first given them, match a plain list-based reference."""
    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 7), st.sampled_from("abc")),
        st.tuples(st.just("remove"), st.integers(0, 7), st.sampled_from("abc")),
        st.tuples(st.just("remove_peer"), st.just(0), st.sampled_from("abc")),
    ), max_size=40), st.lists(st.tuples(st.binary(min_size=n, max_size=n),
                                        st.integers(0, n * 8)), min_size=8, max_size=8))
    def check(ops, pool):
        t = AllowedIPs()
        ref = []  # [(prefix, bits, peer)] in the order each peer was given each prefix
        for op, i, peer in ops:
            pfx, bits = mask(pool[i][0], pool[i][1]), pool[i][1]
            owner = [e for e in ref if e[:2] == (pfx, bits)]
            if op == "insert":
                t.insert(pool[i][0], bits, peer)
                if not owner or owner[0][2] != peer:
                    ref = [e for e in ref if e[:2] != (pfx, bits)] + [(pfx, bits, peer)]
            elif op == "remove":
                expect = bool(owner) and owner[0][2] == peer
                assert t.remove(pool[i][0], bits, peer) is expect
                if expect:
                    ref.remove(owner[0])
            else:
                t.remove_peer(peer)
                ref = [e for e in ref if e[2] != peer]
            assert len(t) == len(ref)
        for peer in "abc":
            assert t.entries(peer) == [(p, b) for p, b, q in ref if q == peer]
        for addr, _ in pool:
            assert t.lookup(addr) == brute(ref, addr)

    check()


def test_ip_text():
    for text in ("0.0.0.0", "255.255.255.255", "::", "::1", "fd00::1", "2001:db8::1:0:0:1",
                 "2001:db8:0:1:1:1:1:1", "1::", "::ffff:1.2.3.4"):
        assert format_ip(parse_ip(text)) == text or text == "::ffff:1.2.3.4"
    assert parse_ip("::ffff:1.2.3.4")[-4:] == bytes([1, 2, 3, 4])
    assert format_ip(parse_ip("2001:DB8:0:0:1:0:0:1")) == "2001:db8::1:0:0:1"
    for bad in ("", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.1.1.1", "1.2.3.-4", ":::", "1::2::3",
                "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "0x1::", "1.2.3.4/", " 1.2.3.4"):
        with pytest.raises(ValueError):
            parse_cidr(bad) if "/" in bad else parse_ip(bad)
    for bad in ("10.0.0.0/33", "fd00::/129", "10.0.0.0/x", "10.0.0.0/-1"):
        with pytest.raises(ValueError):
            parse_cidr(bad)
