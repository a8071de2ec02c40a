"""The device's timer schedule: one deadline per peer, the earliest first (a binary heap).

Rules kept here:
- A peer's deadline is the earliest of its timers (`peer.timers.next_deadline()`), recorded
  in `peer.deadline`; the heap may hold older entries of a peer (it re-armed) or of a removed
  peer. Those are skipped when they reach the top, and the heap is rebuilt from the live
  deadlines once it holds more than twice as many entries as there are peers, so it stays
  O(peers) for O(1) amortized work per push.
- `due(now, limit)` hands out at most `limit` peers per call, so no call is long; the rest stay
  due and `next_deadline()` says so.
"""


def heap_push(heap, item):
    """heapq.heappush for (deadline, seq, peer) tuples (MicroPython has no guaranteed heapq)."""
    heap.append(item)
    i = len(heap) - 1
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent][0] <= item[0]:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = item


def heap_pop(heap):
    """heapq.heappop for the same tuples."""
    last = heap.pop()
    if not heap:
        return last
    top = heap[0]
    n = len(heap)
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap[child + 1][0] < heap[child][0]:
            child += 1
        if heap[child][0] >= last[0]:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = last
    return top


class Schedule:
    def __init__(self, peers):
        self._peers = peers  # the device's {public key: Peer}, read when rebuilding
        self._heap = []
        self._seq = 0  # tie-breaker: peers themselves are never compared

    def __len__(self):
        return len(self._heap)

    def next_deadline(self):
        """The earliest live deadline, or None."""
        heap = self._heap
        while heap:
            deadline, _, peer = heap[0]
            if peer.removed or peer.deadline != deadline:
                heap_pop(heap)  # stale entry: that peer re-armed or went away
                continue
            return deadline
        return None

    def reschedule(self, peer):
        """Re-read `peer`'s timers after anything that may have moved them."""
        d = peer.timers.next_deadline()
        if d != peer.deadline:
            peer.deadline = d
            if d is not None and not peer.removed:
                if len(self._heap) >= 2 * len(self._peers) + 32:
                    self._rebuild()  # holds `peer` at `d` now
                    return
                self._seq += 1
                heap_push(self._heap, (d, self._seq, peer))

    def _rebuild(self):
        live = []
        for p in self._peers.values():
            if p.deadline is not None:
                self._seq += 1
                live.append((p.deadline, self._seq, p))
        live.sort()  # a sorted list is a valid heap
        self._heap = live

    def due(self, now, limit):
        """Up to `limit` peers whose deadline is at or before `now`, each taken off the
        schedule (`peer.deadline` None) until rescheduled."""
        heap = self._heap
        due = []
        while heap and heap[0][0] <= now and len(due) < limit:
            deadline, _, peer = heap_pop(heap)
            if not peer.removed and peer.deadline == deadline:
                peer.deadline = None
                due.append(peer)
        return due
