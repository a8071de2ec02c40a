"""Local indices: the receiver index of every message we get names one entry here (paper
5.4.1; wireguard-go device/indextable.go, the kernel's index hashtable).

Rules kept here:
- An index is a random 32-bit number from the injected `rng`, never one in use (by a
  handshake or a keypair), so a message's receiver index finds at most one entry.
- A handshake in flight owns its index (`new_handshake`). When it becomes a keypair the same
  index moves to the keypair (`swap_to_keypair`): the peer's next message, whichever it is,
  names that index.
- Deleting checks the owner: an index that has since moved on (to a keypair, or to a newer
  handshake of the same number by chance) is left alone.

`keypairs` is read directly by the receive hot path (device.receive_trains); everything else
goes through the methods.
"""


class IndexTable:
    def __init__(self, rng):
        self._rng = rng
        self.handshakes = {}  # local index -> Peer with a handshake in flight
        self.keypairs = {}  # local index -> Keypair

    def _random_index(self):
        while True:
            r = self._rng(4)
            index = r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)
            if index not in self.handshakes and index not in self.keypairs:
                return index

    def new_handshake(self, peer):
        """A fresh index for a handshake `peer` starts; -> the index."""
        index = self._random_index()
        self.handshakes[index] = peer
        return index

    def swap_to_keypair(self, index, kp):
        """The handshake behind `index` became keypair `kp`: the index now names it."""
        if self.handshakes.get(index) is kp.peer:
            del self.handshakes[index]
        self.keypairs[index] = kp

    def delete_handshake(self, index, peer):
        """Forget `index` if it still names `peer`'s handshake (None: nothing to do)."""
        if index is not None and self.handshakes.get(index) is peer:
            del self.handshakes[index]

    def delete_keypair(self, kp):
        """Forget `kp`'s index if it still names `kp`."""
        if self.keypairs.get(kp.local_index) is kp:
            del self.keypairs[kp.local_index]

    def handshake(self, index):
        """The peer whose handshake in flight owns `index`, or None."""
        return self.handshakes.get(index)

    def keypair(self, index):
        """The keypair `index` names, or None."""
        return self.keypairs.get(index)
