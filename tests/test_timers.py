"""timers.py on its own: each event sets the deadlines the kernel's timers.c sets, in a
numbered table of rows (the style of the kernel's selftest/counter.c). The random source
gives zeros, so the retransmission jitter is 0 in the table; its range is tested apart."""

import random

import pytest

from wgedge.core import consts as C
from wgedge.core import timers as T

K, R, Z = C.KEEPALIVE_TIMEOUT, C.REKEY_TIMEOUT, C.ZERO_KEYS_AFTER
NEW, RETRANSMIT, KEEPALIVE, ZERO, PERSISTENT = (
    T.NEW_HANDSHAKE, T.RETRANSMIT_HANDSHAKE, T.SEND_KEEPALIVE, T.ZERO_KEY_MATERIAL,
    T.PERSISTENT_KEEPALIVE)


def zeros(n):
    return bytes(n)


# (row, time, event, deadlines after it). One Timers object goes through the rows in order.
ROWS = [
    # wg_timers_data_sent: new_handshake at KEEPALIVE + REKEY_TIMEOUT (+ jitter), if not pending
    (1, 0.0, "data_sent", {NEW: K + R}),
    (2, 1.0, "data_sent", {NEW: K + R}),
    # any_authenticated_packet_received: the answer came, no new handshake needed
    (3, 2.0, "any_authenticated_packet_received", {}),
    # data_received: send_keepalive at KEEPALIVE_TIMEOUT, if not pending
    (4, 3.0, "data_received", {KEEPALIVE: 3.0 + K}),
    (5, 4.0, "data_received", {KEEPALIVE: 3.0 + K}),
    # any_authenticated_packet_sent: whatever we sent serves as the keepalive
    (6, 5.0, "any_authenticated_packet_sent", {}),
    # handshake_initiated: retransmit at REKEY_TIMEOUT (+ jitter), moved by every initiation
    (7, 6.0, "handshake_initiated", {RETRANSMIT: 6.0 + R}),
    (8, 7.0, "handshake_initiated", {RETRANSMIT: 7.0 + R}),
    # session_derived: zero the keys after 3 x REJECT_AFTER_TIME
    (9, 8.0, "session_derived", {RETRANSMIT: 7.0 + R, ZERO: 8.0 + Z}),
    # handshake_complete: no more retransmits
    (10, 9.0, "handshake_complete", {ZERO: 8.0 + Z}),
    (11, 10.0, "session_derived", {ZERO: 10.0 + Z}),
    # any_authenticated_packet_traversal without a persistent keepalive: nothing
    (12, 11.0, "any_authenticated_packet_traversal", {ZERO: 10.0 + Z}),
    (13, 12.0, "data_sent", {ZERO: 10.0 + Z, NEW: 12.0 + K + R}),
    (14, 13.0, "data_received", {ZERO: 10.0 + Z, NEW: 12.0 + K + R, KEEPALIVE: 13.0 + K}),
    (15, 14.0, "any_authenticated_packet_received", {ZERO: 10.0 + Z, KEEPALIVE: 13.0 + K}),
    (16, 15.0, "any_authenticated_packet_sent", {ZERO: 10.0 + Z}),
]


def test_event_table():
    t = T.Timers(zeros)
    for row, now, event, expected in ROWS:
        getattr(t, event)(now)
        assert t.deadlines == expected, "row %d: %s at %s" % (row, event, now)


def test_persistent_keepalive():
    t = T.Timers(zeros)
    t.persistent_keepalive_set(25, 100.0, has_endpoint=True)
    assert t.deadlines == {PERSISTENT: 100.0}  # newly enabled: one now, through the timer
    t.any_authenticated_packet_traversal(101.0)
    assert t.deadlines == {PERSISTENT: 126.0}
    t.persistent_keepalive_set(30, 102.0, has_endpoint=True)  # changed, not newly enabled
    assert t.deadlines == {PERSISTENT: 126.0}
    t.persistent_keepalive_set(0, 103.0, has_endpoint=True)
    assert t.deadlines == {} and t.persistent_keepalive_interval == 0
    t.any_authenticated_packet_traversal(104.0)
    assert t.deadlines == {}
    t.persistent_keepalive_set(25, 105.0, has_endpoint=False)  # nowhere to send it yet
    assert t.deadlines == {}


def test_data_received_in_a_batch_equals_one_by_one():
    batched, single = T.Timers(zeros), T.Timers(zeros)
    batched.data_received(1.0, 3)
    for _ in range(3):
        single.data_received(1.0)
    assert batched.deadlines == single.deadlines == {KEEPALIVE: 1.0 + K}
    assert batched.need_another_keepalive and single.need_another_keepalive
    batched.rearm_keepalive_if_needed(12.0)
    assert batched.deadlines == {KEEPALIVE: 12.0 + K} and not batched.need_another_keepalive


def test_expired_fires_in_order_and_disarms():
    t = T.Timers(zeros)
    t.data_sent(0.0)  # NEW at 15
    t.handshake_initiated(0.0)  # RETRANSMIT at 5
    t.session_derived(0.0)  # ZERO at 540
    assert t.next_deadline() == R
    assert t.expired(4.9) == []
    assert t.expired(20.0) == [RETRANSMIT, NEW]
    assert t.deadlines == {ZERO: Z}
    assert t.expired(Z) == [ZERO] and t.next_deadline() is None


def test_give_up_handshake_schedules_zeroing_once():
    t = T.Timers(zeros)
    t.data_received(0.0)
    t.give_up_handshake(90.0)
    assert t.deadlines == {ZERO: 90.0 + Z}
    t.give_up_handshake(95.0)
    assert t.deadlines == {ZERO: 90.0 + Z}


def test_handshake_complete_resets_attempts_and_lastminute():
    t = T.Timers(zeros)
    t.handshake_attempts = 4
    t.sent_lastminute_handshake = True
    t.handshake_complete(1.0)
    assert t.handshake_attempts == 0 and not t.sent_lastminute_handshake


@pytest.mark.parametrize("seed", range(3))
def test_jitter_stays_within_rekey_timeout_jitter_max(seed):
    rnd = random.Random(seed)
    seen = set()
    for _ in range(4000):
        t = T.Timers(rnd.randbytes)
        t.handshake_initiated(0.0)
        jitter = t.deadlines[RETRANSMIT] - R
        assert 0.0 <= jitter <= C.REKEY_TIMEOUT_JITTER_MAX + 1e-9
        seen.add(round(jitter, 3))
    assert min(seen) == 0.0 and max(seen) == C.REKEY_TIMEOUT_JITTER_MAX  # both ends reached
    assert len(seen) > 300  # and whole milliseconds between


def test_stop_all():
    t = T.Timers(zeros)
    t.data_sent(0.0)
    t.session_derived(0.0)
    t.stop_all()
    assert t.deadlines == {} and t.next_deadline() is None
