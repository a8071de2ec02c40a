"""Route and address changes from rtnetlink, and route lookups: where replies leave from.

The kernel's WireGuard re-checks, for every datagram it sends, that the route to the peer's
endpoint from the remembered source still leaves through the interface that source was
learned on (socket.c, send4); a better route through another interface makes it forget the
source, so replies follow the route. Doing that per datagram would cost a route lookup per
packet here, so the work is moved to when routes change:

- `RouteMonitor` listens on an rtnetlink socket (NETLINK_ROUTE, subscribed to IPv4/IPv6
  route and address changes and to link changes, non-blocking, in the event loop). A
  message only says "something changed": nothing is parsed but its type (a link change
  makes the loop read its interface's MTU again, io/loop.py). After a route or address
  change the loop re-checks the remembered sources and peer endpoints' routes (io/udp.py,
  `Udp.recheck_sources`; io/nested.py), paced by what the re-checks cost: one route
  lookup per endpoint, QUERIES_PER_SECOND of them a second (and as many in a
  burst). With the few peers of a router every change is followed at once, as the kernel's
  per-packet check would follow it, however many commands an administrator (or a selftest)
  runs in a row; a router with thousands of peers learning a full BGP table re-checks them
  about once every (peers / QUERIES_PER_SECOND) seconds.
- `RouteQuery.output_ifindex` asks the kernel (RTM_GETROUTE, one request and its answer on a
  socket of its own) which interface a datagram to an endpoint from a given source would
  leave through, and `RouteQuery.link_kind` (RTM_GETLINK) what kind of interface that is
  ("tun", "wireguard", "gre", ...: whether the route leads into another tunnel). They run
  once per remembered source or peer endpoint when it is learned or re-checked, never per
  packet.

No pyroute2 here: the daemon keeps to the socket module (its imports stay small).
"""

import errno
import socket
import struct

QUERIES_PER_SECOND = 512.0  # route lookups that re-checks may cost, per second and at once

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
RTA_DST = 1
RTA_SRC = 2
RTA_OIF = 4
RTA_MARK = 16
_NLMSG = struct.Struct("=IHHII")  # struct nlmsghdr
_RTMSG = struct.Struct("=BBBBBBBBI")  # struct rtmsg
_RTA = struct.Struct("=HH")  # struct rtattr
_IFINFO = struct.Struct("=BxHiII")  # struct ifinfomsg
_DRAIN_READS = 64  # reads per wake-up; a longer burst wakes the loop again (level-triggered)


def _netlink(groups=0):
    s = socket.socket(socket.AF_NETLINK,
                      socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                      NETLINK_ROUTE)
    try:
        s.bind((0, groups))
    except OSError:
        s.close()
        raise
    return s


class RouteQuery:
    """RTM_GETROUTE: which interface a datagram would leave through."""

    def __init__(self):
        self.sock = None
        self.seq = 0

    def output_ifindex(self, family, dst, src, mark=0):
        """The index of the interface the kernel would send a datagram to address `dst` (bytes)
        from local address `src` (bytes; None: the route chooses) through; 0 when there is no
        such route (or `src` is no longer ours); None when the kernel could not be asked
        (then nothing is known)."""
        bits = len(dst) * 8
        attrs = _attr(RTA_DST, dst)
        if src:
            attrs += _attr(RTA_SRC, src)
        if mark:
            attrs += _attr(RTA_MARK, struct.pack("=I", mark))
        body = _RTMSG.pack(family, bits, bits, 0, 0, 0, 0, 0, 0) + attrs
        return self._ask(RTM_GETROUTE, body, _route_oif)

    def link_kind(self, ifindex):
        """What kind of interface `ifindex` is, as `ip -d link` shows it ("tun", "wireguard",
        "veth", ...; "" for a plain device such as lo or a NIC); None when the kernel could not
        be asked or has no such interface."""
        answer = self._ask(RTM_GETLINK, _IFINFO.pack(0, 0, ifindex, 0, 0), _link_kind)
        return answer if answer != 0 else None

    def _ask(self, kind, body, parse):
        """One request and the answer `parse(message bytes, offset, length)` makes of its
        reply; 0 for an error reply; None when the kernel could not be asked."""
        try:
            if self.sock is None:
                self.sock = _netlink()
            self.seq = (self.seq + 1) & 0xFFFFFFFF
            self.sock.send(_NLMSG.pack(16 + len(body), kind, NLM_F_REQUEST, self.seq, 0) + body)
            # The kernel answers a route or link request while it handles the send: the
            # reply is already queued. Replies to earlier requests (none are expected) are
            # skipped.
            for _ in range(4):
                reply = self.sock.recv(65536)
                answer = _parse_reply(reply, self.seq, parse)
                if answer is not False:
                    return answer
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            self.close()
            return None
        return None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _attr(kind, data):
    n = 4 + len(data)
    return _RTA.pack(n, kind) + data + b"\0" * (-n & 3)


