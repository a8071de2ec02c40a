"""The device's timer heap: one deadline per peer is live, stale entries are skipped, and the
heap stays O(peers) however often deadlines move (each handshake used to leave two stale
entries for 540 s: 60k after 30k handshakes)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.memnet import Net, SeededRng, ipv4_packet
from wgedge import crypto
from wgedge.core import consts as C
from wgedge.core import timers
from wgedge.core.device import Device, Output


def test_many_handshakes_leave_a_bounded_heap():
    net = Net()
    a, b = net.pair()
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2", b"x")])
    net.pump()
    peer = a.device.peers[b.public]
    for _ in range(600):  # a handshake every REKEY_TIMEOUT, much faster than entries expire
        net.now += C.REKEY_TIMEOUT + 0.01
        out = Output(a.device)
        peer.send_initiation(net.now, out)
        a.device.touch(peer)
        net._collect(a, out)
        net.pump()
        for node in (a, b):
            assert len(node.device.schedule) <= 2 * len(node.device.peers) + 32
    assert b.device.peers[a.public].last_handshake == net.now
    before = len(b.tun)
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2", b"after")])
    net.pump()
    assert len(b.tun) == before + 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 19), st.sampled_from(["arm", "disarm", "remove",
                                                               "fire"]),
                          st.integers(1, 5000)), max_size=400))
def test_the_heap_always_yields_the_earliest_live_deadline(ops):
    """Arm, disarm and remove peers' timers in any order and fire due ones: get_timer() is
    always the earliest live deadline, handle_timer fires exactly the due peers, and the heap
    stays bounded."""
    dev = Device(crypto.load("fast"), SeededRng("heap"), SeededRng("k")(32))
    peers = [dev.add_peer(SeededRng("p%d" % i)(32)) for i in range(20)]
    now = 100.0
    for i, op, ms in ops:
        p = peers[i]
        if op == "arm" and not p.removed:
            p.timers._mod(timers.SEND_KEEPALIVE, now + ms / 1000.0)
            dev.touch(p)
        elif op == "disarm":
            p.timers.stop_all()
            dev.touch(p)
        elif op == "remove":
            dev.remove_peer(p)
        else:
            now += ms / 1000.0
            due = {q for q in peers if not q.removed and q.timers.deadlines
                   and q.timers.next_deadline() <= now}
            fired = set()
            for q in due:  # record which peers fire: their keepalive finds no session
                q.endpoint = None
            before = {q: dict(q.timers.deadlines) for q in peers}
            dev.handle_timer(now)
            for q in peers:
                if before[q] != q.timers.deadlines:
                    fired.add(q)
            assert fired == due
        live = [q.timers.next_deadline() for q in peers
                if not q.removed and q.timers.deadlines]
        assert dev.get_timer() == (min(live) if live else None)
        assert len(dev.schedule) <= 2 * len(dev.peers) + 32


def test_many_due_timers_are_handled_in_bounded_calls():
    """A set enabling persistent keepalive for 1000 peers sends nothing during the set (it
    used to send every peer's first message in that one call); handle_timer then acts on at
    most MAX_TIMERS_PER_CALL peers per call, get_timer() staying due until all are done."""
    from wgedge.core import uapi

    dev = Device(crypto.load("fast"), SeededRng("many"), SeededRng("k")(32))
    lines = []
    for i in range(1000):
        lines += ["public_key=" + uapi.key_to_hex(dev.crypto.x25519_public(
                      dev.crypto.private_key(SeededRng("p%d" % i)(32)))),
                  "endpoint=10.1.%d.%d:51820" % (i >> 8, i & 255),
                  "persistent_keepalive_interval=25"]
    out = Output(dev)
    uapi.apply_set(dev, uapi.parse_set(lines), 100.0, out)
    assert out.datagrams() == []
    assert dev.get_timer() == 100.0
    sent, calls = set(), 0
    while dev.get_timer() is not None and dev.get_timer() <= 100.0:
        got = dev.handle_timer(100.0).datagrams()
        assert 0 < len(got) <= C.MAX_TIMERS_PER_CALL
        sent |= {endpoint for _, endpoint in got}
        calls += 1
    assert len(sent) == 1000 and calls == -(-1000 // C.MAX_TIMERS_PER_CALL)
