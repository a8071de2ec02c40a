"""The nested-tunnel send path of io/udp.py's Udp, and the route checks that switch it on.

Nested tunnels are not fragmented. When the route to a peer's endpoint leads into a tunnel
interface (a TUN device such as another wgedge's or wireguard-go's, a kernel WireGuard,
GRE, ...; io/route.py asks the kernel when the endpoint is configured, learned, or
routes change, never per datagram), our datagrams to it are sent with fragmentation
refused (IP_MTU_DISCOVER / IPV6_MTU_DISCOVER = PMTUDISC_PROBE around the send), and one
that does not fit that interface's MTU is dropped and counted (`on_too_big`). That is
what ends a routing loop through two tunnels, each daemon's endpoint routed into the
other's interface (WireGuard's selftest builds one across namespaces): no daemon can tell
the other's datagrams from any others, but each pass wraps the packet once more, so it
outgrows the MTU within a few dozen passes, where fragments would loop on, each piece
growing and splitting again (gigabytes a minute). The kernel's WireGuard lets such a
loop end the same way, where its packets outgrow the MTU. Only the send functions of
the nested path check endpoints (`_send_batch_nested`, swapped in while some endpoint is
nested): the common path does no more per datagram than before.
"""

import errno
import socket

IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
PMTUDISC_PROBE = 3  # IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE: never fragment, up to the
#                     interface MTU (a learned path MTU does not matter here)
# Interface kinds (IFLA_INFO_KIND) that encapsulate what is routed into them: a datagram of
# ours routed into one is nested in another tunnel. "tun" covers every TUN/TAP daemon.
TUNNEL_KINDS = frozenset(("tun", "wireguard", "ipip", "sit", "gre", "gretap", "ip6gre",
                          "ip6gretap", "ip6tnl", "vti", "vti6", "xfrm", "vxlan", "geneve"))


def endpoint_address(family, endpoint):
    """The address bytes of an endpoint's host, or None when it is not an IP address."""
    try:
        return socket.inet_pton(family, endpoint[0].split("%")[0])
    except (OSError, ValueError):
        return None


class NestedSends:
    """Mixed into io/udp.py's Udp (its sockets, `sources`, `routes`, `checked`, `nested`,
    `_kinds`, `send_drops`, `on_too_big`, and its errno classes STALE_SOURCE, DROPPABLE)."""

    def _check_route(self, endpoint):
        """Ask which interface our datagrams to `endpoint` leave through (from the source
        we send them from, if any) and whether it is a tunnel."""
        family = socket.AF_INET if len(endpoint) == 2 else socket.AF_INET6
        remote = endpoint_address(family, endpoint)
        if remote is None or (family == socket.AF_INET6 and remote[:2] == b"\xfe\x80"):
            self._record_route(endpoint, 0)  # a name, or link-local: left to the kernel
            return
        src = self.sources.get(endpoint)
        local = None if src is None else (src[2][4:8] if family == socket.AF_INET
                                          else src[2][:16])
        oif = self.routes.output_ifindex(family, remote, local, self.fwmark)
        if oif is not None:
            self._record_route(endpoint, oif)

    def _record_route(self, endpoint, oif):
        self.checked[endpoint] = oif
        kind = self._kinds.get(oif) if oif else ""
        if kind is None:
            kind = self._kinds[oif] = self.routes.link_kind(oif) or ""
        if kind in TUNNEL_KINDS:
            if endpoint not in self.nested:
                self.nested[endpoint] = oif
                self._switch_send_path()
        elif self.nested.pop(endpoint, None) is not None:
            self._switch_send_path()

    def _switch_send_path(self):
        """While any endpoint is nested, sends go through the functions that look at each
        datagram's endpoint; otherwise through the plain ones (the class's), unchanged."""
        if self.nested:
            self.send_batch = self._send_batch_nested
            self.send_trains = self._send_trains_nested
        else:
            self.__dict__.pop("send_batch", None)
            self.__dict__.pop("send_trains", None)

    def _send_batch_nested(self, datagrams):
        nested = self.nested
        inner = [d for d in datagrams if d[1] in nested]
        if not inner:
            type(self).send_batch(self, datagrams)
            return
        if len(inner) < len(datagrams):
            type(self).send_batch(self, [d for d in datagrams if d[1] not in nested])
        self._send_unfragmented(inner)

    def _send_trains_nested(self, trains):
        nested = self.nested
        inner = [t for t in trains if t[2] in nested]
        if not inner:
            type(self).send_trains(self, trains)
            return
        if len(inner) < len(trains):
            type(self).send_trains(self, [t for t in trains if t[2] not in nested])
        self._send_unfragmented([(buf[off:off + size], endpoint) for buf, size, endpoint in inner
                                 for off in range(0, len(buf), size)])

    def _send_unfragmented(self, datagrams):
        """Send [(data, endpoint)] with fragmentation refused, one sendmsg each (no GSO: a
        segment over the MTU would make the kernel refuse the whole send); a datagram over
        the MTU of the interface it would enter is dropped and reported to `on_too_big`."""
        saved = {}
        too_big = {}
        try:
            for data, endpoint in datagrams:
                sock = self._socket_for(endpoint)
                if sock is None:
                    self.send_drops += 1
                    continue
                if sock not in saved:
                    level, opt = ((socket.IPPROTO_IP, IP_MTU_DISCOVER) if sock is self.v4
                                  else (socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER))
                    saved[sock] = (level, opt, sock.getsockopt(level, opt))
                    sock.setsockopt(level, opt, PMTUDISC_PROBE)
                src = self.sources.get(endpoint)
                try:
                    if src is None:
                        sock.sendto(data, endpoint)
                    else:
                        sock.sendmsg([data], [src], 0, endpoint)
                except BlockingIOError:
                    self.send_drops += 1
                except OSError as exc:
                    if exc.errno == errno.EMSGSIZE:
                        too_big[endpoint] = too_big.get(endpoint, 0) + 1
                    elif src is not None and exc.errno in self.STALE_SOURCE:
                        del self.sources[endpoint]  # that address went away: routing chooses
                        self.send_drops += 1
                    elif exc.errno in self.DROPPABLE:
                        self.send_drops += 1
                    else:
                        raise
        finally:
            for sock, (level, opt, value) in saved.items():
                sock.setsockopt(level, opt, value)
        if too_big and self.on_too_big is not None:
            for endpoint, n in too_big.items():
                self.on_too_big(endpoint, n)

