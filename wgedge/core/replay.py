"""The anti-replay sliding window (RFC 6479 ring of bit blocks; kernel counter.c).

Rules kept here:
- A counter is accepted once. Counters up to REPLAY_WINDOW below the greatest accepted are
  judged by their bit; older ones, and counters >= REJECT_AFTER_MESSAGES, are refused.
- Jumping ahead clears only the blocks skipped over (at most the whole ring), so the cost of
  an update is bounded whatever the jump.
- Call it only after the packet authenticated: a forged counter must never move the window.

Hot path: one call per received data packet.
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
