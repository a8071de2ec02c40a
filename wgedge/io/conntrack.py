"""Who really sent a packet that source NAT rewrote: one conntrack lookup (ctnetlink).

The kernel's WireGuard answers a packet no peer covers with an ICMP error through
icmp_ndo_send / icmpv6_ndo_send, which look the packet up in conntrack and, when its source
was NATed (a router masquerading its LAN into the tunnel), send the error to the original
sender, quoting the packet with that source put back. A userspace daemon sees only the
packet as it left NAT, so io/unreachable.py asks the kernel here:

    the packet (post-NAT, original direction)  src S' -> dst D, ports s' -> d
    its connection's reply tuple               src D  -> dst S', ports d -> s'
    CTA_TUPLE_ORIG of that connection          src S  (the sender before NAT)

`original_source(p)` sends one IPCTNL_MSG_CT_GET by reply tuple on a NETLINK_NETFILTER
socket of its own (the kernel answers while it handles the send, as for RTM_GETROUTE in
io/route.py) and returns S when it differs from the packet's source; None when there was no
source NAT, no such connection, no conntrack, or the packet is of a kind conntrack keys
differently (only TCP, UDP, UDP-Lite, SCTP, DCCP and ICMP/ICMPv6 queries are looked up).
It runs only for packets answered with an ICMP error (rate-limited by the core), never on
the data path. Needs CAP_NET_ADMIN, which the daemon has; without it nothing is un-NATed.
"""

import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_IP_V4_SRC = 1
CTA_IP_V4_DST = 2
CTA_IP_V6_SRC = 3
CTA_IP_V6_DST = 4
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3
CTA_PROTO_ICMP_ID = 4  # + 0 for ICMP (type 5, code 6), + 3 for ICMPv6 (id 7, type 8, code 9)
_PORTED = (6, 17, 33, 132, 136)  # TCP, UDP, DCCP, SCTP, UDP-Lite: ports first in the header
# ICMP queries conntrack tracks, and the type of their answer (its reply tuple's type)
_ICMP_REPLY = {8: 0, 13: 14, 15: 16, 17: 18}
_ICMPV6_REPLY = {128: 129, 139: 140}
_NLMSG = struct.Struct("=IHHII")
_RTA = struct.Struct("=HH")


def _attr(kind, data):
    n = 4 + len(data)
    return _RTA.pack(n, kind) + data + b"\0" * (-n & 3)


def reply_tuple(p):
    """(family, CTA_TUPLE_REPLY attribute bytes) for IP packet `p`, or None when its
    connection cannot be named from it."""
    if p[0] >> 4 == 4:
        family, src, dst, proto, off = socket.AF_INET, p[12:16], p[16:20], p[9], (p[0] & 15) * 4
        ip = _attr(CTA_IP_V4_SRC, bytes(dst)) + _attr(CTA_IP_V4_DST, bytes(src))
        queries, icmp_proto, id_attr = _ICMP_REPLY, 1, CTA_PROTO_ICMP_ID
    else:
        family, src, dst, proto, off = socket.AF_INET6, p[8:24], p[24:40], p[6], 40
        ip = _attr(CTA_IP_V6_SRC, bytes(dst)) + _attr(CTA_IP_V6_DST, bytes(src))
        queries, icmp_proto, id_attr = _ICMPV6_REPLY, 58, CTA_PROTO_ICMP_ID + 3
    if len(p) < off + 8:
        return None
    proto_attrs = _attr(CTA_PROTO_NUM, bytes((proto,)))
    if proto in _PORTED:  # the reply's source port is our packet's destination port
        proto_attrs += (_attr(CTA_PROTO_SRC_PORT, bytes(p[off + 2:off + 4]))
                        + _attr(CTA_PROTO_DST_PORT, bytes(p[off:off + 2])))
    elif proto == icmp_proto and p[off] in queries:
        proto_attrs += (_attr(id_attr, bytes(p[off + 4:off + 6]))
                        + _attr(id_attr + 1, bytes((queries[p[off]],)))
                        + _attr(id_attr + 2, b"\0"))
    else:
        return None
    return family, _attr(CTA_TUPLE_REPLY | NLA_F_NESTED,
                         _attr(CTA_TUPLE_IP | NLA_F_NESTED, ip)
                         + _attr(CTA_TUPLE_PROTO | NLA_F_NESTED, proto_attrs))


def _attrs(data, a, end):
    while a + 4 <= end:
        alen, kind = _RTA.unpack_from(data, a)
        if alen < 4 or a + alen > end:
            return
        yield kind & 0x3FFF, a + 4, a + alen
        a += (alen + 3) & ~3


def _find(data, a, end, path):
    """The value span of the attribute at `path` (kinds, outermost first), or None."""
    for kind, v, vend in _attrs(data, a, end):
        if kind == path[0]:
            return (v, vend) if len(path) == 1 else _find(data, v, vend, path[1:])
    return None


def parse_original_source(reply, seq, family):
    """The original direction's source address in a CT_NEW answer to request `seq`, or
    None (an error answer, or none)."""
    off = 0
    want = CTA_IP_V4_SRC if family == socket.AF_INET else CTA_IP_V6_SRC
    while off + 16 <= len(reply):
        length, kind, _flags, got_seq, _pid = _NLMSG.unpack_from(reply, off)
        if length < 16 or off + length > len(reply):
            return None
        if got_seq == seq and kind == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW:
            span = _find(reply, off + 20, off + length, (CTA_TUPLE_ORIG, CTA_TUPLE_IP, want))
            return None if span is None else bytes(reply[span[0]:span[1]])
        if got_seq == seq and kind == NLMSG_ERROR:
            return None
        off += (length + 3) & ~3
    return None


class Conntrack:
    def __init__(self):
        self.sock = None
        self.seq = 0
        self.failed = False  # no ctnetlink here (or not allowed): never asked again

    def original_source(self, p):
        """The source of IP packet `p` before source NAT, when NAT changed it; else None."""
        if self.failed:
            return None
        tup = reply_tuple(p)
        if tup is None:
            return None
        family, attrs = tup
        if self.sock is None:
            try:
                self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW
                                          | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                          NETLINK_NETFILTER)
                self.sock.bind((0, 0))
            except OSError:
                self.close()
                self.failed = True
                return None
        try:
            self.seq = (self.seq + 1) & 0xFFFFFFFF
            body = struct.pack("=BBH", family, 0, 0) + attrs  # struct nfgenmsg, version 0
            self.sock.send(_NLMSG.pack(16 + len(body), (NFNL_SUBSYS_CTNETLINK << 8)
                                       | IPCTNL_MSG_CT_GET, NLM_F_REQUEST, self.seq, 0) + body)
            source = parse_original_source(self.sock.recv(65536), self.seq, family)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            self.close()  # opened again for the next one
            return None
        here = bytes(p[12:16]) if family == socket.AF_INET else bytes(p[8:24])
        return source if source is not None and source != here else None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
