"""io/conntrack.py: the reply tuple a packet's connection is found by, and the original
source read from the kernel's answer. The whole (a router NATs a LAN host into the tunnel;
the ICMP error reaches that host) is tests/test_kernel_parity.py's NAT test."""

import socket
import struct

from tests.test_icmp import ECHO4, ECHO6, ipv4, ipv6, udp
from wgedge.core.ipaddr import parse_ip
from wgedge.io import conntrack as ct


def attrs(data):
    """{kind: value} of one level of netlink attributes (NLA_F_NESTED taken off)."""
    out = {}
    a = 0
    while a + 4 <= len(data):
        n, kind = struct.unpack_from("=HH", data, a)
        out[kind & 0x3FFF] = data[a + 4:a + n]
        a += (n + 3) & ~3
    return out


def test_reply_tuple_swaps_addresses_and_ports():
    p = ipv4(17, udp(40000, 53, b"q"), src=parse_ip("192.168.85.2"), dst=parse_ip("10.9.9.9"))
    family, data = ct.reply_tuple(p)
    assert family == socket.AF_INET
    tup = attrs(attrs(data)[ct.CTA_TUPLE_REPLY])
    ip, proto = attrs(tup[ct.CTA_TUPLE_IP]), attrs(tup[ct.CTA_TUPLE_PROTO])
    assert ip == {ct.CTA_IP_V4_SRC: parse_ip("10.9.9.9"), ct.CTA_IP_V4_DST: parse_ip("192.168.85.2")}
    assert proto[ct.CTA_PROTO_NUM][:1] == b"\x11"
    assert proto[ct.CTA_PROTO_SRC_PORT][:2] == struct.pack(">H", 53)
    assert proto[ct.CTA_PROTO_DST_PORT][:2] == struct.pack(">H", 40000)


def test_reply_tuple_of_an_echo_request_is_its_echo_reply():
    family, data = ct.reply_tuple(ECHO4)
    proto = attrs(attrs(attrs(data)[ct.CTA_TUPLE_REPLY])[ct.CTA_TUPLE_PROTO])
    assert proto[4][:2] == b"\x12\x34" and proto[5][:1] == b"\x00" and proto[6][:1] == b"\x00"
    family, data = ct.reply_tuple(ECHO6)
    assert family == socket.AF_INET6
    tup = attrs(attrs(data)[ct.CTA_TUPLE_REPLY])
    assert attrs(tup[ct.CTA_TUPLE_IP])[ct.CTA_IP_V6_DST] == ECHO6[8:24]
    proto = attrs(tup[ct.CTA_TUPLE_PROTO])
    assert proto[7][:2] == b"\x12\x34" and proto[8][:1] == b"\x81"  # 129: echo reply


def test_no_tuple_where_conntrack_keys_connections_otherwise():
    assert ct.reply_tuple(ipv4(47, bytes(16))) is None  # GRE: keys, not ports
    assert ct.reply_tuple(ipv4(1, b"\x03\x01" + bytes(30))) is None  # not a query
    assert ct.reply_tuple(ipv6(0, bytes(16))) is None  # an extension header first
    assert ct.reply_tuple(ipv4(17, b"\x00\x35")) is None  # too short for its ports


def answer(seq, kind, src):
    ip = ct._attr(ct.CTA_IP_V4_SRC, src) + ct._attr(ct.CTA_IP_V4_DST, parse_ip("10.9.9.9"))
    orig = ct._attr(ct.CTA_TUPLE_ORIG | ct.NLA_F_NESTED,
                    ct._attr(ct.CTA_TUPLE_PROTO | ct.NLA_F_NESTED, ct._attr(1, b"\x11"))
                    + ct._attr(ct.CTA_TUPLE_IP | ct.NLA_F_NESTED, ip))
    body = b"\x02\x00\x00\x00" + orig
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body


def test_original_source_is_read_from_the_answer_to_our_request():
    new = (ct.NFNL_SUBSYS_CTNETLINK << 8) | ct.IPCTNL_MSG_CT_NEW
    lan = parse_ip("192.168.1.20")
    assert ct.parse_original_source(answer(7, new, lan), 7, socket.AF_INET) == lan
    assert ct.parse_original_source(answer(6, new, lan), 7, socket.AF_INET) is None
    err = struct.pack("=IHHIIi", 36, ct.NLMSG_ERROR, 0, 7, 0, -2) + bytes(16)  # ENOENT
    assert ct.parse_original_source(err, 7, socket.AF_INET) is None
    assert ct.parse_original_source(b"\x10\x00", 7, socket.AF_INET) is None


def test_a_packet_conntrack_does_not_know_is_left_as_it_is():
    c = ct.Conntrack()
    try:
        # no such connection (or no conntrack here at all): nothing to un-NAT
        assert c.original_source(ipv4(17, udp(40001, 9, b"x"), src=parse_ip("10.250.0.1"),
                                      dst=parse_ip("10.250.0.2"))) is None
    finally:
        c.close()
