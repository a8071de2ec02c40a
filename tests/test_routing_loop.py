"""Device.send_packets against routing loops, without sockets: our own datagram to a peer's
endpoint, routed back into the tunnel to that same peer, is dropped (counted), while other
traffic to that address, and onion routing (our datagram for one peer's endpoint tunnelled
through another peer), still goes through. tests/test_kernel_parity.py checks the same
with the kernel's routing."""

import os
import struct

from wgedge import crypto
from wgedge.core import consts as C
from wgedge.core.device import Device
from wgedge.core.ipaddr import parse_cidr, parse_ip


def ipv4(src, dst, payload):
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 7, 0, 64, 17, 0,
                       parse_ip(src), parse_ip(dst)) + payload


def ipv6(dst, payload):
    return struct.pack(">IHBB16s16s", 0x60000000, len(payload), 17, 64, parse_ip("fd09::1"),
                       parse_ip(dst)) + payload


def udp(sport, dport, data):
    return struct.pack(">HHHH", sport, dport, 8 + len(data), 0) + data


def _device():
    d = Device(crypto.load("fast"), os.urandom, os.urandom(32))
    d.listen_port = 51820
    return d


def test_own_datagram_routed_back_to_its_peer_is_dropped():
    d = _device()
    loop_peer = d.add_peer(os.urandom(32))
    other = d.add_peer(os.urandom(32))
    loop_peer.endpoint = ("10.9.0.2", 51000)
    other.endpoint = ("192.0.2.7", 51820)
    d.allowed_ips.insert(*parse_cidr("10.9.0.0/24"), loop_peer)  # its endpoint is inside
    d.allowed_ips.insert(*parse_cidr("10.8.0.0/24"), other)
    ours = ipv4("10.9.0.1", "10.9.0.2", udp(51820, 51000, b"\x04" + bytes(47)))
    out = d.send_packets([ours] * 3, 1.0)
    assert out.dropped == [C.DROP_ROUTING_LOOP] * 3 and not out.udp and not out.trains
    assert d.drops[C.DROP_ROUTING_LOOP] == 3
    assert not loop_peer.staged  # nothing waits for a handshake either
    # someone else's datagram to the same endpoint (another source port) is tunnelled
    theirs = ipv4("10.9.0.1", "10.9.0.2", udp(40000, 51000, b"x" * 20))
    out = d.send_packets([theirs], 1.0)
    assert C.DROP_ROUTING_LOOP not in out.dropped and loop_peer.staged == [theirs]
    # onion routing: our datagram to one peer's endpoint tunnelled through another peer
    other.endpoint = ("10.8.0.5", 7)
    onion = ipv4("10.9.0.1", "10.8.0.5", udp(51820, 7, b"\x01" + bytes(147)))
    out = d.send_packets([onion], 1.0)
    assert C.DROP_ROUTING_LOOP in out.dropped  # `other`'s own endpoint: a loop
    other.endpoint = ("192.0.2.7", 51820)
    loop_peer.endpoint = ("10.8.0.5", 7)  # loop_peer's endpoint, reached through `other`
    out = d.send_packets([onion], 1.0)
    assert C.DROP_ROUTING_LOOP not in out.dropped and onion in other.staged


def test_own_ipv6_datagram_routed_back_is_dropped():
    d = _device()
    p = d.add_peer(os.urandom(32))
    p.endpoint = ("fd09::2", 51000, 0, 0)
    d.allowed_ips.insert(*parse_cidr("fd09::/64"), p)
    ours = ipv6("fd09::2", udp(51820, 51000, b"\x04" + bytes(47)))
    assert d.send_packets([ours], 1.0).dropped == [C.DROP_ROUTING_LOOP]
