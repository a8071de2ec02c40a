"""io/route.py and the reply-source rule it serves in io/udp.py.

RTM_GETROUTE is asked of the real kernel on loopback (no namespace needed, nothing changed);
the rule "use a remembered source only while the route from it leaves through the interface
it arrived on" is checked with a stand-in for the kernel's answers. The whole (a better
route appears, the peer sees our new address) is in tests/test_kernel_parity.py."""

import socket
import struct

from wgedge.io import route
from wgedge.io.udp import IP_PKTINFO, IPV6_PKTINFO


def test_route_query_names_the_output_interface():
    q = route.RouteQuery()
    try:
        lo = socket.if_nametoindex("lo")
        here = socket.inet_aton("127.0.0.1")
        assert q.output_ifindex(socket.AF_INET, here, here) == lo
        assert q.output_ifindex(socket.AF_INET, socket.inet_aton("127.0.0.9"), here, 7) == lo
        # a source that is not one of ours: the kernel refuses, and the source is unusable
        assert q.output_ifindex(socket.AF_INET, here, socket.inet_aton("192.0.2.77")) == 0
        one = socket.inet_pton(socket.AF_INET6, "::1")
        assert q.output_ifindex(socket.AF_INET6, one, one) == lo
    finally:
        q.close()


def test_reply_is_parsed_only_for_its_own_request():
    attr = struct.pack("=HHI", 8, route.RTA_OIF, 5)
    msg = struct.pack("=IHHII", 16 + 12 + 8, route.RTM_NEWROUTE, 0, 7, 0) + bytes(12) + attr
    assert route._parse_reply(msg, 7, route._route_oif) == 5
    assert route._parse_reply(msg, 8, route._route_oif) is False
    err = struct.pack("=IHHIIi", 20, route.NLMSG_ERROR, 0, 7, 0, -22)
    assert route._parse_reply(err, 7, route._route_oif) == 0
    assert route._parse_reply(b"\x03\x00", 7, route._route_oif) is False


def test_link_kind_reads_the_nested_linkinfo():
    kind = struct.pack("=HH", 8, route.IFLA_INFO_KIND) + b"tun\0"
    info = struct.pack("=HH", 4 + len(kind), route.IFLA_LINKINFO | 0x8000) + kind  # NESTED
    mtu = struct.pack("=HHI", 8, 4, 1420)  # IFLA_MTU before it
    body = route._IFINFO.pack(0, 0, 9, 0, 0) + mtu + info
    msg = struct.pack("=IHHII", 16 + len(body), route.RTM_NEWLINK, 0, 3, 0) + body
    assert route._parse_reply(msg, 3, route._link_kind) == "tun"
    plain = route._IFINFO.pack(0, 0, 1, 0, 0) + mtu  # lo: no linkinfo
    msg = struct.pack("=IHHII", 16 + len(plain), route.RTM_NEWLINK, 0, 4, 0) + plain
    assert route._parse_reply(msg, 4, route._link_kind) == ""


def test_link_kind_of_loopback_is_plain():
    q = route.RouteQuery()
    try:
        assert q.link_kind(socket.if_nametoindex("lo")) == ""
        assert q.link_kind(0x7FFFFFF0) is None  # no such interface
        assert q.output_ifindex(socket.AF_INET, socket.inet_aton("127.0.0.9"), None) \
            == socket.if_nametoindex("lo")
    finally:
        q.close()


class FakeRoutes:
    """The kernel's route answers, as {(dst, src or None): ifindex}, and interface kinds
    {ifindex: kind}; counts the questions."""

    def __init__(self, table, kinds=None):
        self.table = table
        self.kinds = kinds or {}
        self.asked = 0
        self.kinds_asked = 0

    def output_ifindex(self, family, dst, src, mark=0):
        self.asked += 1
        key = (socket.inet_ntop(family, dst), src and socket.inet_ntop(family, src))
        return self.table.get(key, 0)

    def link_kind(self, ifindex):
        self.kinds_asked += 1
        return self.kinds.get(ifindex, "")

    def close(self):
        pass