def _parse_reply(reply, seq, parse):
    """What `parse` makes of the message answering request `seq` in one netlink reply; 0 for
    an error reply; False when the reply answers another request."""
    off = 0
    while off + 16 <= len(reply):
        length, kind, _flags, got_seq, _pid = _NLMSG.unpack_from(reply, off)
        if length < 16:
            return False
        if got_seq == seq:
            if kind == NLMSG_ERROR:
                return 0
            return parse(kind, reply, off + 16, min(off + length, len(reply)))
        off += (length + 3) & ~3
    return False


def _attrs(data, a, end):
    """(kind, offset of its value, end of its value) of each rtattr in data[a:end]."""
    while a + 4 <= end:
        alen, akind = _RTA.unpack_from(data, a)
        if alen < 4 or a + alen > end:
            return
        yield akind & 0x3FFF, a + 4, a + alen  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        a += (alen + 3) & ~3


def _route_oif(kind, data, a, end):
    if kind == RTM_NEWROUTE:
        for akind, v, vend in _attrs(data, a + _RTMSG.size, end):
            if akind == RTA_OIF and vend - v >= 4:
                return struct.unpack_from("=I", data, v)[0]
    return 0


def _link_kind(kind, data, a, end):
    if kind != RTM_NEWLINK:
        return 0
    for akind, v, vend in _attrs(data, a + _IFINFO.size, end):
        if akind == IFLA_LINKINFO:
            for ikind, iv, ivend in _attrs(data, v, vend):
                if ikind == IFLA_INFO_KIND:
                    return bytes(data[iv:ivend]).rstrip(b"\0").decode("ascii", "replace")
    return ""


class RouteMonitor:
    """Route and address changes, as `due(now, cost)`: a re-check costing `cost` route
    lookups may run while the lookup budget (QUERIES_PER_SECOND) allows. Interface changes
    (an MTU, a move) set `links_changed` instead, for the loop to read its interface's MTU
    again; only the message type is looked at."""

    def __init__(self):
        self.sock = _netlink(RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_IFADDR
                             | RTMGRP_IPV6_IFADDR | RTMGRP_LINK)
        self.changed = False
        self.links_changed = False
        self.credit = QUERIES_PER_SECOND  # lookups allowed now, as of `stamp` (may go below 0)
        self.stamp = None

    def fileno(self):
        return self.sock.fileno()

    def readable(self):
        """Read what has arrived (bounded); any message, or a lost one, is a change. False
        when the socket failed otherwise (the caller stops watching it)."""
        for _ in range(_DRAIN_READS):
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                self.changed = self.links_changed = True
                if exc.errno != errno.ENOBUFS:  # ENOBUFS: messages were lost, read on
                    return False
                continue
            if not data:
                break
            off = 0
            while off + 16 <= len(data):
                length, kind = _NLMSG.unpack_from(data, off)[:2]
                if kind in (RTM_NEWLINK, RTM_DELLINK):
                    self.links_changed = True
                else:
                    self.changed = True
                if length < 16:
                    break
                off += (length + 3) & ~3
        return True

    def next_deadline(self, cost):
        """When a pending change is due to be acted on (a re-check costing `cost` route
        lookups), or None."""
        if not self.changed:
            return None
        need = min(float(cost), QUERIES_PER_SECOND)
        if self.stamp is None or self.credit >= need:
            return 0.0
        return self.stamp + (need - self.credit) / QUERIES_PER_SECOND

    def due(self, now, cost):
        """True (once) when a change is pending and a re-check costing `cost` route lookups
        may run now; the cost is then taken from the budget (a large table's re-check takes
        more than a second's budget and so waits longer before the next one)."""
        if self.stamp is not None:
            self.credit = min(QUERIES_PER_SECOND,
                              self.credit + (now - self.stamp) * QUERIES_PER_SECOND)
        self.stamp = now
        if not self.changed or self.credit < min(float(cost), QUERIES_PER_SECOND):
            return False
        self.changed = False
        self.credit -= cost
        return True

    def close(self):
        self.sock.close()
