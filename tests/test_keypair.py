"""keypair.py on its own: the previous/current/next rotation of the kernel's
wg_noise_add_new_keypair and received_with_keypair, and the age and counter limits."""

import pytest

from wgedge import crypto as backends
from wgedge.core import consts as C
from wgedge.core.keypair import Keypair, Keypairs

CRYPTO = backends.load("fast")


class Rotation:
    def __init__(self):
        self.dropped = []
        self.pairs = Keypairs(self.dropped.append)
        self.n = 0

    def new(self, initiator, now=0.0):
        self.n += 1
        return Keypair(CRYPTO, None, bytes([self.n]) * 32, bytes([self.n + 100]) * 32, initiator,
                       self.n, 1000 + self.n, now)

    def slots(self):
        p = self.pairs
        return p.previous, p.current, p.next


def test_initiator_keypairs_become_current_at_once():
    r = Rotation()
    k1, k2, k3 = r.new(True), r.new(True), r.new(True)
    r.pairs.add(k1)
    assert r.slots() == (None, k1, None)
    r.pairs.add(k2)
    assert r.slots() == (k1, k2, None) and r.dropped == []
    r.pairs.add(k3)
    assert r.slots() == (k2, k3, None) and r.dropped == [k1]
    assert k1.sending is None and not k1.can_send(0.0)  # wiped when it left


def test_responder_keypair_waits_for_confirmation():
    r = Rotation()
    k1, k2 = r.new(True), r.new(False)
    r.pairs.add(k1)
    r.pairs.add(k2)
    assert r.slots() == (None, k1, k2)  # we keep sending on k1 until k2 is confirmed
    assert not r.pairs.confirm(k1)  # a packet on current confirms nothing
    assert r.pairs.confirm(k2)
    assert r.slots() == (k1, k2, None)
    assert not r.pairs.confirm(k2)  # only once


def test_responder_keypair_replaces_an_unconfirmed_one_and_drops_previous():
    r = Rotation()
    k1, k2, k3, k4 = r.new(True), r.new(True), r.new(False), r.new(False)
    r.pairs.add(k1)
    r.pairs.add(k2)
    r.pairs.add(k3)
    assert r.slots() == (None, k2, k3) and r.dropped == [k1]
    r.pairs.add(k4)
    assert r.slots() == (None, k2, k4) and r.dropped == [k1, k3]


def test_initiator_keypair_while_one_is_unconfirmed():
    """Both sides started handshakes: our unconfirmed responder keypair becomes previous (a
    packet may still arrive on it) and the current one goes."""
    r = Rotation()
    k1, k2, k3 = r.new(True), r.new(False), r.new(True)
    r.pairs.add(k1)
    r.pairs.add(k2)
    r.pairs.add(k3)
    assert r.slots() == (k2, k3, None) and r.dropped == [k1]


def test_clear_and_expire_current():
    r = Rotation()
    k1, k2, k3 = r.new(True), r.new(True), r.new(False)
    for k in (k1, k2, k3):
        r.pairs.add(k)
    r.pairs.expire_current()
    assert not k2.can_send(1.0) and not k3.can_send(1.0)
    assert k2.receive_limit(1.0) == C.REJECT_AFTER_MESSAGES  # still receives
    assert r.pairs.all() == [k2, k3] and r.dropped == [k1]  # k3's arrival dropped previous
    r.pairs.clear()
    assert r.slots() == (None, None, None) and r.dropped == [k1, k2, k3]
    assert r.pairs.all() == []


@pytest.mark.parametrize("age, sends, receives", [
    (0.0, True, True),
    (C.REJECT_AFTER_TIME - 0.001, True, True),
    (C.REJECT_AFTER_TIME, False, False),
])
def test_expiry_by_age(age, sends, receives):
    kp = Rotation().new(True, now=100.0)
    assert kp.can_send(100.0 + age) is sends
    assert kp.can_receive(100.0 + age) is receives
    assert kp.receive_limit(100.0 + age) == (C.REJECT_AFTER_MESSAGES if receives else 0)


def test_expiry_by_counter():
    kp = Rotation().new(True)
    kp.sending_counter = C.REJECT_AFTER_MESSAGES - 1
    assert kp.can_send(0.0)
    kp.sending_counter = C.REJECT_AFTER_MESSAGES
    assert not kp.can_send(0.0)


def test_the_two_directions_use_their_own_keys():
    kp = Rotation().new(True)
    nonce = bytes(12)
    sealed = kp.sending.encrypt(nonce, b"hello", None)
    assert CRYPTO.aead(bytes([1]) * 32).decrypt(nonce, sealed, None) == b"hello"
    with pytest.raises(CRYPTO.AuthError):
        kp.receiving.decrypt(nonce, sealed, None)