def pktinfo(ifindex, local):
    return (socket.IPPROTO_IP, IP_PKTINFO,
            struct.pack("=i4s4s", ifindex, socket.inet_aton(local), socket.inet_aton(local)))


def test_source_is_used_only_while_its_route_leaves_where_it_arrived(udp):
    peer = ("10.80.0.2", 51820)
    udp.routes = routes = FakeRoutes({("10.80.0.2", "10.80.0.1"): 4})
    udp._arrived_at = {peer: pktinfo(4, "10.80.0.1")}
    udp.learn_sources([peer])
    assert udp.sources[peer][2][4:8] == socket.inet_aton("10.80.0.1")
    for _ in range(5):  # the same arrival again: nothing to ask
        udp.learn_sources([peer])
    assert routes.asked == 1
    # a better route through interface 5 appears; the loop says routes changed
    routes.table[("10.80.0.2", "10.80.0.1")] = 5
    udp.routes_changed()
    assert udp.recheck_pending
    assert udp.recheck_sources() is False
    assert peer not in udp.sources  # routing chooses: the better route's own address
    # the peer answers our new address, still arriving on interface 4: still not usable
    routes.table[("10.80.0.2", "10.80.0.3")] = 5
    udp._arrived_at = {peer: pktinfo(4, "10.80.0.3")}
    udp.learn_sources([peer])
    assert peer not in udp.sources
    # once it arrives on interface 5, it is
    udp._arrived_at = {peer: pktinfo(5, "10.80.0.3")}
    udp.learn_sources([peer])
    assert udp.sources[peer][2][4:8] == socket.inet_aton("10.80.0.3")


