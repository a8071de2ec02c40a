"""UDP for WireGuard: one IPv4 and one IPv6 socket on the same port, sticky source addresses.

Rules kept here:
- Endpoints are what `recvmsg` returns: (host, port) for IPv4, (host, port, flowinfo, scope)
  for IPv6, so the core can compare them with those set through `wg`.
- Replies leave from the local address the peer last reached us on (IP_PKTINFO /
  IPV6_PKTINFO), which matters on multi-homed routers. If that address has gone, the send
  is retried once without it and the stale source is forgotten.
- A full socket buffer drops (counted) rather than blocks.
- Socket buffers are capped at SOCKET_BUFFER bytes each, so memory stays bounded.
"""

import errno
import socket
import struct

SOCKET_BUFFER = 1 << 20  # 1 MiB per direction per socket
SO_MARK = getattr(socket, "SO_MARK", 36)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
_ANC_SIZE = socket.CMSG_SPACE(20)
_MAX_DATAGRAM = 65535
_STALE_SOURCE = (errno.EINVAL, errno.EADDRNOTAVAIL, errno.ENETUNREACH)
_DROPPABLE = (errno.ENOBUFS, errno.ENOMEM, errno.EMSGSIZE, errno.EHOSTUNREACH,
              errno.ENETUNREACH, errno.ECONNREFUSED, errno.EPERM, errno.EACCES,
              errno.EADDRNOTAVAIL, errno.EINVAL, errno.EAFNOSUPPORT, errno.EHOSTDOWN,
              errno.ENETDOWN)


def _open(family, port, fwmark):
    s = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        else:
            s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            s.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        if fwmark:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, fwmark)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    except OSError:
        s.close()
        raise
    return s


class Udp:
    def __init__(self, port=0, fwmark=0):
        self.sockets = []
        self.sources = {}  # endpoint -> (level, type, pktinfo bytes) to send from
        self.send_drops = 0
        self.fwmark = fwmark
        self.port = 0
        self.bind(port)

    def bind(self, port):
        """(Re)bind both sockets to `port` (0: any free port). Raises OSError, leaving the old
        sockets in place, when the port cannot be had."""
        for _attempt in range(8 if port == 0 else 1):
            v4 = _open(socket.AF_INET, port, self.fwmark)
            chosen = v4.getsockname()[1]
            try:
                v6 = _open(socket.AF_INET6, chosen, self.fwmark)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and port == 0:
                    v4.close()
                    continue
                if exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                    v6 = None  # no IPv6 on this host: IPv4 only
                else:
                    v4.close()
                    raise
            break
        else:
            raise OSError(errno.EADDRINUSE, "no free port for both IPv4 and IPv6")
        self.close()
        self.v4, self.v6 = v4, v6
        self.sockets = [s for s in (v4, v6) if s is not None]
        self.port = chosen
        self.sources = {}
        return chosen

    def set_fwmark(self, mark):
        for s in self.sockets:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        self.fwmark = mark

    def recv_batch(self, sock, limit=64):
        """Up to `limit` datagrams from one socket: [(data, endpoint)]."""
        batch = []
        recvmsg = sock.recvmsg
        sources = self.sources
        for _ in range(limit):
            try:
                data, anc, _flags, addr = recvmsg(_MAX_DATAGRAM, _ANC_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue  # an ICMP error queued on the socket: not ours to act on
                raise
            for level, ctype, cdata in anc:
                if ctype == IP_PKTINFO and level == socket.IPPROTO_IP:
                    # struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}: answer
                    # from the address the datagram was sent to.
                    sources[addr] = (level, ctype, struct.pack("=i4s4s", 0, cdata[8:12],
                                                               b"\0" * 4))
                elif ctype == IPV6_PKTINFO and level == socket.IPPROTO_IPV6:
                    sources[addr] = (level, ctype, bytes(cdata[:20]))
            batch.append((data, addr))
        return batch

    def _socket_for(self, endpoint):
        if len(endpoint) == 2:
            return self.v4
        return self.v6

    def send_batch(self, datagrams):
        """Send [(data, endpoint)]; failures the network causes are counted, not raised."""
        sources = self.sources
        for data, endpoint in datagrams:
            sock = self._socket_for(endpoint)
            if sock is None:
                self.send_drops += 1
                continue
            src = sources.get(endpoint)
            try:
                if src is None:
                    sock.sendto(data, endpoint)
                else:
                    sock.sendmsg([data], [src], 0, endpoint)
            except BlockingIOError:
                self.send_drops += 1
            except OSError as exc:
                if src is not None and exc.errno in _STALE_SOURCE:
                    del sources[endpoint]  # that local address went away: let routing choose
                    try:
                        sock.sendto(data, endpoint)
                        continue
                    except OSError:
                        pass
                if exc.errno in _DROPPABLE or isinstance(exc, BlockingIOError):
                    self.send_drops += 1
                else:
                    raise

    def clear_source(self, endpoint):
        self.sources.pop(endpoint, None)

    def close(self):
        for s in self.sockets:
            s.close()
        self.sockets = []
        self.v4 = self.v6 = None
