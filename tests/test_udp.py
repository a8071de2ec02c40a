"""The UDP layer's batching, on loopback sockets (no namespaces needed)."""

import socket
import struct

import pytest

from wgedge.io.udp import SOL_UDP, UDP_SEGMENT, Udp


@pytest.fixture
def udp():
    u = Udp(0)
    try:
        yield u
    finally:
        u.close()


def test_recv_batch_stops_at_the_limit_and_keeps_order(udp):
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(150):
            sender.sendto(struct.pack("!I", i) + b"x" * 100, ("127.0.0.1", udp.port))
        got = []
        sizes = []
        while True:
            batch = udp.recv_batch(udp.v4, 64)
            if not batch:
                break
            sizes.append(len(batch))
            got.extend(struct.unpack("!I", bytes(d[:4]))[0] for d, _ in batch)
        assert got == list(range(150))
        assert sizes == [64, 64, 22]
    finally:
        sender.close()


def test_gso_send_arrives_as_separate_datagrams(udp):
    """Datagrams of one size to one endpoint leave in one GSO sendmsg (as iovecs) and arrive
    one by one, unchanged."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    try:
        buf = bytearray(b"".join(bytes([i]) * 200 for i in range(10)))
        view = memoryview(buf)
        dest = rx.getsockname()
        udp.send_batch([(view[i * 200:(i + 1) * 200], dest) for i in range(10)])
        got = [rx.recv(2048) for _ in range(10)]
        assert got == [bytes([i]) * 200 for i in range(10)]
        assert udp.send_drops == 0
    finally:
        rx.close()


def test_recv_batch_bounds_coalesced_reads(udp):
    """With UDP GRO one read can carry dozens of datagrams (loopback hands a GSO send to a
    GRO socket whole): the batch stops after the read that reaches the limit."""
    if not udp.gro:
        pytest.skip("offloads turned off (WGEDGE_OFFLOAD=0)")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for burst in range(4):
            payload = b"".join(struct.pack("!I", burst * 40 + i) + b"y" * 96 for i in range(40))
            sender.sendmsg([payload], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", 100))], 0,
                           ("127.0.0.1", udp.port))
        first = udp.recv_batch(udp.v4, 64)
        rest = udp.recv_batch(udp.v4, 64)
        order = [struct.unpack("!I", bytes(d[:4]))[0] for d, _ in first + rest]
        assert len(first) == 80 and len(rest) == 80  # two 40-datagram reads each
        assert order == list(range(160))
        assert all(len(d) == 100 for d, _ in first + rest)
    finally:
        sender.close()
