"""core/icmp.py and the device's no-route path, without sockets.

Checksums are checked against a plain word-by-word RFC 1071 sum written here, not the
module's own arithmetic; tests/test_kernel_parity.py has the kernel check them too (`ping`
ignores an ICMP error whose checksum is wrong)."""

import os
import struct

from tests.inet import word_sum
from wgedge import crypto
from wgedge.core import consts as C
from wgedge.core import icmp
from wgedge.core.device import Device
from wgedge.core.ipaddr import parse_ip

SRC4, DST4 = parse_ip("10.7.0.1"), parse_ip("10.9.9.9")
SRC6, DST6 = parse_ip("fd07::1"), parse_ip("fd09::9")


def verifies(data):
    return word_sum(bytes(data)) == 0xFFFF


def ipv4(proto, payload, src=SRC4, dst=DST4, frag=0, ihl=5):
    options = bytes(4 * (ihl - 5))
    header = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(payload), 7, frag, 64,
                         proto, 0, src, dst) + options
    return header + payload


def ipv6(nh, payload, src=SRC6, dst=DST6):
    return struct.pack(">IHBB16s16s", 0x60000000, len(payload), nh, 64, src, dst) + payload


def udp(sport, dport, data):
    return struct.pack(">HHHH", sport, dport, 8 + len(data), 0) + data


ECHO4 = ipv4(1, b"\x08\x00\x00\x00\x12\x34\x00\x01" + b"ping" * 14)
ECHO6 = ipv6(58, b"\x80\x00\x00\x00\x12\x34\x00\x01" + b"ping" * 14)


