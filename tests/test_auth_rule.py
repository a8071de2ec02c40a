"""The receive rule, tested as the rule itself: a datagram that does not authenticate changes
nothing but a drop counter (handshake messages may also touch the load meter and cookie state).

Endpoint, timers, keypair validity and rotation, replay windows, byte counters and the last
handshake move only for authenticated, non-replayed packets (paper 6.5; kernel receive.c). Two
ways of checking it, so a shared bug in the fast path and its slow reference cannot hide:
- hostile datagrams alone leave the device's state exactly as it was;
- hostile datagrams mixed into genuine traffic, through receive_trains (as GRO reads) and one
  by one, leave the same state and output as the genuine datagrams alone.

The scenario: bob has a confirmed `current` keypair (K1) with alice and a fresh `next` one
(K2) that alice's first K2 datagram will confirm, so a forgery could also try to promote a
keypair, kill one by its counter, or move the endpoint.
"""

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.memnet import Net, as_trains, ipv4_packet
from wgedge.core import consts as C
from wgedge.core import wire
from wgedge.core.device import Output

ATTACKER = ("203.0.113.66", 6666)
ALICE_EP = ("192.0.2.1", 51820)
SOURCES = (ATTACKER, ALICE_EP, ("2001:db8::66", 6666, 0, 0))
N_DATA = 6
MAX64 = 2 ** 64 - 1
COUNTERS = (0, 1, 2, 5, 63, 2000, C.REJECT_AFTER_MESSAGES - 1, C.REJECT_AFTER_MESSAGES,
            2 ** 63, MAX64)


def scenario():
    """A fresh, deterministic (seeded) pair in the state above. Returns (net, alice, bob,
    genuine, old) where genuine[0] is alice's K2 keepalive and genuine[1:] her K2 data, none
    delivered yet, and `old` holds datagrams bob already received (for replays)."""
    net = Net()
    a, b = net.pair()
    assert a.endpoint == ALICE_EP
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2", b"first")])
    net.pump()
    old = [d for d, _ in a.sent]  # initiation, K1 data: all received by bob
    assert len(b.tun) == 1
    net.now += C.REKEY_TIMEOUT + 1
    out = Output(a.device)
    a.device.peers[b.public].send_initiation(net.now, out)
    net._collect(a, out)
    dst, initiation, src = net.queue.pop(0)
    net._collect(b, b.device.receive_datagrams([(initiation, src)], net.now))
    dst, response, src = net.queue.pop(0)
    net._collect(a, a.device.receive_datagrams([(response, src)], net.now))
    old += [initiation, response]
    keepalive = [bytes(d) for dst, d, src in net.queue]
    net.queue.clear()
    assert len(keepalive) == 1
    inner = [ipv4_packet("10.0.0.1", "10.0.0.2", b"g%d" % i) for i in range(N_DATA)]
    data = [bytes(d) for d, _ in a.device.send_packets(inner, net.now).datagrams()]
    pairs = b.device.peers[a.public].keypairs
    assert pairs.current is not None and pairs.next is not None
    return net, a, b, keepalive + data, old


def snapshot(device):
    """Everything a received datagram could change, but the drop counters and load meter."""
    peers = []
    for key, p in device.peers.items():
        pairs = []
        for kp in (p.keypairs.previous, p.keypairs.current, p.keypairs.next):
            pairs.append(None if kp is None else (
                kp.local_index, kp.remote_index, kp.sending_counter, kp.sending_valid,
                kp.receiving_valid, kp.created, kp.replay.greatest, list(kp.replay.blocks)))
        t = p.timers
        hs = p.handshake
        peers.append((key, p.endpoint, p.rx_bytes, p.tx_bytes, p.last_handshake,
                      p.last_sent_handshake, sorted(t.deadlines.items()), t.handshake_attempts,
                      t.need_another_keepalive, t.sent_lastminute_handshake, pairs,
                      [bytes(x) for x in p.staged], handshake_state(hs), p.handshake_index,
                      hs.latest_timestamp, hs.last_initiation_consumption,
                      p.cookie.cookie, p.deadline))
    return (peers, sorted(device.indices.keypairs), sorted(device.indices.handshakes),
            device.get_timer())


def handshake_state(hs):
    """The handshake's state as plain values: its class and every field it holds."""
    st = hs.state
    if st is None:
        return None
    return (type(st).__name__,) + tuple(getattr(st, name) for name in st.__slots__)


def _bob_indices(b):
    pairs = next(iter(b.device.peers.values())).keypairs
    return [pairs.current.local_index, pairs.next.local_index]


def hostile(item, b, genuine, old):
    """The datagram a hostile item stands for (never one that authenticates)."""
    kind = item[0]
    if kind == "forged":  # a live (or unknown) index, any counter, garbage for a tag
        _, which, counter, body = item
        indices = _bob_indices(b) + [0x12345678]
        return wire.DATA_HEADER.pack(4, indices[which], COUNTERS[counter]) + body
    if kind == "flipped":  # a genuine datagram with one byte changed
        _, i, pos, delta = item
        d = bytearray(genuine[i])
        d[pos % len(d)] ^= delta
        return bytes(d)
    if kind == "truncated":
        _, i, cut = item
        d = genuine[i]
        return d[:cut % len(d)]
    if kind == "old":  # a replay of something bob already received
        return old[item[1] % len(old)]
    raise AssertionError(kind)


