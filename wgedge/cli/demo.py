"""An in-memory WireGuard session between two engines: no sockets, a hand-stepped clock.

Shows the sans-I/O core doing a real Noise_IKpsk2 handshake and moving packets both ways.
"""

import os
import struct

from wgedge.core.device import Device
from wgedge.core.ipaddr import parse_cidr, parse_ip

_NAMES = {1: "handshake initiation", 2: "handshake response", 3: "cookie reply",
          4: "transport data"}


def _ipv4(src, dst, payload):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 17, 0,
                       parse_ip(src), parse_ip(dst)) + payload


def run(backend, say=print):
    now = 100.0
    a = Device(backend, os.urandom, os.urandom(32))
    b = Device(backend, os.urandom, os.urandom(32))
    ep_a, ep_b = ("192.0.2.1", 51820), ("192.0.2.2", 51820)
    pa = a.add_peer(b.public_key)
    pb = b.add_peer(a.public_key)
    a.allowed_ips.insert(*parse_cidr("10.0.0.2/32"), pa)
    b.allowed_ips.insert(*parse_cidr("10.0.0.1/32"), pb)
    pa.endpoint = ep_b
    where = {ep_a: ("alice", a), ep_b: ("bob", b)}

    def carry(name, src_ep, out):
        delivered = list(out.tun)
        queue = [(d, dst, src_ep, name) for d, dst in out.datagrams()]
        while queue:
            d, dst, src, sender = queue.pop(0)
            to_name, dev = where[dst]
            say("  %-5s -> %-5s %4d bytes  %s" % (sender, to_name, len(d), _NAMES[d[0]]))
            res = dev.receive_datagrams([(d, src)], now)
            delivered += [(to_name, p) for p in res.tun]
            queue += [(x, y, dst, to_name) for x, y in res.datagrams()]
        return delivered

    say("backend: %s" % backend.describe())
    say("alice sends a packet to 10.0.0.2 (no session yet: it is staged, a handshake starts)")
    got = carry("alice", ep_a, a.send_packets([_ipv4("10.0.0.1", "10.0.0.2", b"hello bob")], now))
    say("  delivered to TUN: %r" % [(n, p[20:]) for n, p in got])
    say("bob answers over the new session")
    got = carry("bob", ep_b, b.send_packets([_ipv4("10.0.0.2", "10.0.0.1", b"hi alice")], now))
    say("  delivered to TUN: %r" % [(n, p[20:]) for n, p in got])
    ok = got and got[-1][1][20:] == b"hi alice"
    say("session: alice tx %d rx %d bytes, bob tx %d rx %d bytes; drops %r %r" % (
        pa.tx_bytes, pa.rx_bytes, pb.tx_bytes, pb.rx_bytes, a.drops, b.drops))
    return bool(ok)
