"""UDP for WireGuard: IPv4 and IPv6 on one port, handshakes in their own queue, sticky sources.

Rules kept here:
- Endpoints are what `recvmsg` returns: (host, port) for IPv4, (host, port, flowinfo, scope)
  for IPv6, so the core can compare them with those set through `wg`.
- Replies leave from the local address the peer last reached us on (IP_PKTINFO /
  IPV6_PKTINFO), which matters on multi-homed routers. If that address has gone, the send
  is retried once without it and the stale source is forgotten. A datagram's local address
  is only remembered once the core says it authenticated (`learn_sources` with
  Output.authenticated): a forged datagram, from a peer's address to another of ours,
  must not move where our replies leave from, and the table stays as small as the peers.
- Like the kernel (socket.c, send4), a remembered source is used only while the route to the
  endpoint from it leaves through the interface its datagram arrived on: when a better
  route through another interface appears, the source is forgotten and routing chooses, so
  replies follow the route. For IPv6 (send6) only the arrival interface is forgotten: the
  address stays, and the route chooses the interface. The route is asked (io/route.py,
  RTM_GETROUTE) when a source is learned and again when routes or addresses change (`recheck_sources`, driven by the
  loop's rtnetlink socket), never per datagram.
- Nested tunnels are not fragmented (io/nested.py): datagrams to an endpoint whose route
  leads into another tunnel interface are sent with fragmentation refused, so a routing
  loop through two tunnels ends.
- A full socket buffer drops (counted) rather than blocks.
- Socket buffers are capped at SOCKET_BUFFER bytes each, so memory stays bounded.
- UDP GSO: consecutive datagrams to one endpoint with one size (the last may be shorter)
  leave in one sendmsg with UDP_SEGMENT (the core's encrypted data already comes as such
  trains in one buffer); UDP GRO: one recvmsg may return several datagrams
  with their size in a cmsg. Either is switched off for good, on its own, the first time the
  kernel says it cannot do it (WGEDGE_OFFLOAD=0 starts with both off).
- Handshake messages get their own receive queue: each family's port is an SO_REUSEPORT pair
  of a data socket and a handshake socket, and a classic BPF program steers every datagram
  whose first byte is 4 (transport data) to the first and the rest to the second. A flood of
  initiations then fills only the handshake socket's buffer; the tunnel's packets, TCP's ACKs
  among them, keep theirs. The pair is checked free with a plain socket first (so a port in
  use is still an error); where the kernel refuses any of it (SO_ATTACH_REUSEPORT_CBPF
  unknown), one plain socket per family is used (WGEDGE_STEER=0 asks for that).

About 480 lines, over the 400 aimed for: one class owns the sockets and everything that goes
through them (steering, GSO/GRO, and the sticky sources with their route checks), because
the send and receive paths read and write the same source table on every batch. Only the
nested-tunnel send path and its route checks are apart (io/nested.py, a mixin of Udp).
"""

import array
import errno
import socket
import struct
import sys

from wgedge.io.nested import NestedSends, endpoint_address
from wgedge.io.route import RouteQuery

_LE = sys.byteorder == "little"

SOCKET_BUFFER = 1 << 20  # 1 MiB per direction per socket
HANDSHAKE_BUFFER = 1 << 18  # a handshake socket's receive buffer: a few hundred messages
SO_MARK = getattr(socket, "SO_MARK", 36)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000
_ANC_SIZE = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)
_GSO_OFF = (errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOPROTOOPT, errno.EMSGSIZE)
_MAX_DATAGRAM = 65535
STALE_SOURCE = (errno.EINVAL, errno.EADDRNOTAVAIL, errno.ENETUNREACH)
DROPPABLE = (errno.ENOBUFS, errno.ENOMEM, errno.EMSGSIZE, errno.EHOSTUNREACH,
              errno.ENETUNREACH, errno.ECONNREFUSED, errno.EPERM, errno.EACCES,
              errno.EADDRNOTAVAIL, errno.EINVAL, errno.EAFNOSUPPORT, errno.EHOSTDOWN,
              errno.ENETDOWN)


