"""indextable.py on its own: random unique indices, the handshake-to-keypair swap, and
deletes that check the owner."""

from wgedge.core.indextable import IndexTable


class Scripted:
    """rng that hands out the given 4-byte values in turn."""

    def __init__(self, *values):
        self.values = list(values)

    def __call__(self, n):
        assert n == 4
        return self.values.pop(0).to_bytes(4, "little")


class Peer:
    pass


class Keypair:
    def __init__(self, peer, local_index):
        self.peer = peer
        self.local_index = local_index


def test_indices_are_random_and_never_reused_while_taken():
    a, b = Peer(), Peer()
    table = IndexTable(Scripted(5, 5, 5, 9, 9, 0xFFFFFFFF))
    assert table.new_handshake(a) == 5
    assert table.new_handshake(b) == 9  # 5 is taken: drawn again
    kp = Keypair(a, 5)
    table.swap_to_keypair(5, kp)
    assert table.new_handshake(b) == 0xFFFFFFFF  # 9 taken by a handshake, and 5 by a keypair
    assert table.handshake(9) is b and table.handshake(0xFFFFFFFF) is b


def test_swap_moves_the_index_from_handshake_to_keypair():
    a = Peer()
    table = IndexTable(Scripted(7))
    index = table.new_handshake(a)
    kp = Keypair(a, index)
    table.swap_to_keypair(index, kp)
    assert table.handshake(index) is None and table.keypair(index) is kp
    assert table.handshakes == {} and table.keypairs == {index: kp}


def test_deletes_check_the_owner():
    a, b = Peer(), Peer()
    table = IndexTable(Scripted(7, 8))
    i = table.new_handshake(a)
    table.delete_handshake(i, b)  # not b's
    assert table.handshake(i) is a
    table.delete_handshake(None, a)  # no index: nothing
    table.delete_handshake(i, a)
    assert table.handshake(i) is None
    j = table.new_handshake(a)
    old = Keypair(a, j)
    table.swap_to_keypair(j, old)
    table.delete_keypair(Keypair(a, j))  # another keypair that claims the same index
    assert table.keypair(j) is old
    table.delete_keypair(old)
    assert table.keypair(j) is None
    table.delete_keypair(old)  # twice: nothing
    assert table.handshakes == {} and table.keypairs == {}
