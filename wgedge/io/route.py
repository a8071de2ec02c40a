"""Route and address changes from rtnetlink, and route lookups: where replies leave from.

The kernel's WireGuard re-checks, for every datagram it sends, that the route to the peer's
endpoint from the remembered source still leaves through the interface that source was
learned on (socket.c, send4); a better route through another interface makes it forget the
source, so replies follow the route. Doing that per datagram would cost a route lookup per
packet here, so the work is moved to when routes change:

- `RouteMonitor` listens on an rtnetlink socket (NETLINK_ROUTE, subscribed to IPv4/IPv6
  route and address changes, non-blocking, in the event loop). A message only says
  "something changed": nothing is parsed. After a change the loop re-checks the remembered
  sources (io/udp.py, `Udp.recheck_sources`), paced by what the re-checks cost: one route
  lookup per remembered source, QUERIES_PER_SECOND of them a second (and as many in a
  burst). With the few peers of a router every change is followed at once, as the kernel's
  per-packet check would follow it, however many commands an administrator (or a selftest)
  runs in a row; a router with thousands of peers learning a full BGP table re-checks them
  about once every (peers / QUERIES_PER_SECOND) seconds.
- `RouteQuery.output_ifindex` asks the kernel (RTM_GETROUTE, one request and its answer on a
  socket of its own) which interface a datagram to an endpoint from a given source would
  leave through. It runs once per remembered source when it is learned or re-checked, never
  per packet.

No pyroute2 here: the daemon keeps to the socket module (its imports stay small).
"""

import errno
import socket
import struct

QUERIES_PER_SECOND = 512.0  # route lookups that re-checks may cost, per second and at once

NETLINK_ROUTE = 0
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
RTA_DST = 1
RTA_SRC = 2
RTA_OIF = 4
RTA_MARK = 16
_NLMSG = struct.Struct("=IHHII")  # struct nlmsghdr
_RTMSG = struct.Struct("=BBBBBBBBI")  # struct rtmsg
_RTA = struct.Struct("=HH")  # struct rtattr
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
        from local address `src` (bytes) through; 0 when there is no such route (or `src` is
        no longer ours); None when the kernel could not be asked (then nothing is known)."""
        try:
            if self.sock is None:
                self.sock = _netlink()
            self.seq = (self.seq + 1) & 0xFFFFFFFF
            bits = len(dst) * 8
            attrs = _attr(RTA_DST, dst) + _attr(RTA_SRC, src)
            if mark:
                attrs += _attr(RTA_MARK, struct.pack("=I", mark))
            body = _RTMSG.pack(family, bits, bits, 0, 0, 0, 0, 0, 0) + attrs
            self.sock.send(_NLMSG.pack(16 + len(body), RTM_GETROUTE, NLM_F_REQUEST, self.seq, 0)
                           + body)
            # The kernel answers a route request while it handles the send: the reply is
            # already queued. Replies to earlier requests (none are expected) are skipped.
            for _ in range(4):
                reply = self.sock.recv(65536)
                answer = _parse_reply(reply, self.seq)
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


def _parse_reply(reply, seq):
    """The output ifindex in one netlink reply to request `seq`; 0 for an error reply;
    False when the reply answers another request."""
    off = 0
    while off + 16 <= len(reply):
        length, kind, _flags, got_seq, _pid = _NLMSG.unpack_from(reply, off)
        if length < 16:
            return False
        if got_seq == seq:
            if kind == NLMSG_ERROR:
                return 0
            if kind == RTM_NEWROUTE:
                a = off + 16 + _RTMSG.size
                end = off + length
                while a + 4 <= end:
                    alen, akind = _RTA.unpack_from(reply, a)
                    if alen < 4:
                        break
                    if akind == RTA_OIF and alen >= 8:
                        return struct.unpack_from("=I", reply, a + 4)[0]
                    a += (alen + 3) & ~3
                return 0
        off += (length + 3) & ~3
    return False


class RouteMonitor:
    """Route and address changes, as `due(now, cost)`: a re-check costing `cost` route
    lookups may run while the lookup budget (QUERIES_PER_SECOND) allows."""

    def __init__(self):
        self.sock = _netlink(RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_IFADDR
                             | RTMGRP_IPV6_IFADDR)
        self.changed = False
        self.credit = QUERIES_PER_SECOND  # lookups allowed now, as of `stamp` (may go below 0)
        self.stamp = None

    def fileno(self):
        return self.sock.fileno()

    def readable(self):
        """Read what has arrived (bounded); any message, or a lost one, is a change. False
        when the socket failed otherwise (the caller stops watching it)."""
        for _ in range(_DRAIN_READS):
            try:
                if not self.sock.recv(65536):
                    break
            except BlockingIOError:
                break
            except OSError as exc:
                self.changed = True
                if exc.errno != errno.ENOBUFS:  # ENOBUFS: messages were lost, read on
                    return False
            self.changed = True
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
