"""A long life compressed: two engines exchanging traffic both ways through hundreds of rekeys
with an accelerated clock. Nothing may leak: keypairs, indices, timer-heap entries, staged
packets, memory."""

import gc
import os
import tracemalloc

from tests.memnet import Net, ipv4_packet
from wgedge.core import consts as C


def run(net, a, b, seconds, step=2.0):
    sent = delivered = 0
    t = 0.0
    while t < seconds:
        net.advance(step)
        t += step
        for src, dst, s, d in ((a, b, "10.0.0.1", "10.0.0.2"), (b, a, "10.0.0.2", "10.0.0.1")):
            before = len(dst.tun)
            net.send(src, [ipv4_packet(s, d, b"soak")])
            net.pump()
            sent += 1
            delivered += len(dst.tun) - before
        a.tun.clear()
        b.tun.clear()
        a.sent.clear()
        b.sent.clear()
    return sent, delivered


def check_bounded(node, other):
    dev = node.device
    peer = dev.peers[other.public]
    assert len(dev.indices.keypairs) <= 3
    assert len(dev.indices.handshakes) <= 1
    assert len(dev.schedule) <= 64, len(dev.schedule)
    assert len(peer.staged) == 0
    assert set(dev.indices.keypairs.values()) <= set(peer.keypairs.all())


HOURS = float(os.environ.get("WGEDGE_SOAK_HOURS", "6"))  # `make soak`: 72 simulated hours


def test_simulated_hours_of_rekeys_leak_nothing():
    net = Net()
    a, b = net.pair()
    run(net, a, b, 600)  # warm up: first rekeys, caches, heap
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    first_kp = a.device.peers[b.public].keypairs.current
    sent, delivered = run(net, a, b, HOURS * 3600)
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
    tracemalloc.stop()
    rekeys = HOURS * 3600 / C.REKEY_AFTER_TIME
    assert rekeys >= 150
    assert a.device.peers[b.public].keypairs.current is not first_kp
    assert delivered == sent, (sent, delivered)  # nothing lost across the rekeys
    for node, other in ((a, b), (b, a)):
        check_bounded(node, other)
    assert grown < 200_000, "memory grew by %d bytes over %g simulated hours" % (grown, HOURS)
