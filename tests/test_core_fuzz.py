"""Random and mutated datagrams and TUN packets into an engine with a live session.

Nothing may raise, every refusal is counted under a known reason, and the session keeps
working afterwards.
"""

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.memnet import Net, as_trains, ipv4_packet
from wgedge.core import consts as C
from wgedge.core import wire

REASONS = {getattr(C, n) for n in dir(C) if n.startswith("DROP_")}


def established():
    net = Net()
    a, b = net.pair()
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2", b"hello")])
    net.pump()
    assert len(b.tun) == 1
    # Genuine messages of every kind to mutate.
    samples = [d for d, _ in a.sent] + [d for d, _ in b.sent]
    return net, a, b, samples


NET, ALICE, BOB, SAMPLES = established()


def mutate(data, flips, cut):
    d = bytearray(data)
    for pos, val in flips:
        if d:
            d[pos % len(d)] = val
    if cut is not None and d:
        d = d[: cut % (len(d) + 1)]
    return bytes(d)


def check_drops(out, before):
    assert set(out.dropped) <= REASONS
    total = sum(BOB.device.drops.values()) - before
    assert total == len(out.dropped)


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.binary(max_size=200),
    st.tuples(st.integers(1, 4), st.binary(max_size=180)).map(
        lambda t: bytes([t[0], 0, 0, 0]) + t[1]),
    st.tuples(st.sampled_from(range(len(SAMPLES))),
              st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4),
              st.none() | st.integers(0, 2000)).map(
        lambda t: mutate(SAMPLES[t[0]], t[1], t[2])),
), st.sampled_from([("192.0.2.1", 51820), ("203.0.113.5", 4444), ("2001:db8::1", 1, 0, 0)]))
def test_hostile_datagrams_never_raise_and_are_counted(data, src):
    before = sum(BOB.device.drops.values())
    out = BOB.device.receive_datagrams([(data, src)], NET.now)
    check_drops(out, before)
    # Genuine data messages were all delivered once already (replays now); anything else is
    # forged or damaged: nothing may reach TUN.
    assert out.tun == []


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=120))
def test_hostile_tun_packets_never_raise(data):
    before = sum(ALICE.device.drops.values())
    out = ALICE.device.send_packets([data], NET.now)
    assert set(out.dropped) <= REASONS
    assert sum(ALICE.device.drops.values()) - before == len(out.dropped)


def test_session_survives_the_fuzzing():
    NET.queue.clear()
    pkt = ipv4_packet("10.0.0.1", "10.0.0.2", b"still here")
    before = len(BOB.tun)
    NET.send(ALICE, [pkt])
    NET.pump()
    assert BOB.tun[before:] == [pkt]


