"""Kernel offloads done right in userspace: virtio-net headers, TCP segmentation (TSO), TCP
receive coalescing (GRO) and Internet checksums.

Rules kept here:
- A TUN device opened with IFF_VNET_HDR prefixes every packet with a 10-byte virtio_net_hdr.
  Reading with TSO offloads on yields TCP "super-packets" up to 64 KiB that must be cut into
  MSS-sized segments, each with a correct IPv4 header checksum and TCP checksum, before they
  are encrypted: the peer (any WireGuard) delivers them to a stack that may check them.
- Writing, consecutive in-order TCP segments of one flow are merged into one super-packet
  (GRO) marked NEEDS_CSUM with the pseudo-header sum in place, so the kernel finishes the
  checksum and its TCP stack handles one packet instead of dozens. Only segments that Linux
  GRO would merge are merged: same addresses, ports, ACK, options and IP fields, contiguous
  sequence numbers, no SYN/FIN/RST/URG, equal sizes except the last.
- Where the kernel takes GSO_UDP_L4 writes (Linux 6.2, with TUN's USO support), consecutive
  UDP datagrams of one flow with one payload size (the last may be shorter) are merged the
  same way, and the kernel cuts them apart again: one write per burst instead of one each.
- Anything unusual (IP options, fragments, unknown GSO types) falls back to plain packets.

Hot path: written for speed, not beauty. One module of ~430 lines on purpose: reading (TSO)
and writing (GRO) share the checksum, mask and header code, and `coalesce` is one hot loop.
"""

import struct

VNET_HDR_LEN = 10
_VNET = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
F_NEEDS_CSUM = 1
F_DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80
PLAIN_HDR = _VNET.pack(0, GSO_NONE, 0, 0, 0, 0)
MAX_SUPER = 65535
UDP_MAX_SEGMENTS = 64  # the kernel's limit for one UDP GSO packet

_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_PSH, _TCP_ACK, _TCP_URG, _TCP_ECE, _TCP_CWR = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
_NO_MERGE = _TCP_FIN | _TCP_SYN | _TCP_RST | _TCP_URG | _TCP_ECE | _TCP_CWR


