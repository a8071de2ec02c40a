"""The replay window: a numbered table in the style of the kernel's selftest/counter.c, and a
property test against a deliberately naive reference."""

from hypothesis import given, settings
from hypothesis import strategies as st

from wgedge.core import consts as C
from wgedge.core.replay import ReplayWindow

W = C.REPLAY_WINDOW
LIMIT = C.REJECT_AFTER_MESSAGES

# (counter, expected) in order, all on one window.
TABLE = [
    (0, True), (1, True), (1, False), (9, True), (8, True), (7, True), (7, False),
    (W, True), (W - 1, True), (W - 2, True), (2, True), (2, False), (W + 16, True),
    (3, False), (W + 16, False), (W * 3, True), (W * 3 - W, True), (W * 3 - W - 1, False),
    (W * 3 - W + 1, True), (W * 3 + 1, True), (W * 3 + 2, True), (W * 3 + 1, False),
    (LIMIT - 1, True), (LIMIT - 1 - W, True), (LIMIT - 2 - W, False), (LIMIT - 2, True),
    (LIMIT, False), (LIMIT + 1, False), (LIMIT - 1, False),
]


def test_numbered_table():
    r = ReplayWindow()
    for i, (counter, expected) in enumerate(TABLE):
        assert r.check(counter) is expected, "row %d: counter %d" % (i, counter)


def test_every_counter_in_a_shuffled_window_accepted_once():
    import random

    r = ReplayWindow()
    counters = list(range(1, W + 1))
    random.Random(1).shuffle(counters)
    assert all(r.check(c) for c in counters)
    assert not any(r.check(c) for c in counters)


def test_bit_reuse_after_wrapping_the_ring():
    r = ReplayWindow()
    sent = list(range(0, 20 * W, 63))
    for c in sent:
        assert r.check(c)
    for c in sent:
        assert not r.check(c)  # inside the window: duplicate; older: too old
    fresh = [c + 1 for c in sent if sent[-1] - (c + 1) <= W]
    assert all(r.check(c) for c in fresh)  # unseen counters in the window pass


class Naive:
    def __init__(self):
        self.seen = set()
        self.greatest = 0

    def check(self, c):
        if c >= LIMIT or c in self.seen or self.greatest - c > W:
            return False
        self.seen.add(c)
        self.greatest = max(self.greatest, c)
        return True


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 3 * W), st.integers(0, 300),
                          st.integers(LIMIT - 3 * W, LIMIT + 2)), max_size=300))
def test_matches_naive_reference(counters):
    r, ref = ReplayWindow(), Naive()
    for c in counters:
        assert r.check(c) == ref.check(c), c


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2 ** 40), st.lists(st.integers(-W - 70, 70), min_size=1, max_size=200))
def test_reordering_near_the_edge(base, deltas):
    r, ref = ReplayWindow(), Naive()
    for d in deltas:
        c = max(0, base + d)
        assert r.check(c) == ref.check(c)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2 ** 40), st.lists(st.one_of(
    st.tuples(st.just("check"), st.integers(-W - 70, 200)),
    st.tuples(st.just("run"), st.integers(1, 3 * W), st.integers(0, 3 * W))), max_size=40))
def test_accept_run_equals_checking_each(base, ops):
    """accept_run(first, last + 1) leaves the window exactly as check on each counter
    of first..last would, whatever came before; runs may start past a gap."""
    runs, each = ReplayWindow(), ReplayWindow()
    for op in ops:
        if op[0] == "check":
            c = max(0, base + op[1])
            assert runs.check(c) == each.check(c)
        else:
            first = runs.greatest + 1 + op[2]
            last = min(first + op[1] - 1, LIMIT - 1)
            if first > last:
                continue
            runs.accept_run(first, last + 1)
            for c in range(first, last + 1):
                assert each.check(c)
        assert runs.greatest == each.greatest and runs.blocks == each.blocks


def engine_feed(window, items):
    """The replay part of device.receive_trains: counters equal to the run's next are accepted
    with one comparison; anything else records the run and goes through check(); "end" stands
    for whatever ends a run there (another keypair, a handshake message, the batch's end)."""
    verdicts = []
    first = nxt = window.run_start()
    for item in items:
        if item == "end":
            window.accept_run(first, nxt)
            first = nxt = window.run_start()
            continue
        if item == nxt:
            nxt = item + 1
            verdicts.append(True)
        else:
            window.accept_run(first, nxt)
            verdicts.append(window.check(item))
            first = nxt = window.run_start()
    window.accept_run(first, nxt)
    return verdicts


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2 ** 40), st.lists(st.one_of(
    st.tuples(st.just("in-order"), st.integers(1, 200)),
    st.tuples(st.just("at"), st.integers(-W - 70, 3 * W)),
    st.just(("end",))), max_size=40))
def test_run_api_equals_the_one_by_one_rule(base, ops):
    """Fed through run_start/accept_run/check the way the receive loop feeds it, the window
    gives every counter the verdict check() alone (and the naive reference) gives it, and
    ends in the same state."""
    items = []
    top = base
    for op in ops:
        if op[0] == "end":
            items.append("end")
        elif op[0] == "in-order":  # a burst that continues from the highest so far
            items += range(top + 1, top + 1 + op[1])
            top += op[1]
        else:
            c = max(0, min(base + op[1], LIMIT - 1))
            items.append(c)
            top = max(top, c)
    counters = [c for c in items if c != "end"]
    runs, each, ref = ReplayWindow(), ReplayWindow(), Naive()
    assert engine_feed(runs, items) == [each.check(c) for c in counters] == \
        [ref.check(c) for c in counters]
    assert runs.greatest == each.greatest and runs.blocks == each.blocks
