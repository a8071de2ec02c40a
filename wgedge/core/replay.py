"""The anti-replay sliding window (RFC 6479 ring of bit blocks; kernel counter.c).

Rules kept here:
- A counter is accepted once. Counters up to REPLAY_WINDOW below the greatest accepted are
  judged by their bit; older ones, and counters >= REJECT_AFTER_MESSAGES, are refused.
- Jumping ahead clears only the blocks skipped over (at most the whole ring), so the cost of
  an update is bounded whatever the jump.
- Call it only after the packet authenticated: a forged counter must never move the window.

Hot path. The engine (device.receive_trains) accepts a run of counters that arrive in order
just above the greatest with one comparison each and records the run with `accept_run`,
which leaves the same state as `check_and_update` on each; anything else goes through
`check_and_update`, after the pending run is recorded.
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

    def check_and_update(self, counter):
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

    def accept_run(self, first, last):
        """Record counters first..last, all above the greatest and all authenticated: the
        same state as check_and_update on each in turn, in a few steps per 64 counters. The
        engine accepts an in-order run with one comparison per packet and records it here."""
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
            end = c | _BIT_MASK
            if end > last:
                end = last
            blocks[(c >> _LOG) & _RING_MASK] |= ((1 << (end - c + 1)) - 1) << (c & _BIT_MASK)
            c = end + 1
