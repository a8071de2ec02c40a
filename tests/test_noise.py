"""noise.py on its own: the IKpsk2 messages between two Noise contexts, no device (in the
manner of wireguard-go's noise_test.go). A consume that fails leaves the handshake as it was."""

import pytest

from tests.memnet import SeededRng
from wgedge import crypto as backends
from wgedge.core import consts as C
from wgedge.core import noise, tai64n
from wgedge.core.noise import Finished, Handshake, InitiationConsumed, InitiationSent, Noise

CRYPTO = backends.load("fast")
WALL = 1.7e9


class Side:
    """One end: a Noise context and a peer record holding the other's handshake."""

    def __init__(self, seed):
        self.rng = SeededRng(seed)
        self.noise = Noise(CRYPTO)
        self.noise.set_static_private(self.rng(32))
        self.peer = None

    def meet(self, other, psk=None):
        self.peer = Peer(Handshake(other.noise.static_public, psk))

    def find(self, static):
        return self.peer if static == self.peer.handshake.remote_static else None

    def ephemeral(self):
        return noise.clamp(self.rng(32))


class Peer:
    def __init__(self, handshake):
        self.handshake = handshake


def pair(psk=None):
    a, b = Side("a"), Side("b")
    a.meet(b, psk)
    b.meet(a, psk)
    return a, b


def initiation(a, now, index=7):
    return a.noise.create_initiation(a.peer.handshake, index, a.ephemeral(),
                                     tai64n.timestamp(now + WALL))


def state_of(hs):
    """Everything of a handshake a message could change, as plain values."""
    st = hs.state
    fields = None if st is None else (type(st).__name__,) + tuple(
        getattr(st, n) for n in st.__slots__)
    return (fields, hs.latest_timestamp, hs.last_initiation_consumption,
            hs.precomputed_static_static)


@pytest.mark.parametrize("psk", [None, bytes(range(32))])
def test_initiation_response_round_trip(psk):
    a, b = pair(psk)
    sender, eph, enc_static, enc_ts = initiation(a, 10.0)
    assert sender == 7 and type(a.peer.handshake.state) is InitiationSent
    peer, reason = b.noise.consume_initiation(sender, eph, enc_static, enc_ts, b.find, 10.0)
    assert peer is b.peer and reason is None
    st = b.peer.handshake.state
    assert type(st) is InitiationConsumed and st.remote_index == 7 and st.remote_ephemeral == eph
    resp = b.noise.create_response(b.peer.handshake, 9, b.ephemeral())
    assert resp[:2] == (9, 7) and type(b.peer.handshake.state) is Finished
    assert a.noise.consume_response(a.peer.handshake, resp[0], resp[2], resp[3])
    assert type(a.peer.handshake.state) is Finished
    ka = a.noise.derive_keys(a.peer.handshake)
    kb = b.noise.derive_keys(b.peer.handshake)
    send_a, recv_a, init_a, local_a, remote_a = ka
    send_b, recv_b, init_b, local_b, remote_b = kb
    assert (send_a, recv_a) == (recv_b, send_b) and send_a != recv_a
    assert (init_a, local_a, remote_a) == (True, 7, 9)
    assert (init_b, local_b, remote_b) == (False, 9, 7)
    # Deriving zeroes both handshakes: no key material is left in them.
    assert a.peer.handshake.state is None and b.peer.handshake.state is None
    assert a.noise.derive_keys(a.peer.handshake) is None


def test_different_preshared_keys_do_not_make_a_session():
    a, b = Side("a"), Side("b")
    a.meet(b, bytes(32 * [1]))
    b.meet(a, bytes(32 * [2]))
    fields = initiation(a, 10.0)
    assert b.noise.consume_initiation(*fields, b.find, 10.0)[0] is b.peer  # psk not used yet
    sender, receiver, eph, enc = b.noise.create_response(b.peer.handshake, 9, b.ephemeral())
    before = state_of(a.peer.handshake)
    assert not a.noise.consume_response(a.peer.handshake, sender, eph, enc)
    assert state_of(a.peer.handshake) == before