def test_classify_table():
    rows = [
        (b"", C.DROP_SHORT),
        (b"\x01\x00\x00", C.DROP_SHORT),
        (b"\x05\x00\x00\x00", C.DROP_BAD_TYPE),
        (b"\x00\x00\x00\x00", C.DROP_BAD_TYPE),
        (b"\x01\x00\x01\x00" + bytes(144), C.DROP_BAD_RESERVED),
        (b"\x01\x00\x00\x00" + bytes(143), C.DROP_BAD_LENGTH),
        (b"\x01\x00\x00\x00" + bytes(144), C.MSG_INITIATION),
        (b"\x02\x00\x00\x00" + bytes(88), C.MSG_RESPONSE),
        (b"\x02\x00\x00\x00" + bytes(89), C.DROP_BAD_LENGTH),
        (b"\x03\x00\x00\x00" + bytes(60), C.MSG_COOKIE_REPLY),
        (b"\x04\x00\x00\x00" + bytes(27), C.DROP_BAD_LENGTH),
        (b"\x04\x00\x00\x00" + bytes(28), C.MSG_DATA),
    ]
    for data, expected in rows:
        if isinstance(expected, str):  # a drop reason
            expected = (0, expected)
        else:
            expected = (expected, None)
        assert wire.classify(data) == expected, (data[:8], expected)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(
    st.tuples(st.just("genuine"), st.integers(0, 5)),
    st.tuples(st.just("hostile"), st.sampled_from(range(len(SAMPLES))),
              st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=3),
              st.none() | st.integers(0, 2000)),
    st.tuples(st.just("unknown"), st.integers(0, 2 ** 32 - 1)),
), max_size=24))
@example([("genuine", 0), ("hostile", 0, [], 5), ("genuine", 0), ("genuine", 1)])
@example([("genuine", 0), ("genuine", 1), ("hostile", 0, [], None), ("genuine", 1)])
def test_hostile_datagrams_mixed_into_a_session_batch(items):
    """Hostile datagrams anywhere in a batch, between a session's own: nothing raises,
    every genuine datagram is delivered once, in order, and only refusals are counted."""
    inner = [ipv4_packet("10.0.0.1", "10.0.0.2", b"g%d" % i) for i in range(6)]
    out_a = ALICE.device.send_packets(inner, NET.now)
    genuine = [d for d, _ in out_a.datagrams()]
    assert len(genuine) == 6
    batch, expect, seen = [], [], set()
    for item in items:
        if item[0] == "genuine":
            batch.append((genuine[item[1]], ALICE.endpoint))
            if item[1] not in seen:
                seen.add(item[1])
                expect.append(inner[item[1]])
        elif item[0] == "hostile":
            data = mutate(SAMPLES[item[1]], item[2], item[3])
            batch.append((data, ("203.0.113.5", 4444)))
        else:
            batch.append((wire.DATA_HEADER.pack(4, item[1], 1) + bytes(48), ALICE.endpoint))
    before = sum(BOB.device.drops.values())
    out = BOB.device.receive_datagrams(batch, NET.now)
    check_drops(out, before)
    # A mutated sample may itself be a genuine message that still authenticates (a flip
    # that changed nothing): delivered packets are the expected ones plus such samples.
    got = [p for p in out.tun if p in inner]
    assert got == expect


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(
    st.tuples(st.just("genuine"), st.integers(0, 5)),
    st.tuples(st.just("flipped"), st.integers(0, 5), st.integers(0, 63), st.integers(0, 255)),
    st.tuples(st.just("hostile"), st.sampled_from(range(len(SAMPLES))), st.integers(0, 200)),
    st.tuples(st.just("unknown"), st.integers(0, 2 ** 32 - 1)),
), max_size=30))
@example([("genuine", i) for i in range(6)] + [("hostile", 0, 200)])
@example([("genuine", 0), ("unknown", 7), ("genuine", 1), ("flipped", 2, 20, 1),
          ("genuine", 2), ("genuine", 1)])
@example([("hostile", 0, 0), ("hostile", 0, 1)])  # an empty datagram, then a 1-byte one
def test_trains_are_received_as_their_datagrams(items):
    """A UDP GRO read reaches the core as a train: receive_trains must do exactly what
    receive_datagrams does with the same datagrams one by one (output, drops, the peer's
    endpoint, byte count and replay window), whatever the train holds: replays, forgeries,
    unknown indices, handshake messages, a short last datagram."""
    results, sent = [], []
    for one_by_one in (True, False):
        net, a, b, _ = established()  # seeded: both runs have the same keys and session
        inner = [ipv4_packet("10.0.0.1", "10.0.0.2", b"g%d" % i) for i in range(6)]
        genuine = [bytes(d) for d, _ in a.device.send_packets(inner, net.now).datagrams()]
        sent.append(genuine)
        batch = []
        for item in items:
            if item[0] == "genuine":
                batch.append((genuine[item[1]], a.endpoint))
            elif item[0] == "flipped":
                batch.append((mutate(genuine[item[1]], [item[2:]], None), a.endpoint))
            elif item[0] == "hostile":
                batch.append((mutate(SAMPLES[item[1]], [], item[2]), a.endpoint))
            else:
                batch.append((wire.DATA_HEADER.pack(4, item[1], 1) + bytes(48), a.endpoint))
        if one_by_one:
            out = b.device.receive_datagrams(batch, net.now)
        else:
            out = b.device.receive_trains(as_trains(batch), net.now)
        peer = b.device.peers[a.public]
        window = peer.keypairs.current.replay
        results.append((out.tun, out.dropped, [(bytes(d), e) for d, e in out.datagrams()],
                        sorted(b.device.drops.items()), peer.rx_bytes, peer.endpoint,
                        window.greatest, list(window.blocks)))
    assert sent[0] == sent[1]
    assert results[0] == results[1]
