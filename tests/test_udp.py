"""The UDP layer's batching, on loopback sockets (no namespaces needed)."""

import errno
import os
import socket
import struct
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wgedge.io.udp import GSO_MAX_BYTES, GSO_MAX_SEGMENTS, SOL_UDP, UDP_SEGMENT, Udp


def cut(trains):
    """recv_batch's trains as [(datagram, endpoint)]."""
    return [(bytes(buf[o:o + size]), ep) for buf, size, ep in trains
            for o in range(0, len(buf) or 1, size)]


def test_recv_batch_stops_at_the_limit_and_keeps_order(udp):
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(150):
            sender.sendto(b"\x04" + struct.pack("!I", i) + b"x" * 99, ("127.0.0.1", udp.port))
        got = []
        sizes = []
        while True:
            batch = cut(udp.recv_batch(udp.v4, 64))
            if not batch:
                break
            sizes.append(len(batch))
            got.extend(struct.unpack("!I", bytes(d[1:5]))[0] for d, _ in batch)
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


def test_handshake_messages_have_their_own_queue(udp):
    """Data messages (type 4) reach the data socket, everything else the handshake socket of
    the same port: a flood of initiations fills only the latter's buffer."""
    if os.environ.get("WGEDGE_STEER") == "0":
        pytest.skip("steering turned off (WGEDGE_STEER=0)")
    # Linux (every machine these tests run on) must get the pair: a silent
    # fallback to one socket would otherwise pass unnoticed.
    assert len(udp.handshake_sockets) == len(udp.sockets) // 2
    rx = {s: [] for s in udp.sockets}
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(40):
            kind = (1, 2, 3, 4, 4)[i % 5]
            sender.sendto(bytes([kind, 0, 0, 0, i]) + bytes(60), ("127.0.0.1", udp.port))
        for _ in range(50):
            for s in udp.sockets:
                rx[s] += [d[:5] for d, _ in cut(udp.recv_batch(s, 64))]
            if sum(map(len, rx.values())) == 40:
                break
            time.sleep(0.01)
        assert [d[4] for d in rx[udp.v4]] == [i for i in range(40) if i % 5 >= 3]
        hs = udp.handshake_sockets[0]
        assert [d[4] for d in rx[hs]] == [i for i in range(40) if i % 5 < 3]
    finally:
        sender.close()
    # A second daemon cannot take the port, steering or not.
    with pytest.raises(OSError):
        Udp(udp.port)


def test_plain_sockets_without_steering():
    u = Udp(0, steer=False)
    try:
        assert u.handshake_sockets == [] and len(u.sockets) in (1, 2)
    finally:
        u.close()


def test_recv_batch_bounds_coalesced_reads(udp):
    """With UDP GRO one read can carry dozens of datagrams (loopback hands a GSO send to a
    GRO socket whole): the batch stops after the read that reaches the limit."""
    if os.environ.get("WGEDGE_OFFLOAD") == "0":
        pytest.skip("offloads turned off (WGEDGE_OFFLOAD=0)")
    assert udp.gro  # the kernel here has UDP_GRO: losing it silently must fail
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for burst in range(4):
            payload = b"".join(b"\x04" + struct.pack("!I", burst * 40 + i) + b"y" * 95
                               for i in range(40))
            sender.sendmsg([payload], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", 100))], 0,
                           ("127.0.0.1", udp.port))
        first = cut(udp.recv_batch(udp.v4, 64))
        rest = cut(udp.recv_batch(udp.v4, 64))
        order = [struct.unpack("!I", bytes(d[1:5]))[0] for d, _ in first + rest]
        assert len(first) == 80 and len(rest) == 80  # two 40-datagram reads each
        assert order == list(range(160))
        assert all(len(d) == 100 for d, _ in first + rest)
    finally:
        sender.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1452, 1452, 1452, 92, 32, 9000]),
                          st.sampled_from([0, 0, 0, 1])), min_size=0, max_size=150))
@example([(1452, 0)] * 64 + [(92, 0)])  # one peer's full batch: split by bytes, not count
@example([(9000, 0)] * 10)  # jumbo: GSO_MAX_BYTES fits 7
def test_send_batch_groups_only_what_gso_allows(items):
    """Whatever the batch, datagrams leave in order, and each GSO send holds one endpoint,
    equal sizes but a shorter last one, at most GSO_MAX_SEGMENTS and GSO_MAX_BYTES."""
    u = Udp.__new__(Udp)
    u.gso = True
    sent = []

    def gso(parts, size, endpoint):
        assert 1 < len(parts) <= GSO_MAX_SEGMENTS and sum(map(len, parts)) <= GSO_MAX_BYTES
        assert all(len(p) == size for p in parts[:-1]) and len(parts[-1]) <= size
        sent.extend((bytes(p), endpoint) for p in parts)

    u._send_gso = gso
    u._send_one = lambda data, endpoint: sent.append((bytes(data), endpoint))
    endpoints = [("10.0.0.2", 51820), ("10.0.0.3", 51820)]
    batch = [(bytes([i % 256]) * size, endpoints[e]) for i, (size, e) in enumerate(items)]
    u.send_batch(batch)
    assert sent == batch


def _train(sizes, first=0):
    """One buffer of datagrams with the given sizes, each filled with its own number."""
    return b"".join(bytes([(first + i) % 256]) * n for i, n in enumerate(sizes))


