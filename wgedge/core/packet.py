"""Inner IP packet headers: just enough to route and to check a decrypted packet.

Hot path: called once per packet; kept to a few index operations.
"""


def inner_len(p):
    """Real length of the IPv4/IPv6 packet at the start of `p` (padding excluded), or -1."""
    n = len(p)
    if n < 20:
        return -1
    version = p[0] >> 4
    if version == 4:
        total = (p[2] << 8) | p[3]
        if total < 20 or total > n or (p[0] & 15) < 5:
            return -1
        return total
    if version == 6 and n >= 40:
        total = 40 + ((p[4] << 8) | p[5])
        return total if total <= n else -1
    return -1


def source_address(p):
    n = len(p)
    if n >= 20 and p[0] >> 4 == 4:
        return p[12:16]
    if n >= 40 and p[0] >> 4 == 6:
        return p[8:24]
    return None


def destination_address(p):
    n = len(p)
    if n >= 20 and p[0] >> 4 == 4:
        return p[16:20]
    if n >= 40 and p[0] >> 4 == 6:
        return p[24:40]
    return None
