"""The anti-replay sliding window (RFC 6479 ring of bit blocks; kernel counter.c).

Rules kept here:
- A counter is accepted once. Counters up to REPLAY_WINDOW below the greatest accepted are
  judged by their bit; older ones, and counters >= REJECT_AFTER_MESSAGES, are refused.
- Jumping ahead clears only the blocks skipped over (at most the whole ring), so the cost of
  an update is bounded whatever the jump.
- Call it only after the packet authenticated: a forged counter must never move the window.

Two ways to feed it, leaving the same state (tests/test_replay.py):
- one by one: `check(counter)` accepts or refuses a counter and records it;
- by runs, for the receive hot path (device.receive_trains): counters that arrive in order
  starting at `run_start()` (and below REJECT_AFTER_MESSAGES, which the engine checks first
  through Keypair.receive_limit) are fresh by this rule alone, so the engine accepts each with
  one comparison and records the run with `accept_run(first, end)` before anything else looks at
  the window (a `check`, another keypair's run, the end of the batch).

Hot path: written for speed.
"""

from wgedge.core import consts as C

_BITS = C.REPLAY_BLOCK_BITS
_LOG = 6  # log2(_BITS)
_RING = C.REPLAY_RING_BLOCKS
_RING_MASK = _RING - 1
_BIT_MASK = _BITS - 1
_WINDOW = C.REPLAY_WINDOW
_LIMIT = C.REJECT_AFTER_MESSAGES


class ReplayWindow:
    def __init__(self):
        self.reset()

    def reset(self):
        self.greatest = 0  # highest counter accepted so far (0 also before any)
        self.blocks = [0] * _RING

    def run_start(self):
        """The counter that starts a run: the next in order, just above the greatest."""
        return self.greatest + 1

    def check(self, counter):
        """True if `counter` is fresh (and now recorded), False if it is refused."""
        greatest = self.greatest
        if counter > greatest:  # the usual case, in order: one branch, no bit test
            if counter >= _LIMIT:
                return False
            index = counter >> _LOG
            gap = index - (greatest >> _LOG)
            blocks = self.blocks
            if gap:
                if gap > _RING:
                    gap = _RING
                current = greatest >> _LOG
                for i in range(1, gap + 1):
                    blocks[(current + i) & _RING_MASK] = 0
            self.greatest = counter
            # Its bit is clear: its block was just cleared, or it is the greatest's block,
            # where only counters up to the greatest have been set.
            blocks[index & _RING_MASK] |= 1 << (counter & _BIT_MASK)
            return True
        if greatest - counter > _WINDOW:
            return False
        blocks = self.blocks
        slot = (counter >> _LOG) & _RING_MASK
        bit = 1 << (counter & _BIT_MASK)
        word = blocks[slot]
        if word & bit:
            return False
        blocks[slot] = word | bit
        return True

    def accept_run(self, first, end):
        """Record counters first..end-1 (none when end == first), all authenticated and
        above the greatest (the engine's runs start at run_start()): the same state as
        check() on each in turn, in a few steps per 64 counters."""
        if end == first:
            return
        last = end - 1
        greatest = self.greatest
        blocks = self.blocks
        index = last >> _LOG
        current = greatest >> _LOG
        gap = index - current
        if gap > _RING:
            gap = _RING
        for i in range(1, gap + 1):
            blocks[(current + i) & _RING_MASK] = 0
        self.greatest = last
        # Counters in blocks that have left the ring since are forgotten, as they would be.
        c = (index - _RING + 1) << _LOG
        if c < first:
            c = first
        while c <= last:
            stop = c | _BIT_MASK
            if stop > last:
                stop = last
            blocks[(c >> _LOG) & _RING_MASK] |= ((1 << (stop - c + 1)) - 1) << (c & _BIT_MASK)
            c = stop + 1
