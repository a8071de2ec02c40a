"""gate.py on its own: the verdict on a handshake message for every combination of load,
mac1, mac2 and rate limits (numbered rows), the per-batch cap and the load meter."""

import pytest

from tests.memnet import SeededRng
from wgedge import crypto as backends
from wgedge.core import consts as C
from wgedge.core import gate, wire
from wgedge.core.cookie import CookieState

CRYPTO = backends.load("fast")
OFF = C.INITIATION_MAC1_OFFSET
SRC = ("192.0.2.7", 51820)
PUBLIC = bytes(range(32))


def new_gate():
    g = gate.HandshakeGate(CRYPTO, SeededRng("gate"))
    g.set_static_public(PUBLIC)
    return g


def message(g, mac1, mac2, now):
    """An initiation from SRC with a good or bad mac1, and mac2 None (zero), "valid" (made with
    the cookie the gate would give SRC) or "wrong" (made with another source's cookie)."""
    sender = CookieState(CRYPTO, PUBLIC)
    msg = bytearray(b"\x01\x00\x00\x00" + bytes(range(4, C.INITIATION_LEN)))
    if mac2 is not None:
        src = SRC if mac2 == "valid" else ("192.0.2.99", 1)
        reply = g.cookies.make_reply(sender.add_macs(bytearray(msg), OFF, now), OFF, 1, src,
                                     now, SeededRng("n"))
        _, nonce, encrypted = wire.parse_cookie_reply(reply)
        assert sender.consume_reply(nonce, encrypted, now)
    sender.add_macs(msg, OFF, now)
    if not mac1:
        msg[OFF] ^= 1
    return bytes(msg)


def exhaust(limiter, now):
    key = gate.source_key(limiter, SRC)
    while limiter.allow(key, now):
        pass


# (row, under load, mac1 good, mac2, limiter exhausted (None, "handshake", "cookie"), verdict)
ROWS = [
    (1, False, False, None, None, C.DROP_BAD_MAC1),
    (2, False, True, None, None, gate.ALLOW),
    (3, False, True, "valid", None, gate.ALLOW),
    (4, False, True, "valid", "handshake", gate.ALLOW),  # limits apply under load only
    (5, True, False, None, None, C.DROP_BAD_MAC1),
    (6, True, False, "valid", None, C.DROP_BAD_MAC1),
    (7, True, True, None, None, gate.SEND_COOKIE),
    (8, True, True, None, "cookie", C.DROP_RATELIMITED),
    (9, True, True, "wrong", None, gate.SEND_COOKIE),
    (10, True, True, "valid", None, gate.ALLOW),
    (11, True, True, "valid", "handshake", C.DROP_RATELIMITED),
    (12, True, True, "valid", "cookie", gate.ALLOW),
]


@pytest.mark.parametrize("row, under_load, mac1, mac2, exhausted, verdict", ROWS,
                         ids=["row%d" % r[0] for r in ROWS])
def test_verdicts(row, under_load, mac1, mac2, exhausted, verdict):
    g = new_gate()
    now = 50.0
    g.force_under_load = under_load
    msg = message(g, mac1, mac2, now)
    if exhausted == "handshake":
        exhaust(g.ratelimiter, now)
    elif exhausted == "cookie":
        exhaust(g.cookie_ratelimiter, now)
    g.new_batch()
    assert g.admit(msg, C.MSG_INITIATION, SRC, now) == verdict, "row %d" % row


def test_the_cookie_reply_answers_the_message():
    g = new_gate()
    g.force_under_load = True
    sender = CookieState(CRYPTO, PUBLIC)
    msg = sender.add_macs(bytearray(b"\x01\x00\x00\x00" + bytes(144)), OFF, 1.0)
    msg[4:8] = (0x0A0B0C0D).to_bytes(4, "little")
    sender.add_macs(msg, OFF, 1.0)
    assert g.admit(bytes(msg), C.MSG_INITIATION, SRC, 1.0) == gate.SEND_COOKIE
    reply = g.cookie_reply(bytes(msg), C.MSG_INITIATION, SRC, 1.0)
    receiver, nonce, encrypted = wire.parse_cookie_reply(reply)
    assert receiver == 0x0A0B0C0D  # addressed to the message's sender index
    assert sender.consume_reply(nonce, encrypted, 1.0)
    sender.add_macs(msg, OFF, 2.0)
    assert g.admit(bytes(msg), C.MSG_INITIATION, SRC, 2.0) == gate.ALLOW


def test_batch_cap_then_under_load():
    g = new_gate()
    msg = message(g, True, None, 5.0)
    g.new_batch()
    verdicts = [g.admit(msg, C.MSG_INITIATION, SRC, 5.0) for _ in range(20)]
    assert verdicts == [gate.ALLOW] * C.MAX_HANDSHAKES_PER_BATCH + \
        [C.DROP_HANDSHAKE_OVERLOAD] * (20 - C.MAX_HANDSHAKES_PER_BATCH)
    g.new_batch()
    assert g.admit(msg, C.MSG_INITIATION, SRC, 5.5) == gate.SEND_COOKIE  # load seen just now
    # Cookie replies count towards the cap but need no mac: their own AEAD decides.
    g.new_batch()
    assert g.admit(bytes(C.COOKIE_REPLY_LEN), C.MSG_COOKIE_REPLY, SRC, 5.5) == gate.ALLOW


def test_load_meter():
    g = new_gate()
    g.load_threshold = 3
    assert [g.under_load(10.0) for _ in range(4)] == [False, False, False, True]
    assert g.under_load(10.0 + C.UNDER_LOAD_AFTER - 0.01)  # stays for UNDER_LOAD_AFTER
    assert not g.under_load(12.0 + C.UNDER_LOAD_AFTER)
    g.force_under_load = True
    assert g.under_load(100.0)


def test_source_keys():
    limiter = new_gate().ratelimiter
    assert gate.source_key(limiter, ("192.0.2.1", 1)) == "192.0.2.1"
    assert gate.source_key(limiter, ("2001:db8::1", 1)) == \
        gate.source_key(limiter, ("2001:db8::ffff:2", 9))  # one /64, one key
    assert gate.source_key(limiter, ("2001:db8::1", 1)) != \
        gate.source_key(limiter, ("2001:db8:0:1::1", 1))
    assert gate.source_key(limiter, ("not an address", 1)) == "not an address"