def _flip(fields, which, bit):
    fields = list(fields)
    value = bytearray(fields[which])
    value[bit // 8 % len(value)] ^= 1 << (bit % 8)
    fields[which] = bytes(value)
    return fields


@pytest.mark.parametrize("which", [1, 2, 3])  # ephemeral, encrypted static, encrypted timestamp
@pytest.mark.parametrize("bit", [0, 77, 255])
@pytest.mark.parametrize("start", ["zeroed", "initiation-sent", "after-one"])
def test_failed_initiation_consume_leaves_the_handshake_unchanged(which, bit, start):
    a, b = pair()
    if start == "initiation-sent":  # b had started its own handshake with a
        b.noise.create_initiation(b.peer.handshake, 3, b.ephemeral(), tai64n.timestamp(WALL))
    elif start == "after-one":  # b had accepted an earlier initiation
        assert b.noise.consume_initiation(*initiation(a, 1.0), b.find, 1.0)[0] is b.peer
    b.noise.static_static(b.peer.handshake)  # the cache may be filled by a consume: not state
    before = state_of(b.peer.handshake)
    fields = _flip(initiation(a, 10.0), which, bit)
    peer, reason = b.noise.consume_initiation(*fields, b.find, 10.0)
    assert peer is None and reason == C.DROP_BAD_HANDSHAKE
    assert state_of(b.peer.handshake) == before


@pytest.mark.parametrize("which", [2, 3])  # ephemeral, encrypted nothing
def test_failed_response_consume_leaves_the_handshake_unchanged(which):
    a, b = pair()
    fields = initiation(a, 10.0)
    b.noise.consume_initiation(*fields, b.find, 10.0)
    resp = list(b.noise.create_response(b.peer.handshake, 9, b.ephemeral()))
    before = state_of(a.peer.handshake)
    bad = _flip(resp, which, 5)
    assert not a.noise.consume_response(a.peer.handshake, bad[0], bad[2], bad[3])
    assert state_of(a.peer.handshake) == before
    assert a.noise.consume_response(a.peer.handshake, resp[0], resp[2], resp[3])  # still works


def test_replayed_stale_and_flooding_initiations_are_refused():
    a, b = pair()
    first = initiation(a, 10.0)
    assert b.noise.consume_initiation(*first, b.find, 10.0)[0] is b.peer
    accepted = state_of(b.peer.handshake)
    # The same message again, later: its timestamp is not newer (paper 5.1).
    assert b.noise.consume_initiation(*first, b.find, 20.0) == (None, C.DROP_REPLAYED_TIMESTAMP)
    # A new message with an older timestamp.
    stale = initiation(a, 5.0)
    assert b.noise.consume_initiation(*stale, b.find, 20.0) == (None, C.DROP_REPLAYED_TIMESTAMP)
    assert state_of(b.peer.handshake) == accepted
    # Newer, but within 1/INITIATIONS_PER_SECOND of the last one accepted: a flood.
    newer = initiation(a, 11.0)
    soon = 10.0 + 0.5 / C.INITIATIONS_PER_SECOND
    assert b.noise.consume_initiation(*newer, b.find, soon) == (None, C.DROP_HANDSHAKE_FLOOD)
    assert state_of(b.peer.handshake) == accepted
    later = 10.0 + 1.5 / C.INITIATIONS_PER_SECOND
    assert b.noise.consume_initiation(*newer, b.find, later)[0] is b.peer


def test_unknown_peer_and_missing_key_are_reasons_not_errors():
    a, b = pair()
    stranger = Side("c")
    stranger.meet(b)
    fields = stranger.noise.create_initiation(stranger.peer.handshake, 1, stranger.ephemeral(),
                                              tai64n.timestamp(WALL))
    assert b.noise.consume_initiation(*fields, b.find, 1.0) == (None, C.DROP_UNKNOWN_PEER)
    b.noise.set_static_private(None)
    assert b.noise.consume_initiation(*initiation(a, 1.0), b.find, 1.0) == \
        (None, C.DROP_NO_PRIVATE_KEY)


def test_each_step_needs_its_state():
    a, b = pair()
    hs = b.peer.handshake
    assert b.noise.create_response(hs, 1, b.ephemeral()) is None  # nothing consumed
    assert hs.state is None
    assert not a.noise.consume_response(a.peer.handshake, 1, bytes(32), bytes(16))  # no initiation
    assert a.noise.derive_keys(a.peer.handshake) is None
    initiation(a, 1.0)
    sent = state_of(a.peer.handshake)
    assert a.noise.derive_keys(a.peer.handshake) is None  # InitiationSent: no keys yet
    assert state_of(a.peer.handshake) == sent
    a.peer.handshake.clear()
    assert a.peer.handshake.state is None
