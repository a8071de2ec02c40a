"""Cryptokey routing: which peer owns an address (paper section 2), IPv4 and IPv6.

Rules kept here:
- One owner per prefix: inserting a prefix another peer holds moves it (as `wg` expects).
- Lookup returns the owner of the longest matching prefix, or None.
- Prefixes are stored masked; `entries(peer)` lists a peer's prefixes in the order they were
  first given, as `wg show` prints them.

Structure: per family, one dict per prefix length present, keyed by the address shifted right
past the host bits; a lookup tries the lengths present, longest first. With the few distinct
lengths real configurations use, that is a handful of dict probes per packet (hot path).
Each peer's prefixes are a dict too (entry -> insertion number), so inserting, moving or
removing one prefix is O(1) whatever the table holds: a change of 100k prefixes costs 100k
dict operations, not 100k list scans. `entries` sorts by insertion number (MicroPython's
dicts keep no order), which only `wg show` pays for.
"""

from wgedge.core.ipaddr import mask


class AllowedIPs:
    def __init__(self):
        self.clear()

    def clear(self):
        self._tables = {4: {}, 16: {}}  # address length -> {cidr: {key: peer}}
        self._lengths = {4: [], 16: []}  # address length -> [(cidr, shift, table)] longest first
        self._by_peer = {}  # peer -> {(addr_len, cidr, key): insertion number}
        self._seq = 0

    def _relist(self, n):
        bits = n * 8
        tables = self._tables[n]
        order = sorted(tables.keys(), reverse=True)
        self._lengths[n] = [(cidr, bits - cidr, tables[cidr]) for cidr in order]

    def _key(self, addr, cidr):
        n = len(addr)
        if n != 4 and n != 16:
            raise ValueError("an address is 4 or 16 bytes")
        if cidr < 0 or cidr > n * 8:
            raise ValueError("prefix length %d out of range" % cidr)
        return n, int.from_bytes(addr, "big") >> (n * 8 - cidr)

    def insert(self, addr, cidr, peer):
        n, key = self._key(addr, cidr)
        tables = self._tables[n]
        table = tables.get(cidr)
        if table is None:
            table = tables[cidr] = {}
            self._relist(n)
        owner = table.get(key)
        if owner is peer:
            return
        entry = (n, cidr, key)
        if owner is not None:
            del self._by_peer[owner][entry]
        table[key] = peer
        mine = self._by_peer.get(peer)
        if mine is None:
            mine = self._by_peer[peer] = {}
        self._seq += 1
        mine[entry] = self._seq

    def _delete(self, n, cidr, key):
        table = self._tables[n][cidr]
        del table[key]
        if not table:
            del self._tables[n][cidr]
            self._relist(n)

    def remove(self, addr, cidr, peer):
        """Remove one prefix if `peer` owns it; True when something was removed."""
        n, key = self._key(addr, cidr)
        table = self._tables[n].get(cidr)
        if table is None or table.get(key) is not peer:
            return False
        del self._by_peer[peer][(n, cidr, key)]
        self._delete(n, cidr, key)
        return True

    def remove_peer(self, peer):
        for n, cidr, key in self._by_peer.pop(peer, {}):
            self._delete(n, cidr, key)

    def lookup(self, addr):
        """The peer owning the longest prefix that contains `addr` (bytes/memoryview)."""
        n = len(addr)
        value = int.from_bytes(addr, "big")
        for _, shift, table in self._lengths[n] if (n == 4 or n == 16) else ():
            peer = table.get(value >> shift)
            if peer is not None:
                return peer
        return None

    def entries(self, peer):
        mine = self._by_peer.get(peer, {})
        out = []
        for n, cidr, key in sorted(mine, key=mine.get):
            value = (key << (n * 8 - cidr)) if cidr else 0
            out.append((mask(value.to_bytes(n, "big"), cidr), cidr))
        return out

    def __len__(self):
        return sum(len(v) for v in self._by_peer.values())
