"""cookie.py on its own (in the manner of wireguard-go's cookie_test.go): mac1 and mac2 as
paper 5.4.4 defines them, computed here independently with hashlib, and the cookie reply
round trip between a responder's CookieChecker and an initiator's CookieState."""

import hashlib
import random

from wgedge import crypto as backends
from wgedge.core import consts as C
from wgedge.core import cookie as ck
from wgedge.core import wire

CRYPTO = backends.load("fast")
OFF = C.INITIATION_MAC1_OFFSET
SRC = ("192.0.2.7", 51820)


def blake2s(data, key=b"", size=32):
    return hashlib.blake2s(data, key=key, digest_size=size).digest()


def setup(seed=1):
    rnd = random.Random(seed)
    responder_public = rnd.randbytes(32)
    checker = ck.CookieChecker(CRYPTO)
    checker.set_static_public(responder_public)
    state = ck.CookieState(CRYPTO, responder_public)
    msg = bytearray(rnd.randbytes(C.INITIATION_LEN))
    return checker, state, msg, responder_public, rnd.randbytes


def test_mac1_is_keyed_blake2s_over_the_message_before_it():
    checker, state, msg, public, _ = setup()
    state.add_macs(msg, OFF, 10.0)
    key = blake2s(C.LABEL_MAC1 + public)
    assert bytes(msg[OFF:OFF + 16]) == blake2s(bytes(msg[:OFF]), key, 16)
    assert bytes(msg[OFF + 16:]) == bytes(16)  # no cookie yet: mac2 is zero
    assert checker.validate(msg, OFF, SRC, False, 10.0, random.randbytes) == \
        ck.VALID_MAC_BUT_NO_COOKIE


def test_a_wrong_mac1_is_invalid_whatever_mac2_says():
    checker, state, msg, _, rng = setup()
    state.add_macs(msg, OFF, 10.0)
    for pos in (0, OFF - 1, OFF, OFF + 15):
        bad = bytearray(msg)
        bad[pos] ^= 1
        for under_load in (False, True):
            assert checker.validate(bad, OFF, SRC, under_load, 10.0, rng) == ck.INVALID_MAC
    other = ck.CookieChecker(CRYPTO)
    assert other.validate(msg, OFF, SRC, False, 10.0, rng) == ck.INVALID_MAC  # no key set


def test_cookie_reply_round_trip():
    checker, state, msg, public, rng = setup()
    state.add_macs(msg, OFF, 10.0)
    assert checker.validate(msg, OFF, SRC, True, 10.0, rng) == ck.VALID_MAC_BUT_NO_COOKIE
    reply = checker.make_reply(msg, OFF, 0x01020304, SRC, 10.0, rng)
    assert len(reply) == C.COOKIE_REPLY_LEN and wire.classify(reply) == (C.MSG_COOKIE_REPLY, None)
    receiver, nonce, encrypted = wire.parse_cookie_reply(reply)
    assert receiver == 0x01020304
    assert state.consume_reply(nonce, encrypted, 10.5)
    # The cookie is MAC(secret, source address and port) (paper 5.4.7).
    assert state.cookie == blake2s(ck.source_bytes(SRC), checker.secret, 16)
    assert not state.consume_reply(nonce, encrypted, 10.6)  # only once per mac1 we sent
    msg2 = bytearray(msg)
    state.add_macs(msg2, OFF, 11.0)
    mac2 = bytes(msg2[OFF + 16:])
    assert mac2 == blake2s(bytes(msg2[:OFF + 16]), state.cookie, 16)
    assert checker.validate(msg2, OFF, SRC, True, 11.0, rng) == ck.VALID_MAC_WITH_COOKIE
    # The cookie is bound to the source: from elsewhere it counts for nothing.
    assert checker.validate(msg2, OFF, ("192.0.2.8", 51820), True, 11.0, rng) == \
        ck.VALID_MAC_BUT_NO_COOKIE
    assert checker.validate(msg2, OFF, ("192.0.2.7", 1), True, 11.0, rng) == \
        ck.VALID_MAC_BUT_NO_COOKIE


def test_a_reply_for_another_mac1_or_tampered_is_refused():
    checker, state, msg, _, rng = setup()
    state.add_macs(msg, OFF, 10.0)
    reply = checker.make_reply(msg, OFF, 1, SRC, 10.0, rng)
    _, nonce, encrypted = wire.parse_cookie_reply(reply)
    flipped = bytearray(encrypted)
    flipped[3] ^= 0x40
    assert not state.consume_reply(nonce, bytes(flipped), 10.0)
    newer = bytearray(msg)
    newer[8] ^= 1
    state.add_macs(newer, OFF, 10.1)  # we sent another message since: its mac1 is the AD now
    assert not state.consume_reply(nonce, encrypted, 10.2)
    assert state.cookie is None
    fresh = ck.CookieState(CRYPTO, bytes(32))
    assert not fresh.consume_reply(nonce, encrypted, 10.0)  # sent nothing yet


def test_cookie_ages_on_both_sides():
    checker, state, msg, _, rng = setup()
    state.add_macs(msg, OFF, 0.0)
    _, nonce, encrypted = wire.parse_cookie_reply(checker.make_reply(msg, OFF, 1, SRC, 0.0, rng))
    assert state.consume_reply(nonce, encrypted, 0.0)
    trusted = C.COOKIE_SECRET_MAX_AGE - C.COOKIE_SECRET_LATENCY
    state.add_macs(msg, OFF, trusted - 0.01)
    assert bytes(msg[OFF + 16:]) != bytes(16)
    state.add_macs(msg, OFF, trusted)  # too old to trust: mac2 zero again
    assert bytes(msg[OFF + 16:]) == bytes(16)
    # The responder's secret changes after COOKIE_SECRET_MAX_AGE, and old cookies with it.
    state.add_macs(msg, OFF, 1.0)
    assert checker.validate(msg, OFF, SRC, True, 1.0, rng) == ck.VALID_MAC_WITH_COOKIE
    assert checker.validate(msg, OFF, SRC, True, C.COOKIE_SECRET_MAX_AGE, rng) == \
        ck.VALID_MAC_BUT_NO_COOKIE
