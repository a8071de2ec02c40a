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
    assert route._parse_reply(msg, 7) == 5
    assert route._parse_reply(msg, 8) is False
    err = struct.pack("=IHHIIi", 20, route.NLMSG_ERROR, 0, 7, 0, -22)
    assert route._parse_reply(err, 7) == 0
    assert route._parse_reply(b"\x03\x00", 7) is False


class FakeRoutes:
    """The kernel's route answers, as {(dst, src): ifindex}; counts the questions."""

    def __init__(self, table):
        self.table = table
        self.asked = 0

    def output_ifindex(self, family, dst, src, mark=0):
        self.asked += 1
        return self.table.get((socket.inet_ntoa(dst), socket.inet_ntoa(src)), 0)

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