GENUINE = st.tuples(st.just("genuine"), st.integers(0, N_DATA))
HOSTILE = st.one_of(
    st.tuples(st.just("forged"), st.integers(0, 2), st.integers(0, len(COUNTERS) - 1),
              st.sampled_from([b"", bytes(16), bytes(48), b"\xff" * 100])),
    st.tuples(st.just("flipped"), st.integers(0, N_DATA), st.integers(0, 200),
              st.integers(1, 255)),
    st.tuples(st.just("truncated"), st.integers(0, N_DATA), st.integers(0, 200)),
    st.tuples(st.just("old"), st.integers(0, 10)),
    st.tuples(st.just("replay"), st.integers(0, N_DATA)),
)


def build(items, b, genuine, old):
    """-> (mixed batch, genuine-only batch, clean_at) where clean_at[k] is how many genuine
    datagrams mixed[:k] holds. A replay item repeats an earlier genuine datagram (from the
    attacker's address); one with no earlier original is left out, since a first arrival
    from anywhere is authentic (and may legitimately roam)."""
    mixed, clean, delivered, clean_at = [], [], set(), [0]
    for n, item in enumerate(items):
        clean_at += [len(clean)] * (len(mixed) + 1 - len(clean_at))
        src = SOURCES[n % len(SOURCES)]
        if item[0] == "genuine":
            i = item[1]
            if i in delivered:  # a duplicate is a replay, from whatever address
                mixed.append((genuine[i], src))
                continue
            delivered.add(i)
            mixed.append((genuine[i], ALICE_EP))
            clean.append((genuine[i], ALICE_EP))
        elif item[0] == "replay":
            if item[1] in delivered:
                mixed.append((genuine[item[1]], src))
        else:
            mixed.append((hostile(item, b, genuine, old), src))
    clean_at += [len(clean)] * (len(mixed) + 1 - len(clean_at))
    return mixed, clean, clean_at


def receive(b, batch, now, how, cuts=()):
    """Deliver `batch` one datagram at a time or as GRO-shaped trains, in calls split at
    `cuts`; -> (tun packets, datagrams sent, endpoints reported authenticated)."""
    tun, sent, auth = [], [], []
    bounds = sorted({c % (len(batch) + 1) for c in cuts} | {0, len(batch)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        part = batch[lo:hi]
        if how == "trains":
            out = b.device.receive_trains(as_trains(part), now)
        else:
            out = b.device.receive_datagrams(part, now)
        tun += out.tun
        sent += [(bytes(d), e) for d, e in out.datagrams()]
        auth += out.authenticated
    return tun, sent, auth


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(HOSTILE, min_size=1, max_size=12), st.sampled_from(["one", "trains"]))
@example([("forged", 0, 0, bytes(16))], "one")  # endpoint hijack with a garbage tag
@example([("forged", 1, 0, bytes(16))], "trains")  # promoting `next` without a key
@example([("forged", 0, 9, b"")], "one")  # counter 2^64-1 in a bare header
@example([("forged", 0, 9, b"")], "trains")
@example([("old", 1)], "one")  # a replayed K1 data datagram from elsewhere
def test_hostile_datagrams_alone_change_nothing(items, how):
    net, a, b, genuine, old = scenario()
    before = snapshot(b.device)
    drops_before = sum(b.device.drops.values())
    batch = [(hostile(item, b, genuine, old) if item[0] != "replay" else old[1], SOURCES[n % 3])
             for n, item in enumerate(items)]
    tun, sent, auth = receive(b, batch, net.now, how)
    assert tun == [] and sent == [] and auth == []
    assert snapshot(b.device) == before
    assert sum(b.device.drops.values()) - drops_before == len(batch)
    # and the session still works afterwards: alice's genuine traffic gets through
    tun, _, auth = receive(b, [(d, ALICE_EP) for d in genuine], net.now, how)
    assert len(tun) == N_DATA and set(auth) == {ALICE_EP}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(GENUINE, HOSTILE), max_size=30),
       st.lists(st.integers(0, 40), max_size=3))
@example([("genuine", 1), ("forged", 0, 0, bytes(48)), ("genuine", 2)], [])
@example([("forged", 1, 1, bytes(48)), ("genuine", 0), ("replay", 0), ("genuine", 3)], [])
@example([("genuine", 2), ("genuine", 1), ("forged", 1, 9, b""), ("genuine", 3)], [2])
@example([("genuine", 1), ("old", 1), ("truncated", 2, 40), ("genuine", 2)], [])
def test_hostile_datagrams_mixed_in_leave_what_the_genuine_ones_leave(items, cuts):
    results = []
    for how in ("reference", "one", "trains"):
        net, a, b, genuine, old = scenario()
        mixed, clean, clean_at = build(items, b, genuine, old)
        if how == "reference":  # the genuine datagrams alone, in the same calls
            ref_cuts = [clean_at[c % (len(mixed) + 1)] for c in cuts]
            out = receive(b, clean, net.now, "one", ref_cuts)
        else:
            out = receive(b, mixed, net.now, how, cuts)
        tun, sent, auth = out
        results.append((how, (tun, sent, set(auth)), snapshot(b.device)))
        # time moves on: the timers the datagrams armed fire alike
        net.now += C.KEEPALIVE_TIMEOUT + 1
        fired = [(bytes(d), e) for d, e in b.device.handle_timer(net.now).datagrams()]
        results[-1] += (fired, snapshot(b.device))
    ref = results[0][1:]
    for how, *rest in results[1:]:
        assert tuple(rest) == ref, how
