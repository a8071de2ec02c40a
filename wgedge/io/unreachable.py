"""ICMP errors for packets no peer covers, sent the way the kernel's WireGuard sends them.

The core lists the packets to answer (Output.unreachable: answerable ones, within the
kernel's ICMP rate limit) and makes the answers (core/icmp.py); this module decides how
each one leaves. The kernel's wg_xmit answers through icmp_ndo_send / icmpv6_ndo_send:

1. conntrack is asked who sent the packet before source NAT (a router masquerading its LAN
   into the tunnel), and the error goes to that sender, quoting the packet with its
   original source (io/conntrack.py asks the same of the kernel);
2. the error is sent by the host, so routing chooses its source address: the address of
   the interface the way back to the sender leaves through (`ping` from a LAN host prints
   "From <the router's LAN address>"; a local `ping` the interface's own address).

Here the error is handed to the kernel in the same way: a raw socket (IPv4: IPPROTO_RAW,
the header ours with source 0.0.0.0, which the kernel fills in from the route; IPv6: a raw
ICMPv6 socket, which chooses the source and sums the checksum; it is set to receive
nothing; both are opened at start, before the daemon gives up CAP_NET_RAW). Where that
cannot be done (the interface was moved to another network namespace, so the host that
must answer is not ours; no raw socket without CAP_NET_RAW), the answer is written into the
TUN device instead, from the packet's destination (core/icmp.py says why from there).

Nothing here runs on the data path: only for the few packets the core lists, at most
ICMP_BURST at once.
"""

import socket

from wgedge.core import icmp
from wgedge.io.conntrack import Conntrack

ICMP6_FILTER = 1
_BLOCK_ALL = b"\xff" * 32  # struct icmp6_filter with every type blocked: receive nothing


class Unreachable:
    def __init__(self, tun):
        self.tun = tun
        self.conntrack = Conntrack()
        # family -> raw socket, or None where it could not be had. Opened now: the daemon
        # gives up CAP_NET_RAW once its interface exists (router/privileges.py).
        self._sockets = {}
        self._socket(socket.AF_INET)
        self._socket(socket.AF_INET6)

    def answer(self, packets):
        """Answer each packet of Output.unreachable."""
        here = self.tun.visible_here()  # in this network namespace: the kernel answers
        back = []
        for p in packets:
            if not (here and self._send(p)):
                reply = icmp.unreachable(p)
                if reply is not None:
                    back.append(reply)
        if back:
            self.tun.write_batch(back)

    def _send(self, p):
        """Hand the answer to `p` to the kernel; False when it cannot be."""
        v4 = p[0] >> 4 == 4
        sock = self._socket(socket.AF_INET if v4 else socket.AF_INET6)
        if sock is None:
            return False
        sender = self.conntrack.original_source(p)  # None: not NATed, as it is
        if v4:
            to = sender or bytes(p[12:16])
            message = icmp.unreachable4(p, b"\0\0\0\0", to)
            address = (socket.inet_ntop(socket.AF_INET, to), 0)
        else:
            to = sender or bytes(p[8:24])
            message = icmp.message6(p, sender)
            scope = self.tun.ifindex if to[:2] == b"\xfe\x80" else 0
            address = (socket.inet_ntop(socket.AF_INET6, to), 0, 0, scope)
        if message is not None:
            try:
                sock.sendto(message, address)
            except OSError:
                pass  # no way back to the sender, or a full buffer: the kernel drops it too
        return True

    def _socket(self, family):
        if family in self._sockets:
            return self._sockets[family]
        sock = None
        try:
            if family == socket.AF_INET:
                sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                                     | socket.SOCK_CLOEXEC, socket.IPPROTO_RAW)
            else:
                sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                                     | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMPV6)
                sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, _BLOCK_ALL)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256)
        except OSError:
            if sock is not None:
                sock.close()
            sock = None
        self._sockets[family] = sock
        return sock

    def close(self):
        for sock in self._sockets.values():
            if sock is not None:
                sock.close()
        self._sockets = {}
        self.conntrack.close()
