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
- Anything unusual (IP options, fragments, unknown GSO types) falls back to plain packets.

Hot path: written for speed, not beauty.
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
def _key_struct(ihl, hl):
    """A Struct whose unpack_from(packet) is the flow key of a TCP segment with this IP header
    length `ihl` and IP+TCP header length `hl`: every header byte except what differs between
    segments of one flow (IP length, id and checksum, or IPv6 payload length; TCP sequence
    number, flags and checksum). Equal keys may merge (Linux GRO rules: addresses, ports,
    ACK, data offset, window, urgent pointer, options, TOS/TTL/DF or traffic class/flow label/
    hop limit, all equal)."""
    tail = "%ds" % (hl - ihl - 18)  # urgent pointer and options
    if ihl == 20:
        # 0-1 version/IHL, TOS | 2-5 length, id | 6-9 frag, TTL, proto | 10-11 checksum |
        # 12-23 addresses, ports | 24-27 seq | 28-32 ack, data offset | 33 flags | 34-35 window |
        # 36-37 checksum | 38- urgent pointer, options
        return struct.Struct("!2s4x4s2x12s4x5sx2s2x" + tail)
    # 0-3 version, class, flow | 4-5 payload length | 6-43 next header, hop limit, addresses,
    # ports | 44-47 seq | 48-52 ack, data offset | 53 flags | 54-55 window | 56-57 checksum | 58-
    return struct.Struct("!4s2x38s4x5sx2s2x" + tail)


_KEYS = {}
_SEQ = struct.Struct("!I").unpack_from


def _tcp_key(p):
    """(flow key, ihl, header length, payload length, seq, flags) for a mergeable TCP segment,
    or None. Hot path: one precompiled unpack builds the key."""
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
    unpack = _KEYS.get(layout)
    if unpack is None:
        unpack = _KEYS[layout] = _key_struct(ihl, hl).unpack_from
    return unpack(p), ihl, hl, plen, _SEQ(p, ihl + 4)[0], flags


def coalesce(packets):
    """Plain IP packets -> list of buffers to write to a TUN device with IFF_VNET_HDR.

    Order is kept within every flow: a packet that cannot be merged closes all open groups
    before it is placed, and a segment that does not continue its flow's group closes it."""
    out = []
    groups = {}  # flow key -> [index in out, packets, next seq, seg size, total, ihl, hl, ended]
    for p in packets:
        info = _tcp_key(p) if len(p) > 40 else None
        if info is None:
            for g in groups.values():
                out[g[0]] = _merged(g)
            groups = {}
            out.append(PLAIN_HDR + p)
            continue
        key, ihl, hl, plen, seq, flags = info
        g = groups.get(key)
        if g is not None:
            if (g[2] == seq and plen <= g[3] and not g[7]
                    and g[4] + plen <= MAX_SUPER - hl):
                g[1].append(p)
                g[2] = (seq + plen) & 0xFFFFFFFF
                g[4] += plen
                g[7] = plen < g[3] or bool(flags & _TCP_PSH)  # a short or PSH segment ends it
                continue
            out[g[0]] = _merged(g)
        groups[key] = [len(out), [p], (seq + plen) & 0xFFFFFFFF, plen, plen, ihl, hl,
                       bool(flags & _TCP_PSH)]
        out.append(None)
    for g in groups.values():
        out[g[0]] = _merged(g)
    return out


def _merged(g):
    segs, ihl, hl = g[1], g[5], g[6]
    if len(segs) == 1:
        return PLAIN_HDR + segs[0]
    first = segs[0]
    h = bytearray(first[:hl])
    total = hl + g[4]
    v4 = ihl == 20
    if v4:
        struct.pack_into("!H", h, 2, total)
        h[10] = h[11] = 0
        struct.pack_into("!H", h, 10, checksum(h[:20]))
        src, dst = h[12:16], h[16:20]
        gso = GSO_TCPV4
    else:
        struct.pack_into("!H", h, 4, total - 40)
        src, dst = h[8:24], h[24:40]
        gso = GSO_TCPV6
    h[ihl + 13] |= segs[-1][ihl + 13] & _TCP_PSH
    # Partial checksum: the pseudo-header sum, uncomplemented; the kernel adds the rest.
    struct.pack_into("!H", h, ihl + 16, fold(ones_sum(_pseudo(bytes(src), bytes(dst), 6,
                                                              total - ihl))))
    vnet = _VNET.pack(F_NEEDS_CSUM, gso, hl, g[3], ihl, 16)
    return b"".join([vnet, bytes(h)] + [s[hl:] for s in segs])
