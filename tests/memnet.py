"""In-memory fakes for core tests: a hand-stepped clock, a seeded random source, IP packets,
and a network that carries datagrams between devices with no sockets.

Shared by every core test (never copied per file).
"""

import hashlib
import struct

from wgedge import crypto as crypto_mod
from wgedge.core.device import Device
from wgedge.core.ipaddr import parse_cidr, parse_ip


class SeededRng:
    """Deterministic `rng(n)`: SHA-256 in counter mode over a seed."""

    def __init__(self, seed):
        self.seed = seed if isinstance(seed, bytes) else str(seed).encode()
        self.counter = 0
        self.buf = b""

    def __call__(self, n):
        while len(self.buf) < n:
            self.buf += hashlib.sha256(self.seed + struct.pack("<Q", self.counter)).digest()
            self.counter += 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def ipv4_packet(src, dst, payload=b"", proto=17):
    total = 20 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, proto, 0,
                         parse_ip(src), parse_ip(dst))
    return header + payload


def ipv6_packet(src, dst, payload=b"", next_header=17):
    header = struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64,
                         parse_ip(src), parse_ip(dst))
    return header + payload


class Node:
    def __init__(self, name, endpoint, crypto, seed):
        self.name = name
        self.endpoint = endpoint
        self.rng = SeededRng(seed)
        self.private = self.rng(32)
        self.device = Device(crypto, self.rng, self.private)
        self.tun = []  # packets the device delivered to its TUN
        self.sent = []  # every (datagram, endpoint) it emitted
        self.events = []  # every Output.events entry its device reported

    @property
    def public(self):
        return self.device.public_key

    def peer_with(self, other, allowed, endpoint=True, psk=None, keepalive=0):
        peer = self.device.add_peer(other.public)
        for cidr in allowed:
            addr, bits = parse_cidr(cidr)
            self.device.allowed_ips.insert(addr, bits, peer)
        if endpoint:
            peer.endpoint = other.endpoint
        if psk:
            peer.set_preshared_key(psk)
        if keepalive:
            peer.timers.persistent_keepalive_interval = keepalive
        return peer


class Net:
    """Carries datagrams between nodes; `drop` decides per datagram whether it is lost."""

    def __init__(self, crypto=None, now=1000.0):
        self.crypto = crypto or crypto_mod.load("fast")
        self.now = now
        self.nodes = {}
        self.queue = []  # [(dst_endpoint, datagram, src_endpoint)]
        self.drop = None
        self.delivered = 0
        self.as_views = False  # deliver every datagram as a memoryview, as UDP GRO splits do

    def node(self, name, host, port=51820):
        n = Node(name, (host, port), self.crypto, name)
        n.device.wall_offset = 1.7e9
        self.nodes[n.endpoint] = n
        return n

    def _collect(self, node, out):
        node.tun.extend(out.tun)
        node.events.extend(out.events)
        for datagram, dst in out.datagrams():
            node.sent.append((datagram, dst))
            if self.drop is not None and self.drop(node, datagram, dst):
                continue
            self.queue.append((dst, datagram, node.endpoint))
        return out

    def send(self, node, packets):
        return self._collect(node, node.device.send_packets(packets, self.now))

    def inject(self, node, datagram, src):
        return self._collect(node, node.device.receive_datagrams([(datagram, src)], self.now))

    def pump(self, limit=1000):
        """Deliver queued datagrams (and what they cause) until the network is quiet."""
        for _ in range(limit):
            if not self.queue:
                return
            dst, datagram, src = self.queue.pop(0)
            node = self.nodes.get(dst)
            if node is None:
                continue
            self.delivered += 1
            if self.as_views:
                datagram = memoryview(bytes(datagram))
            self._collect(node, node.device.receive_datagrams([(datagram, src)], self.now))
        raise AssertionError("network did not settle")

    def pair(self, v6=False, psk_a=None, psk_b=None, endpoint_b=True):
        """alice (192.0.2.1) and bob (192.0.2.2), peers of each other, routing 10.0.0.1/32
        and 10.0.0.2/32 (and fd00::1, fd00::2 with `v6`), no session yet: the usual start of
        a core test. With endpoint_b False, bob does not know alice's endpoint."""
        a = self.node("alice", "192.0.2.1")
        b = self.node("bob", "192.0.2.2")
        a.peer_with(b, ["10.0.0.2/32"] + (["fd00::2/128"] if v6 else []), psk=psk_a)
        b.peer_with(a, ["10.0.0.1/32"] + (["fd00::1/128"] if v6 else []), psk=psk_b,
                    endpoint=endpoint_b)
        return a, b

    def advance(self, seconds, step=None):
        """Move time forward, firing every timer that falls due on the way, in order."""
        end = self.now + seconds
        while True:
            due = [(n.device.get_timer(), n) for n in self.nodes.values()]
            due = [(d, n) for d, n in due if d is not None and d <= end]
            if not due:
                break
            d, n = min(due, key=lambda x: x[0])
            self.now = max(self.now, d)
            self._collect(n, n.device.handle_timer(self.now))
            self.pump()
        self.now = end


def as_trains(batch):
    """Group consecutive [(datagram, endpoint)] as a UDP GRO read would: one endpoint, equal
    sizes, only the last of a train shorter. An empty datagram is a train of its own: nothing
    can join it (a train's size is its first datagram's) and it cannot join one (it would
    vanish)."""
    trains = []
    for data, endpoint in batch:
        if trains:
            buf, size, ep, closed = trains[-1]
            if not closed and ep == endpoint and 0 < len(data) <= size:
                trains[-1] = (buf + data, size, ep, len(data) < size)
                continue
        trains.append((bytes(data), len(data) or 1, endpoint, not data))
    return [(memoryview(buf), size, ep) for buf, size, ep, _ in trains]