def test_checksum_matches_the_word_by_word_sum():
    rng = __import__("random").Random(17)
    for n in list(range(0, 9)) + [575, 576, 1279, 1280]:
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(n))
            want = (~word_sum(data)) & 0xFFFF
            if not any(data):
                want = 0xFFFF
            assert icmp.checksum(data) == want, (n, data)
    assert icmp.checksum(b"\xff\xff") == 0  # a sum of 0xffff: checksum 0, not 0xffff
    assert icmp.checksum(b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7") == 0x220D  # RFC 1071 3. example


def test_ipv4_host_unreachable_quotes_the_packet_from_its_destination():
    reply = icmp.unreachable(ECHO4)
    assert reply[0] == 0x45 and reply[9] == 1
    assert reply[12:16] == DST4 and reply[16:20] == SRC4  # back to the sender
    assert struct.unpack(">H", reply[2:4])[0] == len(reply) == 20 + 8 + len(ECHO4)
    assert verifies(reply[:20]) and verifies(reply[20:])
    assert reply[20:22] == b"\x03\x01"  # destination unreachable, host unreachable
    assert reply[28:] == ECHO4


def test_ipv4_quote_is_cut_to_576_bytes_in_all():
    big = ipv4(17, udp(5000, 53, bytes(range(256)) * 5))
    reply = icmp.unreachable4(big)
    assert len(reply) == 576
    assert reply[28:] == big[:548]
    assert verifies(reply[:20]) and verifies(reply[20:])


def test_ipv6_address_unreachable_has_the_pseudo_header_checksum():
    reply = icmp.unreachable(ECHO6)
    assert reply[0] >> 4 == 6 and reply[6] == 58
    assert reply[8:24] == DST6 and reply[24:40] == SRC6
    body = reply[40:]
    assert struct.unpack(">H", reply[4:6])[0] == len(body) == 8 + len(ECHO6)
    assert body[:2] == b"\x01\x03"  # destination unreachable, address unreachable
    assert body[8:] == ECHO6
    pseudo = DST6 + SRC6 + struct.pack(">I", len(body)) + b"\0\0\0\x3a"
    assert verifies(pseudo + body)
    assert not verifies(body)  # the pseudo-header matters (this packet's sum is not 0xffff)


def test_ipv6_quote_is_cut_to_1280_bytes_in_all():
    big = ipv6(17, udp(5000, 53, bytes(range(256)) * 8))
    reply = icmp.unreachable6(big)
    assert len(reply) == 1280
    assert reply[48:] == big[:1232]
    pseudo = parse_ip("fd09::9") + SRC6 + struct.pack(">I", 1240) + b"\0\0\0\x3a"
    assert verifies(pseudo + reply[40:])


def test_no_answer_where_the_rfcs_forbid_one():
    err4 = ipv4(1, b"\x03\x01\x00\x00\x00\x00\x00\x00" + ECHO4[:28])  # an ICMP error
    err6 = ipv6(58, b"\x01\x03\x00\x00\x00\x00\x00\x00" + ECHO6[:48])
    frag4 = ipv4(17, udp(5000, 53, b"x" * 32), frag=0x0010)  # offset 128 bytes
    first4 = ipv4(17, udp(5000, 53, b"x" * 32), frag=0x2000)  # MF set, offset 0: answered
    frag6 = ipv6(44, struct.pack(">BBHI", 17, 0, 0x0010 << 3 & 0xFFF8 | 1, 9) + b"x" * 32)
    first6 = ipv6(44, struct.pack(">BBHI", 17, 0, 1, 9) + udp(5000, 53, b"x" * 24))
    for refused in (err4, err6, frag4, frag6,
                    ipv4(17, udp(1, 2, b"x"), dst=parse_ip("224.0.0.251")),
                    ipv4(17, udp(1, 2, b"x"), dst=parse_ip("255.255.255.255")),
                    ipv4(17, udp(1, 2, b"x"), src=parse_ip("0.0.0.0")),
                    ipv6(17, udp(1, 2, b"x"), dst=parse_ip("ff02::1")),
                    ipv6(17, udp(1, 2, b"x"), src=parse_ip("::")),
                    ECHO4[:30], ipv4(17, b"")[:19], ECHO6[:60], b""):
        assert icmp.unreachable(refused) is None, refused
    for answered in (first4, first6, ECHO4, ECHO6, ipv4(17, udp(1, 2, b"opt"), ihl=6)):
        assert icmp.unreachable(answered) is not None


def test_limiter_allows_a_burst_then_the_rate():
    lim = icmp.Limiter(rate=1000, burst=50)
    assert sum(lim.allow(5.0) for _ in range(80)) == 50
    assert not lim.allow(5.0)
    # refilled at one per ms: every 1.5 ms one answer, with half a token saved each time
    assert sum(lim.allow(5.0 + 0.0015 * i) for i in range(1, 11)) == 10
    lim = icmp.Limiter(rate=1000, burst=50)
    assert sum(lim.allow(7.0) for _ in range(60)) == 50
    assert 4 <= sum(lim.allow(7.0 + 0.0005 * i) for i in range(1, 11)) <= 5  # 5 ms: ~5
    assert sum(lim.allow(100.0) for _ in range(80)) == 50  # refills to the burst, no more


def _device():
    d = Device(crypto.load("fast"), os.urandom, os.urandom(32))
    return d


def test_device_lists_a_packet_no_peer_covers_for_an_answer():
    d = _device()
    err4 = ipv4(1, b"\x03\x01\x00\x00\x00\x00\x00\x00" + ECHO4[:28])
    out = d.send_packets([ECHO4, ECHO6, err4], 1.0)
    assert out.dropped == [C.DROP_NO_ROUTE] * 3 and out.tun == []
    assert out.unreachable == [ECHO4, ECHO6]  # never an ICMP error for an ICMP error
    out = d.send_packets([ECHO4] * 200, 2.0)  # a flood: the burst, then nothing this instant
    assert len(out.unreachable) == C.ICMP_BURST and len(out.dropped) == 200
    assert len(d.send_packets([ECHO4] * 5, 2.0025).unreachable) == 2  # refilled at 1 per ms
    assert icmp.answerable(ECHO4) and icmp.answerable(ECHO6) and not icmp.answerable(err4)
    assert not icmp.answerable(b"") and not icmp.answerable(b"\x50" + bytes(40))


def test_answer_for_the_kernel_goes_to_the_sender_before_nat():
    """What io/unreachable.py hands the kernel: source 0.0.0.0 (the kernel fills it in from
    the route back), to the sender conntrack names, quoting the packet with that sender as
    its source and a header checksum that is right again."""
    lan = parse_ip("192.168.1.20")
    reply = icmp.unreachable4(ECHO4, b"\0\0\0\0", lan)
    assert reply[12:16] == b"\0\0\0\0" and reply[16:20] == lan
    quote = reply[28:]
    assert quote[12:16] == lan and quote[16:20] == DST4 and quote[20:] == ECHO4[20:]
    assert verifies(quote[:20]) and verifies(reply[20:]) and verifies(reply[:20])
    assert icmp.unreachable4(ECHO4, None, SRC4) == icmp.unreachable4(ECHO4)  # no NAT
    lan6 = parse_ip("fd00:1::20")
    msg = icmp.message6(ECHO6, lan6)
    assert msg[:4] == b"\x01\x03\x00\x00"  # checksum left to the raw ICMPv6 socket
    assert msg[8 + 8:8 + 24] == lan6 and msg[8 + 24:8 + 40] == DST6 and msg[48:] == ECHO6[40:]
    assert bytes(icmp.message6(ECHO6))[8:] == ECHO6
    assert icmp.message6(ipv6(58, b"\x01\x03" + bytes(6) + ECHO6[:48])) is None


def test_same_answers_under_micropython(micropython):
    """The core runs on MicroPython too: the same packets give the same bytes there."""
    big4 = ipv4(17, udp(5000, 53, bytes(range(256)) * 5))
    big6 = ipv6(17, udp(5000, 53, bytes(range(256)) * 8))
    cases = [ECHO4, ECHO6, big4, big6]
    lan4, lan6 = parse_ip("192.168.1.20"), parse_ip("fd00:1::20")
    script = ('from wgedge.core import icmp\n'
              'def hx(b):\n    return "".join("%02x" % c for c in b)\n'
              'def unhex(t):\n    return bytes(int(t[i:i + 2], 16) for i in range(0, len(t), 2))\n'
              + "".join("print('case%d', hx(icmp.unreachable(unhex(%r))))\n" % (i, c.hex())
                        for i, c in enumerate(cases))
              + "print('nat4', hx(icmp.unreachable4(unhex(%r), bytes(4), unhex(%r))))\n"
              % (big4.hex(), lan4.hex())
              + "print('nat6', hx(icmp.message6(unhex(%r), unhex(%r))))\n"
              % (big6.hex(), lan6.hex()))
    got = dict(line.split(" ", 1) for line in micropython(script).splitlines() if " " in line)
    want = {"case%d" % i: icmp.unreachable(c).hex() for i, c in enumerate(cases)}
    want["nat4"] = icmp.unreachable4(big4, bytes(4), lan4).hex()
    want["nat6"] = bytes(icmp.message6(big6, lan6)).hex()
    assert got == want