def _count(parts, size):
    """How many datagrams the kernel would have cut `parts` into."""
    return sum(-(-len(p) // size) for p in parts)


SO_ATTACH_REUSEPORT_CBPF = 51
# Classic BPF, run on the UDP payload: ldb [0]; jeq #4 ? ret 0 (data socket) : ret 1.
_STEER = ((0x30, 0, 0, 0), (0x15, 0, 1, 4), (0x06, 0, 0, 0), (0x06, 0, 0, 1))


def _attach_steering(sock):
    """Attach the message-type program to `sock`'s SO_REUSEPORT group; raises OSError when it
    cannot be done. struct sock_fprog points at the program: the address of an array's
    buffer (not ctypes, which the daemon would otherwise load for this alone, 0.4 MB of
    RSS); the kernel copies the program before setsockopt returns, while `code` lives."""
    code = array.array("B", b"".join(struct.pack("=HBBI", *i) for i in _STEER))
    fprog = struct.pack("HP", len(_STEER), code.buffer_info()[0])  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def _steered_pair(family, port, fwmark):
    """(data socket, handshake socket) sharing `port`, steered by message type; or None
    when this host cannot do it (the caller keeps its plain socket)."""
    data = hs = None
    try:
        data = _open(family, port, fwmark, reuse=True)
        hs = _open(family, port, fwmark, reuse=True)
        hs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, HANDSHAKE_BUFFER)
        _attach_steering(data)
        return data, hs
    except (OSError, AttributeError, struct.error):
        for x in (data, hs):
            if x is not None:
                x.close()
        return None


def _open(family, port, fwmark, reuse=False):
    s = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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


class Udp(NestedSends):
    STALE_SOURCE = STALE_SOURCE  # for io/nested.py's send path
    DROPPABLE = DROPPABLE

    def __init__(self, port=0, fwmark=0, offloads=None, steer=None):
        import os

        if offloads is None:
            offloads = os.environ.get("WGEDGE_OFFLOAD", "1") != "0"
        if steer is None:
            steer = os.environ.get("WGEDGE_STEER", "1") != "0"
        self.gso = offloads
        self.gro = offloads
        self.steer = steer
        self.sockets = []
        self.handshake_sockets = []  # the second socket of each steered pair
        self.sources = {}  # endpoint -> (level, type, pktinfo bytes) to send from
        # endpoint -> (the pktinfo cmsg it last authenticated with, whether its route allows
        # that source): what sources were made from, and what recheck_sources re-asks
        self.learned = {}
        self._arrived_at = {}  # endpoint -> pktinfo cmsg, for the last recv_batch only
        # endpoint -> the interface our datagrams to it leave through (0: none), for every
        # endpoint whose route was looked at: learned sources and peers' endpoints
        self.checked = {}
        self.nested = {}  # endpoint -> ifindex of the tunnel interface its route leads into
        self._kinds = {}  # ifindex -> interface kind, until routes change
        self._recheck = {}  # endpoints whose source or route waits for a (re-)check
        self.routes = RouteQuery()
        self.send_drops = 0
        self.on_too_big = None  # called with (endpoint, count) for nested datagrams dropped
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
        # The plain sockets proved the port free; swap each for a steered pair on it.
        handshake = []
        if self.steer:
            v4, v6 = self._steered(v4, v6, chosen, handshake)
        self.close()
        self.v4, self.v6 = v4, v6
        self.handshake_sockets = handshake
        self.sockets = [s for s in (v4, v6) if s is not None] + handshake
        if self.gro:
            for s in self.sockets:
                try:
                    s.setsockopt(SOL_UDP, UDP_GRO, 1)
                except OSError:
                    self.gro = False
        self.port = chosen
        self.sources = {}
        self.learned = {}
        self._recheck = dict.fromkeys(self.checked)  # their routes from no learned source
        return chosen

    def _steered(self, v4, v6, port, handshake):
        """Each plain socket swapped for its family's steered pair on `port` (the plain one
        again where steering cannot be had); handshake sockets go to `handshake`. On an error
        nothing new is left open."""
        got = []
        try:
            for plain in (v4, v6):
                if plain is None:
                    got.append(None)
                    continue
                family = plain.family
                plain.close()
                pair = _steered_pair(family, port, self.fwmark)
                if pair is None:
                    got.append(_open(family, port, self.fwmark))
                else:
                    got.append(pair[0])
                    handshake.append(pair[1])
        except OSError:
            for s in [x for x in got if x is not None] + handshake:
                s.close()
            for s in (v4, v6):
                if s is not None:
                    s.close()
            raise
        return got[0], got[1]

    def set_fwmark(self, mark):
        for s in self.sockets:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        self.fwmark = mark

    def recv_batch(self, sock, limit=64):
        """About `limit` datagrams from one socket, as trains for the core's receive_trains:
        [(buffer, size, endpoint)], one per read: a UDP GRO read is datagrams of `size` bytes
        back to back (the last may be shorter), any other read one datagram. Reading stops
        once `limit` datagrams are in hand; a GRO read last may carry the batch up to 63 past
        it. Without that bound, 64 reads of 64 KiB GRO buffers made batches of thousands of
        datagrams: milliseconds before the first TUN write, megabytes held at once."""
        batch = []
        count = 0
        recvmsg = sock.recvmsg
        sources = self._arrived_at = {}  # kept by learn_sources once authenticated
        for _ in range(limit):
            try:
                data, anc, _flags, addr = recvmsg(_MAX_DATAGRAM, _ANC_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue  # an ICMP error queued on the socket: not ours to act on
                raise
            gso_size = 0
            for level, ctype, cdata in anc:
                if level == SOL_UDP and ctype == UDP_GRO:
                    gso_size = int.from_bytes(cdata[:4], "little" if _LE else "big")
                elif ctype == IP_PKTINFO or ctype == IPV6_PKTINFO:
                    sources[addr] = (level, ctype, cdata)  # made into a source if it authenticates
            n = len(data)
            # A view: the core slices each message's ciphertext out of it without a copy.
            if gso_size and n > gso_size:
                batch.append((memoryview(data), gso_size, addr))
                count += -(-n // gso_size)
            else:
                batch.append((memoryview(data), n or 1, addr))
                count += 1
            if count >= limit:
                break
        return batch

    def _socket_for(self, endpoint):
        if len(endpoint) == 2:
            return self.v4
        return self.v6

    def send_batch(self, datagrams):
        """Send [(data, endpoint)]; failures the network causes are counted, not raised."""
        if not self.gso:
            for data, endpoint in datagrams:
                self._send_one(data, endpoint)
            return
        i, n = 0, len(datagrams)
        while i < n:
            data, endpoint = datagrams[i]
            size = len(data)
            j = i + 1
            total = size
            # A GSO run: same endpoint, same size, the last one may be shorter.
            while (j < n and j - i < GSO_MAX_SEGMENTS and datagrams[j][1] == endpoint
                   and total + size <= GSO_MAX_BYTES):
                dj = len(datagrams[j][0])
                if dj > size:
                    break
                total += dj
                j += 1
                if dj < size:
                    break
            if j - i == 1:
                self._send_one(data, endpoint)
            else:
                self._send_gso([d for d, _ in datagrams[i:j]], size, endpoint)
            i = j

    def send_trains(self, trains):
        """Send [(buffer, size, endpoint)] (core.device.Output.trains): datagrams of `size`
        bytes back to back, the last may be shorter. With GSO a train leaves in as few
        sendmsg calls as the segment limits allow, each one iovec long: no per-datagram
        object at all."""
        for buf, size, endpoint in trains:
            n = len(buf)
            if n <= size:
                self._send_one(buf, endpoint)
                continue
            if self.gso:
                step = min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // size) * size
                if step > size:
                    for off in range(0, n, step):
                        part = buf[off:off + step]
                        if len(part) > size:
                            self._send_gso([part], size, endpoint)
                        else:
                            self._send_one(part, endpoint)
                    continue
            for off in range(0, n, size):
                self._send_one(buf[off:off + size], endpoint)

    def _send_gso(self, parts, size, endpoint):
        """One sendmsg with UDP_SEGMENT: `parts` are the iovecs (whole datagrams, or one
        train slice) that the kernel cuts into `size`-byte datagrams."""
        sock = self._socket_for(endpoint)
        if sock is None:
            self.send_drops += _count(parts, size)
            return
        anc = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))]
        src = self.sources.get(endpoint)
        if src is not None:
            anc.append(src)
        try:
            # Views into one buffer, one iovec each: no joined copy.
            sock.sendmsg(parts, anc, 0, endpoint)
            return
        except BlockingIOError:
            self.send_drops += _count(parts, size)
            return
        except OSError as exc:
            if exc.errno not in _GSO_OFF and exc.errno not in STALE_SOURCE:
                if exc.errno in DROPPABLE:
                    self.send_drops += _count(parts, size)
                    return
                raise
            if exc.errno in _GSO_OFF and src is None:
                self.gso = False  # this kernel or route cannot segment: never again
        for p in parts:
            for off in range(0, len(p), size):
                self._send_one(p[off:off + size], endpoint)

    def _send_one(self, data, endpoint):
        sock = self._socket_for(endpoint)
        if sock is None:
            self.send_drops += 1
            return
        src = self.sources.get(endpoint)
        try:
            if src is None:
                sock.sendto(data, endpoint)
            else:
                sock.sendmsg([data], [src], 0, endpoint)
        except BlockingIOError:
            self.send_drops += 1
        except OSError as exc:
            if src is not None and exc.errno in STALE_SOURCE:
                del self.sources[endpoint]  # that local address went away: let routing choose
                try:
                    sock.sendto(data, endpoint)
                    return
                except OSError:
                    pass
            if exc.errno in DROPPABLE:
                self.send_drops += 1
            else:
                raise

    def learn_sources(self, endpoints, live_endpoints=None):
        """Remember, for each endpoint that authenticated in the last batch, the local address
        its datagram arrived at, as the source for our replies, if the route to the endpoint
        from it leaves through the interface it arrived on (one route request when that
        address or interface is new for the endpoint; nothing when it is the same).
        `live_endpoints()` gives the peers' endpoints; when the table grows past twice their
        number (peers roamed), it is cut back to them."""
        arrived = self._arrived_at
        learned = self.learned
        for endpoint in endpoints:
            got = arrived.get(endpoint)
            if got is not None:
                known = learned.get(endpoint)
                if known is None or known[0] != got:
                    self._judge(endpoint, got)
        if live_endpoints is not None and len(self.checked) > 64:
            live = live_endpoints()
            if len(self.checked) > 2 * len(live) + 64:
                self._keep_only(live)

    def _keep_only(self, live):
        """Forget what was learned of endpoints no peer has any more."""
        for name in ("sources", "learned", "checked", "nested"):
            table = getattr(self, name)
            setattr(self, name, {e: table[e] for e in live if e in table})
        self._switch_send_path()

    def watch_endpoints(self, endpoints):
        """The peers' endpoints after a configuration change: those whose route was never
        looked at wait for it (`recheck_sources`, the loop's next turn); the table is cut
        back to them when it has grown past twice their number."""
        if len(self.checked) > 2 * len(endpoints) + 64:
            self._keep_only(endpoints)
        checked = self.checked
        for endpoint in endpoints:
            if endpoint not in checked:
                self._recheck[endpoint] = True

    def _judge(self, endpoint, got):
        """Record pktinfo cmsg `got` for `endpoint`; send from its address only if the route
        from it leaves through the interface it arrived on (kernel socket.c, send4)."""
        level, ctype, cdata = got
        if ctype == IP_PKTINFO and level == socket.IPPROTO_IP:
            # struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}: answer from
            # the address the datagram was sent to (addr).
            family, local, ifindex = socket.AF_INET, cdata[8:12], struct.unpack_from("=i",
                                                                                   cdata)[0]
            anc = (level, ctype, struct.pack("=i4s4s", 0, local, b"\0" * 4))
        elif ctype == IPV6_PKTINFO and level == socket.IPPROTO_IPV6:
            # struct in6_pktinfo {in6_addr addr; int ifindex}
            family, local, ifindex = socket.AF_INET6, cdata[:16], struct.unpack_from("=i",
                                                                                   cdata, 16)[0]
            anc = (level, ctype, bytes(cdata[:20]))
        else:
            return
        usable = True
        remote = oif = None
        if ifindex > 0 and not (family == socket.AF_INET6 and local[:2] == b"\xfe\x80"):
            remote = endpoint_address(family, endpoint)
            if remote is not None:
                oif = self.routes.output_ifindex(family, remote, local, self.fwmark)
                usable = oif is None or oif == ifindex  # None: the kernel could not be asked
        self.learned[endpoint] = (got, usable)
        if usable:
            self.sources[endpoint] = anc
        elif family == socket.AF_INET6:
            # The kernel's send6 keeps an IPv6 source for as long as it is ours and lets the
            # route choose the interface: the address without the arrival ifindex.
            self.sources[endpoint] = (level, ctype, bytes(cdata[:16]) + b"\0\0\0\0")
        else:
            self.sources.pop(endpoint, None)
            oif = None  # sent from the route's own choice: asked below
        if oif is None or remote is None:
            self._check_route(endpoint)
        else:
            self._record_route(endpoint, oif)

    def routes_changed(self):
        """Routes or addresses changed (io/route.py): every remembered source and every
        looked-at route is asked again, `recheck_sources` at a time."""
        self._recheck = dict.fromkeys(self.checked)
        self._recheck.update(dict.fromkeys(self.learned))
        self._kinds = {}  # an index may now name another interface

    @property
    def recheck_pending(self):
        return bool(self._recheck)

    @property
    def recheck_cost(self):
        """Route lookups a re-check of everything costs (about one per endpoint)."""
        return len(self.checked)

    def recheck_sources(self, limit=256):
        """Re-judge up to `limit` remembered sources and endpoint routes; True while more
        wait (the loop calls again on its next turn, so a large table costs a bounded amount
        per wake-up)."""
        pending = self._recheck
        learned = self.learned
        for _ in range(min(limit, len(pending))):
            endpoint = pending.popitem()[0]
            known = learned.get(endpoint)
            if known is not None:
                self._judge(endpoint, known[0])
            else:
                self._check_route(endpoint)
        return bool(pending)

    def close(self):
        for s in self.sockets:
            s.close()
        self.sockets = []
        self.handshake_sockets = []
        self.v4 = self.v6 = None
        self.routes.close()