@pytest.mark.parametrize("gso", [True, False])
def test_trains_arrive_as_separate_datagrams(udp, gso):
    """A train (the core's encrypted batch: equal-sized datagrams back to back, the last may
    be shorter) leaves in GSO sends of at most GSO_MAX_SEGMENTS and arrives one datagram at a
    time, unchanged and in order; without GSO, datagram by datagram."""
    if gso and os.environ.get("WGEDGE_OFFLOAD") == "0":
        pytest.skip("offloads turned off (WGEDGE_OFFLOAD=0)")
    if gso:
        assert udp.gso  # the kernel here has UDP GSO: losing it silently must fail
    udp.gso = gso
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    rx.settimeout(2)
    try:
        dest = rx.getsockname()
        sizes = [[100] * 150 + [40], [100] * 3, [60], [300] * 2 + [1]]
        trains, expected, first = [], [], 0
        for s in sizes:
            trains.append((memoryview(bytearray(_train(s, first))), s[0], dest))
            expected += [bytes([(first + i) % 256]) * n for i, n in enumerate(s)]
            first += len(s)
        udp.send_trains(trains)
        got = [rx.recv(2048) for _ in expected]
        assert got == expected
        assert udp.send_drops == 0 and udp.gso == gso
    finally:
        rx.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 200), st.sampled_from([1452, 1056, 96, 32, 9000]),
                          st.integers(0, 1), st.sampled_from([0, 0, 1])), max_size=8))
@example([(64, 1452, 1, 0)])  # one peer's full batch: 44 datagrams per send, by bytes
def test_send_trains_cuts_only_what_gso_allows(shapes):
    """Each GSO send is one view of a train holding at most GSO_MAX_SEGMENTS datagrams and
    GSO_MAX_BYTES; everything leaves once, in order, to the train's endpoint."""
    u = Udp.__new__(Udp)
    u.gso = True
    sent = []

    def gso(parts, size, endpoint):
        assert len(parts) == 1
        n = len(parts[0])
        assert size < n <= GSO_MAX_BYTES and -(-n // size) <= GSO_MAX_SEGMENTS
        sent.extend((bytes(parts[0][o:o + size]), endpoint) for o in range(0, n, size))

    u._send_gso = gso
    u._send_one = lambda data, endpoint: sent.append((bytes(data), endpoint))
    endpoints = [("10.0.0.2", 51820), ("10.0.0.3", 51820)]
    trains, expected = [], []
    for count, size, short, e in shapes:
        sizes = [size] * count + ([size // 2] if short else [])
        buf = _train(sizes, len(expected))
        trains.append((memoryview(buf), size, endpoints[e]))
        off = 0
        for n in sizes:
            expected.append((buf[off:off + n], endpoints[e]))
            off += n
    u.send_trains(trains)
    assert sent == expected


class _NoGsoSocket:
    """A socket whose kernel refuses UDP_SEGMENT (EIO), as a route through a device without
    segmentation does; plain sends are recorded."""

    def __init__(self):
        self.sent = []

    def sendmsg(self, parts, anc, flags, endpoint):
        raise OSError(errno.EIO, "no GSO")

    def sendto(self, data, endpoint):
        self.sent.append(bytes(data))


def test_train_falls_back_to_single_datagrams_when_gso_fails():
    u = Udp.__new__(Udp)
    u.gso = True
    u.sources = {}
    u.send_drops = 0
    sock = _NoGsoSocket()
    u._socket_for = lambda endpoint: sock
    sizes = [200] * 5 + [7]
    u.send_trains([(memoryview(_train(sizes)), 200, ("10.0.0.2", 51820))])
    assert sock.sent == [bytes([i]) * n for i, n in enumerate(sizes)]
    assert u.gso is False and u.send_drops == 0


def test_reply_source_is_learned_only_for_authenticated_endpoints(udp):
    """A datagram's local address becomes the source of our replies only once the core says
    that endpoint authenticated: a forged one, from a peer's address to another local
    address of ours, must not move where replies leave from (issue 12)."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.bind(("127.0.0.1", 0))
        endpoint = peer.getsockname()
        peer.sendto(b"\x04" + bytes(40), ("127.0.0.1", udp.port))
        assert cut(udp.recv_batch(udp.v4, 8))[0][1] == endpoint
        udp.learn_sources([endpoint])  # authenticated: replies leave from 127.0.0.1
        assert udp.sources[endpoint][2][4:8] == socket.inet_aton("127.0.0.1")
        peer.sendto(b"\x04" + bytes(40), ("127.0.0.2", udp.port))  # forged: same source
        assert cut(udp.recv_batch(udp.v4, 8))[0][1] == endpoint
        udp.learn_sources([])  # it did not authenticate
        assert udp.sources[endpoint][2][4:8] == socket.inet_aton("127.0.0.1")
        udp.send_batch([(b"reply", endpoint)])
        assert peer.recvfrom(100) == (b"reply", ("127.0.0.1", udp.port))
        # a genuine datagram to the other address moves it (the peer roamed to it)
        peer.sendto(b"\x04" + bytes(40), ("127.0.0.2", udp.port))
        udp.recv_batch(udp.v4, 8)
        udp.learn_sources([endpoint])
        udp.send_batch([(b"reply", endpoint)])
        assert peer.recvfrom(100) == (b"reply", ("127.0.0.2", udp.port))
    finally:
        peer.close()


def test_reply_sources_are_cut_back_to_the_peers_endpoints(udp):
    """Authenticated roaming adds entries; past twice the peers' count (+64) the table keeps
    only the peers' current endpoints."""
    udp._arrived_at = {("10.0.0.%d" % (i % 250), 1000 + i): (0, 8, bytes(12))
                       for i in range(300)}
    live = {("10.0.0.1", 1001), ("10.0.0.7", 1007)}
    udp.learn_sources(list(udp._arrived_at), lambda: live)
    assert set(udp.sources) == live