def ones_sum(data):
    """The 16-bit one's complement sum of `data` (odd lengths padded with a zero byte), as an
    int in 0..0xFFFF. Uses 65536 = 1 (mod 65535): one big-integer remainder, no loop."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    n = int.from_bytes(data, "big")
    if not n:
        return 0
    r = n % 0xFFFF
    return r if r else 0xFFFF


def fold(s):
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(*parts):
    """Internet checksum over even-length parts (only the last may be odd)."""
    return ~fold(sum(ones_sum(p) for p in parts)) & 0xFFFF


def _pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


# --- reading: virtio header + (super-)packet -> plain packets -----------------------------------
def split_read(buf):
    """One TUN read with a virtio header -> list of ready-to-encrypt IP packets."""
    if len(buf) <= VNET_HDR_LEN:
        return []
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = _VNET.unpack_from(buf, 0)
    pkt = buf[VNET_HDR_LEN:]
    gso = gso_type & ~GSO_ECN
    if gso == GSO_NONE:
        if flags & F_NEEDS_CSUM:
            pkt = _finish_csum(pkt, csum_start, csum_offset)
        return [pkt]
    if gso in (GSO_TCPV4, GSO_TCPV6) and gso_size:
        return segment_tcp(pkt, gso_size)
    if gso in (GSO_UDP_L4,) and gso_size:
        return segment_udp(pkt, gso_size)
    return [pkt]  # unknown GSO type: hand it on whole (it will be dropped if too big)


def _finish_csum(pkt, start, offset):
    if start + offset + 2 > len(pkt):
        return pkt
    b = bytearray(pkt)
    s = ~fold(ones_sum(memoryview(b)[start:])) & 0xFFFF
    b[start + offset] = s >> 8
    b[start + offset + 1] = s & 0xFF
    return bytes(b)


def segment_tcp(pkt, mss):
    v4 = pkt[0] >> 4 == 4
    if v4:
        ihl = (pkt[0] & 15) * 4
        src, dst = pkt[12:16], pkt[16:20]
    else:
        if pkt[6] != 6:  # extension headers: not handled, pass through
            return [pkt]
        ihl = 40
        src, dst = pkt[8:24], pkt[24:40]
    thl = (pkt[ihl + 12] >> 4) * 4
    hl = ihl + thl
    payload = memoryview(pkt)[hl:]
    total = len(payload)
    if total <= mss:
        return [_finish_csum(pkt, ihl, 16)]
    header = bytearray(pkt[:hl])
    seq = int.from_bytes(pkt[ihl + 4:ihl + 8], "big")
    flags = pkt[ihl + 13]
    ip_id = (pkt[4] << 8) | pkt[5] if v4 else 0
    out = []
    pack_into = struct.pack_into
    i = 0
    for off in range(0, total, mss):
        chunk = payload[off:off + mss]
        n = len(chunk)
        last = off + mss >= total
        h = bytearray(header)
        if v4:
            pack_into("!HH", h, 2, hl + n, (ip_id + i) & 0xFFFF)
            h[10] = h[11] = 0
            pack_into("!H", h, 10, checksum(h[:ihl]))
        else:
            pack_into("!H", h, 4, thl + n)
        pack_into("!I", h, ihl + 4, (seq + off) & 0xFFFFFFFF)
        f = flags
        if not last:
            f &= ~(_TCP_FIN | _TCP_PSH)
        if i:
            f &= ~_TCP_CWR
        h[ihl + 13] = f
        h[ihl + 16] = h[ihl + 17] = 0
        tcp_sum = fold(ones_sum(_pseudo(src, dst, 6, thl + n)) + ones_sum(h[ihl:])
                       + ones_sum(chunk))
        pack_into("!H", h, ihl + 16, ~tcp_sum & 0xFFFF)
        out.append(bytes(h) + chunk)
        i += 1
    return out


def segment_udp(pkt, size):
    v4 = pkt[0] >> 4 == 4
    ihl = (pkt[0] & 15) * 4 if v4 else 40
    src, dst = (pkt[12:16], pkt[16:20]) if v4 else (pkt[8:24], pkt[24:40])
    hl = ihl + 8
    payload = memoryview(pkt)[hl:]
    header = bytearray(pkt[:hl])
    ip_id = (pkt[4] << 8) | pkt[5] if v4 else 0
    out = []
    for i, off in enumerate(range(0, len(payload), size)):
        chunk = payload[off:off + size]
        n = len(chunk)
        h = bytearray(header)
        if v4:
            struct.pack_into("!HH", h, 2, hl + n, (ip_id + i) & 0xFFFF)
            h[10] = h[11] = 0
            struct.pack_into("!H", h, 10, checksum(h[:ihl]))
        else:
            struct.pack_into("!H", h, 4, 8 + n)
        struct.pack_into("!HH", h, ihl + 4, 8 + n, 0)
        s = ~fold(ones_sum(_pseudo(src, dst, 17, 8 + n)) + ones_sum(h[ihl:])
                  + ones_sum(chunk)) & 0xFFFF
        struct.pack_into("!H", h, ihl + 6, s or 0xFFFF)
        out.append(bytes(h) + chunk)
    return out


# --- writing: plain packets -> (virtio header + packet) writes, TCP segments coalesced --------
def _flow_mask(ihl, hl):
    """An int mask over a segment's first `hl` bytes (IP header `ihl` bytes) that clears what
    differs between segments of one flow: IP length, id and checksum (IPv6 payload length);
    TCP sequence number, flags and checksum. `int.from_bytes(p[:hl]) & mask` is then the flow
    key: equal keys may merge (Linux GRO rules: addresses, ports, ACK, data offset, window,
    urgent pointer, options, TOS/TTL/DF or traffic class/flow label/hop limit, all equal).
    Keys of different layouts never collide: the first byte (0x45, 0x6.) is kept, so a key's
    bit length gives `hl` and its top byte the IP version."""
    varying = {4, 5} if ihl == 40 else {2, 3, 4, 5, 10, 11}
    varying |= {ihl + 4, ihl + 5, ihl + 6, ihl + 7, ihl + 13, ihl + 16, ihl + 17}
    return int.from_bytes(bytes(0 if i in varying else 0xFF for i in range(hl)), "big")


def _udp_mask(ihl):
    """The UDP counterpart of _flow_mask: ignores the IP length, id and checksum (IPv6
    payload length) and the UDP length and checksum; keeps addresses, ports, protocol,
    TOS/TTL/DF (traffic class, flow label, hop limit). A UDP key is ihl + 8 bytes long, a TCP
    key at least ihl + 20: they never collide."""
    varying = {4, 5} if ihl == 40 else {2, 3, 4, 5, 10, 11}
    varying |= {ihl + 4, ihl + 5, ihl + 6, ihl + 7}
    return int.from_bytes(bytes(0 if i in varying else 0xFF for i in range(ihl + 8)), "big")


_MASKS = {}  # (ihl << 8) | hl -> mask
_SEQ = struct.Struct("!I").unpack_from


def _tcp_key(p):
    """(flow key, ihl, header length, payload length, seq, flags) for a mergeable TCP segment,
    or None. `coalesce` does the same inline; this is the readable form, kept for tests."""
    b0 = p[0]
    if b0 == 0x45:
        if p[9] != 6 or (p[6] & 0x3F) or p[7]:  # not TCP, or a fragment
            return None
        ihl = 20
    elif b0 >> 4 == 6:
        if p[6] != 6:
            return None
        ihl = 40
    else:
        return None
    flags = p[ihl + 13]
    if flags & _NO_MERGE or not flags & _TCP_ACK:
        return None
    hl = ihl + (p[ihl + 12] >> 4) * 4
    plen = len(p) - hl
    if plen <= 0 or hl < ihl + 20:
        return None
    layout = (ihl << 8) | hl
    mask = _MASKS.get(layout)
    if mask is None:
        mask = _MASKS[layout] = _flow_mask(ihl, hl)
    return int.from_bytes(p[:hl], "big") & mask, ihl, hl, plen, _SEQ(p, ihl + 4)[0], flags


class _Group:
    """Segments of one flow being merged into one write: out[index] is reserved for it."""

    __slots__ = ("index", "segments", "next_seq", "size", "total", "ihl", "hl", "ended")

    def __init__(self, index, segment, next_seq, size, ihl, hl, ended):
        self.index = index
        self.segments = [segment]
        self.next_seq = next_seq  # TCP: the sequence number that continues the group
        self.size = size  # payload bytes of the first segment: later ones may not be longer
        self.total = size  # payload bytes so far
        self.ihl = ihl  # IP header length
        self.hl = hl  # IP + TCP/UDP header length
        self.ended = ended  # a short (or TCP PSH) segment ended it: nothing more may join


_TCP = 6
_UDP = 17


def coalesce(packets, udp=False):
    """Plain IP packets -> list of writes for a TUN device with IFF_VNET_HDR. A write is bytes
    (virtio header + packet) or, for merged segments, buffers for one writev: a list for TCP,
    a tuple for UDP (merged only when `udp` is true: the kernel must take GSO_UDP_L4 writes).

    UDP datagrams merge as Linux's UDP GRO merges them: one flow (addresses, ports, IP
    fields), equal payload sizes but a shorter last one, which ends the group, at most
    UDP_MAX_SEGMENTS, and only with a checksum (IPv4's optional zero one stays as it is).

    Order is kept within every flow: a packet that cannot be merged closes all open groups
    before it is placed, and a segment that does not continue its flow's group closes it.
    Hot path, written for speed: `_tcp_key` inlined, and a packet is first tried against the
    group the previous packet joined (its key under that group's layout): a match proves the
    same IP version, header lengths, protocol and fragment bits, leaving only flags and
    sequence to check."""
    out = []
    groups = {}  # flow key -> _Group
    masks = _MASKS
    from_bytes = int.from_bytes
    seq_of = _SEQ
    mergeable = _NO_MERGE | _TCP_ACK  # of these flags, exactly ACK
    ack = _TCP_ACK
    psh = _TCP_PSH
    # The TCP group the previous packet joined, its state held in locals while packets keep
    # joining it (written back to the group when one does not).
    cur = None
    ckey = cmask = chl = cflags = cseq = climit = cnext = csize = ctotal = 0
    cended = False
    cappend = None
    for p in packets:
        n = len(p)
        if cur is not None:
            if from_bytes(p[:chl], "big") & cmask == ckey:
                flags = p[cflags]
                seq = seq_of(p, cseq)[0]
                plen = n - chl
                if (seq == cnext and flags & mergeable == ack and 0 < plen <= csize
                        and not cended and ctotal + plen <= climit):
                    cappend(p)
                    cnext = (seq + plen) & 0xFFFFFFFF
                    ctotal += plen
                    cended = plen < csize or flags & psh  # a short or PSH segment ends it
                    continue
            cur.next_seq = cnext
            cur.total = ctotal
            cur.ended = cended
            cur = None
        # The transport protocol (0: not mergeable) and the IP header length.
        proto = ihl = 0
        if n > 40:
            b0 = p[0]
            if b0 == 0x45:
                if not (p[6] & 0x3F) and not p[7]:  # not a fragment
                    proto = p[9]
                    ihl = 20
            elif b0 >> 4 == 6:
                proto = p[6]
                ihl = 40
        if proto == _UDP and udp:
            hl = ihl + 8
            if (n > hl and (p[ihl + 6] or p[ihl + 7])
                    and (p[ihl + 4] << 8) | p[ihl + 5] == n - ihl):
                layout = (ihl << 8) | hl
                mask = masks.get(layout)
                if mask is None:
                    mask = masks[layout] = _udp_mask(ihl)
                key = from_bytes(p[:hl], "big") & mask
                plen = n - hl
                g = groups.get(key)
                if g is not None:
                    if (plen <= g.size and not g.ended and len(g.segments) < UDP_MAX_SEGMENTS
                            and g.total + plen <= MAX_SUPER - hl):
                        g.segments.append(p)
                        g.total += plen
                        g.ended = plen < g.size
                        continue
                    out[g.index] = _merged(g)
                groups[key] = _Group(len(out), p, 0, plen, ihl, hl, False)
                out.append(None)
                continue
            proto = 0  # no checksum, or lengths that disagree: written as it is
        if proto == _TCP:
            flags = p[ihl + 13]
            hl = ihl + (p[ihl + 12] >> 4) * 4
            if flags & mergeable != ack or hl < ihl + 20 or hl >= n:
                proto = 0
        if proto != _TCP:
            for g in groups.values():
                out[g.index] = _merged(g)
            groups = {}
            out.append(PLAIN_HDR + p)
            continue
        layout = (ihl << 8) | hl
        mask = masks.get(layout)
        if mask is None:
            mask = masks[layout] = _flow_mask(ihl, hl)
        key = from_bytes(p[:hl], "big") & mask
        plen = n - hl
        seq = seq_of(p, ihl + 4)[0]
        g = groups.get(key)
        if g is not None:
            if (g.next_seq == seq and plen <= g.size and not g.ended
                    and g.total + plen <= MAX_SUPER - hl):
                g.segments.append(p)
                g.next_seq = (seq + plen) & 0xFFFFFFFF
                g.total += plen
                g.ended = plen < g.size or flags & psh
            else:
                out[g.index] = _merged(g)
                g = None
        if g is None:
            g = groups[key] = _Group(len(out), p, (seq + plen) & 0xFFFFFFFF, plen, ihl, hl,
                                     flags & psh)
            out.append(None)
        cur, ckey, cmask, chl, cflags, cseq, climit = (g, key, mask, hl, ihl + 13, ihl + 4,
                                                       MAX_SUPER - hl)
        cnext, csize, ctotal, cended, cappend = (g.next_seq, g.size, g.total, g.ended,
                                                 g.segments.append)
    if cur is not None:
        cur.total = ctotal
    for g in groups.values():
        out[g.index] = _merged(g)
    return out


def _set_ip_length(h, ihl, total, proto):
    """Make the IP header in `h` (IPv4 without options, or IPv6) that of a `total`-byte
    packet, IPv4 header checksum included; -> the unfolded pseudo-header sum for `proto`."""
    if ihl == 20:
        struct.pack_into("!H", h, 2, total)
        h[10] = h[11] = 0
        struct.pack_into("!H", h, 10, ~fold(ones_sum(h[:20])) & 0xFFFF)
        return ones_sum(h[12:20]) + proto + total - 20
    struct.pack_into("!H", h, 4, total - 40)
    return ones_sum(h[8:40]) + proto + total - 40


def _merged(g):
    segs, ihl, hl = g.segments, g.ihl, g.hl
    if len(segs) == 1:
        return PLAIN_HDR + segs[0]
    first = segs[0]
    h = bytearray(first[:hl])
    total = hl + g.total
    if hl == ihl + 8:
        return _merged_udp(g, h, total)
    pseudo = _set_ip_length(h, ihl, total, 6)
    gso = GSO_TCPV4 if ihl == 20 else GSO_TCPV6
    h[ihl + 13] |= segs[-1][ihl + 13] & _TCP_PSH
    # Partial checksum: the pseudo-header sum, uncomplemented; the kernel adds the rest.
    struct.pack_into("!H", h, ihl + 16, fold(pseudo))
    # One writev: the header, then each payload (copied slices: cheaper than memoryviews
    # here, and the kernel then copies once instead of after a join).
    parts = [_VNET.pack(F_NEEDS_CSUM, gso, hl, g.size, ihl, 16) + h]
    parts += [s[hl:] for s in segs]
    return parts


def _merged_udp(g, h, total):
    """One GSO_UDP_L4 write: the first datagram's headers with the lengths of the whole, the
    UDP checksum field holding the pseudo-header sum (the kernel cuts the payload at `size`
    and finishes each datagram's lengths and checksums), then each payload."""
    ihl, hl = g.ihl, g.hl
    pseudo = _set_ip_length(h, ihl, total, 17)
    struct.pack_into("!HH", h, ihl + 4, total - ihl, fold(pseudo))
    parts = [_VNET.pack(F_NEEDS_CSUM, GSO_UDP_L4, hl, g.size, ihl, 6) + h]
    parts += [s[hl:] for s in g.segments]
    return tuple(parts)


def unmerge_udp(parts):
    """A merged UDP write (coalesce's tuple) -> its datagrams, each with its own lengths and
    checksums, for a kernel that refused the write."""
    size = _VNET.unpack_from(parts[0], 0)[3]
    return segment_udp(b"".join(parts)[VNET_HDR_LEN:], size)