def test_recheck_is_bounded_per_call(udp):
    table = {}
    arrived = {}
    for i in range(600):
        peer = ("10.1.%d.%d" % (i // 250, i % 250), 1000 + i)
        table[(peer[0], "10.0.0.1")] = 3
        arrived[peer] = pktinfo(3, "10.0.0.1")
    udp.routes = routes = FakeRoutes(table)
    udp._arrived_at = arrived
    udp.learn_sources(list(arrived))
    assert len(udp.sources) == 600 and routes.asked == 600
    udp.routes_changed()
    calls = 0
    while udp.recheck_sources(256):
        calls += 1
    assert calls == 2 and routes.asked == 1200 and len(udp.sources) == 600


def test_ipv6_source_keeps_its_address_when_the_route_moves(udp):
    """As the kernel's send6: the address stays ours to send from; only the arrival
    interface, which pinned the datagram to it, is dropped."""
    peer = ("fd80::2", 51820, 0, 0)
    local = socket.inet_pton(socket.AF_INET6, "fd80::1")

    class Routes(FakeRoutes):
        def output_ifindex(self, family, dst, src, mark=0):
            self.asked += 1
            return self.table["oif"]

    udp.routes = routes = Routes({"oif": 4})
    udp._arrived_at = {peer: (socket.IPPROTO_IPV6, IPV6_PKTINFO, local + struct.pack("=i", 4))}
    udp.learn_sources([peer])
    assert udp.sources[peer][2] == local + struct.pack("=i", 4)
    routes.table["oif"] = 5
    udp.routes_changed()
    udp.recheck_sources()
    assert udp.sources[peer][2] == local + bytes(4)


def test_route_changes_are_paced_by_the_lookups_their_re_checks_cost():
    """With a router's few peers every change is re-checked at once, however many come in a
    row (an address, flushes, then a better route: what an administrator or WireGuard's
    selftest does within a second); a table of thousands waits for its lookup budget.
    Before, any change within a second of the last re-check waited."""
    mon = route.RouteMonitor.__new__(route.RouteMonitor)  # no socket: the pacing alone
    mon.changed, mon.credit, mon.stamp = False, route.QUERIES_PER_SECOND, None
    assert mon.next_deadline(3) is None and not mon.due(0.0, 3)
    t = 10.0
    for _ in range(50):  # three peers, fifty changes 10 ms apart: each followed at once
        mon.changed = True
        assert mon.next_deadline(3) <= t
        assert mon.due(t, 3)
        assert not mon.due(t, 3)  # once per change
        t += 0.01
    big = 20 * int(route.QUERIES_PER_SECOND)  # a hub's table: one re-check spends the budget
    mon.changed = True
    assert mon.due(t, big)
    mon.changed = True
    assert not mon.due(t + 1.0, big)
    deadline = mon.next_deadline(big)
    assert deadline > t + 19  # it waits for what its last re-check cost
    assert not mon.due(deadline - 0.05, big)
    assert mon.due(deadline, big)


def test_endpoint_routed_into_a_tunnel_is_nested_until_the_route_moves(udp):
    """A peer's endpoint whose route leads into a TUN device (another daemon's tunnel) is
    nested: the send functions that refuse fragmentation take over, and give way again when
    a route change takes the endpoint elsewhere. The route is asked once per endpoint, not
    per datagram."""
    from wgedge.io.udp import Udp

    peer, other = ("10.90.0.2", 7), ("192.0.2.9", 51820)
    udp.routes = routes = FakeRoutes({("10.90.0.2", None): 12, ("192.0.2.9", None): 2},
                                     {12: "tun", 2: "veth"})
    udp.watch_endpoints({peer, other})
    assert udp.recheck_pending and udp.recheck_sources() is False
    assert udp.nested == {peer: 12} and udp.checked == {peer: 12, other: 2}
    assert udp.send_batch.__func__ is Udp._send_batch_nested
    udp.watch_endpoints({peer, other})  # already looked at: nothing to ask
    assert not udp.recheck_pending and routes.asked == 2
    routes.table[("10.90.0.2", None)] = 3  # a route through a plain link appears
    udp.routes_changed()
    udp.recheck_sources()
    assert udp.nested == {} and "send_batch" not in vars(udp) and "send_trains" not in vars(udp)
    assert routes.kinds_asked == 4  # asked again after a change (an index may name another)
    # a learned source's route counts too: an arrival on the tunnel itself
    routes.table[("10.90.0.2", "10.90.0.1")] = 12
    udp._arrived_at = {peer: pktinfo(12, "10.90.0.1")}
    udp.learn_sources([peer])
    assert udp.nested == {peer: 12}
    # forgotten with the peer
    udp._keep_only({other})
    assert udp.nested == {} and peer not in udp.checked


def test_nested_datagrams_leave_unfragmentable_and_the_option_is_restored(udp):
    """Datagrams to a nested endpoint still arrive (here over loopback, well under its MTU),
    with the socket's fragmentation setting put back afterwards; other endpoints' datagrams
    in the same batch go the plain way."""
    import socket as s

    from wgedge.io.nested import IP_MTU_DISCOVER

    rx = s.socket(s.AF_INET, s.SOCK_DGRAM)
    rx2 = s.socket(s.AF_INET, s.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx2.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        rx2.settimeout(5)
        nested, plain = rx.getsockname(), rx2.getsockname()
        before = udp.v4.getsockopt(s.IPPROTO_IP, IP_MTU_DISCOVER)
        udp.nested[nested] = 99
        udp._switch_send_path()
        udp.send_batch([(b"n1", nested), (b"p1", plain), (b"n2", nested)])
        udp.send_trains([(b"abcdef", 3, nested), (b"xyz", 3, plain)])
        assert [rx.recv(64) for _ in range(4)] == [b"n1", b"n2", b"abc", b"def"]
        assert [rx2.recv(64) for _ in range(2)] == [b"p1", b"xyz"]
        assert udp.v4.getsockopt(s.IPPROTO_IP, IP_MTU_DISCOVER) == before
        assert udp.send_drops == 0
    finally:
        rx.close()
        rx2.close()
