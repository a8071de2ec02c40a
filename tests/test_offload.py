"""Userspace TSO/GRO and checksums against naive references."""

import struct

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tests.inet import checksum as naive_checksum
from tests.inet import word_sum as naive_sum
from wgedge.io import offload


def tcp4(src, dst, seq, payload, flags=0x10, options=b"", ip_id=7, ack=1000):
    thl = 20 + len(options)
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, seq, ack, (thl // 4) << 4, flags, 500, 0, 0)
    tcp += options
    total = 20 + thl + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ip_id, 0x4000, 64, 6, 0,
                               bytes(src), bytes(dst)))
    struct.pack_into("!H", ip, 10, naive_checksum(bytes(ip)))
    pseudo = bytes(src) + bytes(dst) + struct.pack("!BBH", 0, 6, thl + len(payload))
    c = naive_checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    return bytes(ip) + tcp + payload


def tcp6(src, dst, seq, payload, flags=0x10, options=b""):
    thl = 20 + len(options)
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, seq, 1, (thl // 4) << 4, flags, 500, 0, 0)
    tcp += options
    ip = struct.pack("!IHBB16s16s", 6 << 28, thl + len(payload), 6, 64, src, dst)
    pseudo = src + dst + struct.pack("!IxxxB", thl + len(payload), 6)
    c = naive_checksum(pseudo + tcp + payload)
    return ip + tcp[:16] + struct.pack("!H", c) + tcp[18:] + payload


def flat(write):
    """A write as coalesce returns it (bytes, or buffers for one writev) -> bytes."""
    return b"".join(write) if isinstance(write, list) else write


def valid(pkt):
    if pkt[0] >> 4 == 4:
        ihl = (pkt[0] & 15) * 4
        assert naive_sum(pkt[:ihl]) == 0xFFFF, "IPv4 header checksum"
        src, dst, l4 = pkt[12:16], pkt[16:20], pkt[ihl:]
        pseudo = src + dst + struct.pack("!BBH", 0, pkt[9], len(l4))
    else:
        src, dst, l4 = pkt[8:24], pkt[24:40], pkt[40:]
        pseudo = src + dst + struct.pack("!IxxxB", len(l4), pkt[6])
    assert naive_sum(pseudo + l4) == 0xFFFF, "L4 checksum"
    return True


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_ones_sum_matches_naive(data):
    assert offload.ones_sum(data) % 0xFFFF == naive_sum(data) % 0xFFFF
    assert offload.checksum(data) in (naive_checksum(data), naive_checksum(data) ^ 0xFFFF)


def super_packet(v6, payload, mss, flags=0x18):
    if v6:
        pkt = tcp6(b"\xfd" + bytes(14) + b"\x01", b"\xfd" + bytes(14) + b"\x02", 1234, payload,
                   flags)
        gso = offload.GSO_TCPV6
        hl = 60
    else:
        pkt = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, payload, flags,
                   options=b"\x01\x01\x08\x0a" + bytes(8))
        gso = offload.GSO_TCPV4
        hl = 52
    # As the kernel hands it over: NEEDS_CSUM, and the TCP checksum field holding the
    # pseudo-header sum (uncomplemented) for the whole super-packet.
    b = bytearray(pkt)
    ihl = 40 if v6 else 20
    if v6:
        pseudo = bytes(b[8:40]) + struct.pack("!IxxxB", len(pkt) - 40, 6)
    else:
        pseudo = bytes(b[12:20]) + struct.pack("!BBH", 0, 6, len(pkt) - 20)
    struct.pack_into("!H", b, ihl + 16, naive_sum(pseudo))
    hdr = struct.pack("<BBHHHH", offload.F_NEEDS_CSUM, gso, hl, mss, ihl, 16)
    return hdr + bytes(b), pkt


@settings(max_examples=60, deadline=None)
@given(st.booleans(), st.integers(1, 20000), st.integers(500, 1400))
def test_tso_segments_are_valid_and_coalesce_back(v6, size, mss):
    payload = bytes(i % 251 for i in range(size))
    buf, _ = super_packet(v6, payload, mss)
    segs = offload.split_read(buf)
    assert all(valid(s) for s in segs)
    ihl = 40 if v6 else 20
    hl = ihl + (20 if v6 else 32)
    assert b"".join(s[hl:] for s in segs) == payload
    assert all(len(s) - hl == mss for s in segs[:-1])
    # PSH only on the last; sequence numbers contiguous
    assert all(not s[ihl + 13] & 0x08 for s in segs[:-1]) and segs[-1][ihl + 13] & 0x08
    # GRO back into one write with the same payload.
    writes = [flat(w) for w in offload.coalesce(segs)]
    assert len(writes) == 1
    w = writes[0]
    flags, gso, hlen, gso_size, cstart, coff = struct.unpack_from("<BBHHHH", w)
    body = w[10:]
    assert body[hl:] == payload
    if len(segs) > 1:
        assert flags == offload.F_NEEDS_CSUM and gso_size == mss and cstart == ihl
        assert gso == (offload.GSO_TCPV6 if v6 else offload.GSO_TCPV4)


def test_coalesce_keeps_order_and_refuses_what_linux_refuses():
    a = [10, 0, 0, 1]
    b = [10, 0, 0, 2]
    s1 = tcp4(a, b, 100, b"x" * 100)
    s2 = tcp4(a, b, 200, b"y" * 100)
    gap = tcp4(a, b, 400, b"z" * 100)  # not contiguous
    other_ack = tcp4(a, b, 500, b"w" * 100, ack=2000)
    fin = tcp4(a, b, 600, b"f" * 10, flags=0x11)
    udp = bytes([0x45, 0, 0, 28]) + bytes(5) + b"\x11" + bytes(18)
    writes = [flat(w) for w in offload.coalesce([s1, s2, gap, other_ack, udp, fin])]
    bodies = [w[10:] for w in writes]
    assert len(writes) == 5
    merged = bodies[0]
    assert merged[40:] == b"x" * 100 + b"y" * 100  # 20-byte IP + 20-byte TCP header
    assert bodies[1:] == [gap, other_ack, udp, fin]


def test_plain_packet_with_partial_checksum_completed():
    pkt = tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1, b"hello")
    b = bytearray(pkt)
    pseudo = bytes(b[12:20]) + struct.pack("!BBH", 0, 6, len(pkt) - 20)
    struct.pack_into("!H", b, 36, naive_sum(pseudo))
    hdr = struct.pack("<BBHHHH", offload.F_NEEDS_CSUM, 0, 0, 0, 20, 16)
    [out] = offload.split_read(hdr + bytes(b))
    assert out == pkt


@settings(max_examples=400, deadline=None)
@given(st.booleans(), st.integers(0, 10), st.integers(0, 99), st.integers(1, 255))
def test_flow_key_ignores_exactly_what_differs_between_segments(v6, optwords, pos, xor):
    """Two segments have the same flow key iff their headers differ only in the fields that
    change along a flow: IP length, id, checksum (IPv6 payload length), TCP sequence number,
    flags and checksum."""
    options = bytes(range(1, 1 + 4 * optwords))
    if v6:
        seg = tcp6(b"\xfd" + bytes(14) + b"\x01", b"\xfd" + bytes(14) + b"\x02", 1234,
                   b"p" * 100, 0x10, options=options)
        ihl, varying = 40, {4, 5}
    else:
        seg = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, b"p" * 100, 0x10, options=options)
        ihl, varying = 20, {2, 3, 4, 5, 10, 11}
    hl = ihl + 20 + len(options)
    varying |= {ihl + 4, ihl + 5, ihl + 6, ihl + 7, ihl + 13, ihl + 16, ihl + 17}
    pos %= hl
    other = bytearray(seg)
    other[pos] ^= xor
    a, b = offload._tcp_key(seg), offload._tcp_key(bytes(other))
    assert a is not None
    assume(b is not None and b[2] == hl)  # still a mergeable segment of the same layout
    assert (a[0] == b[0]) == (pos in varying)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([100, 100, 100, 37, 1]), st.sampled_from(
    [0x10, 0x10, 0x10, 0x18, 0x11, 0x00, 0x12]), st.booleans()), max_size=40))
@example([(0, 100, 0x10, False), (0, 100, 0x18, False), (0, 100, 0x10, False)])  # PSH ends
@example([(1, 100, 0x10, False), (1, 37, 0x10, False), (1, 37, 0x10, False)])  # so does short
def test_coalesce_keeps_every_flows_bytes_in_order(steps):
    """Segments of three flows (one IPv6), interleaved, with gaps, odd flags and sizes: each
    flow's payload leaves in the order it came, merged writes hold only contiguous ACK
    segments of one flow, and every merged header is a valid TCP/IP header for its length."""
    flows = [
        lambda seq, data, flags: tcp4([10, 0, 0, 1], [10, 0, 0, 2], seq, data, flags),
        lambda seq, data, flags: tcp4([10, 0, 0, 3], [10, 0, 0, 2], seq, data, flags,
                                      options=b"\x01\x01\x08\x0a" + bytes(8)),
        lambda seq, data, flags: tcp6(b"\xfd" + bytes(14) + b"\x01",
                                      b"\xfd" + bytes(14) + b"\x02", seq, data, flags),
    ]
    seqs = [1000, 5000, 9000]
    packets, sent = [], {0: [], 1: [], 2: []}
    for i, (flow, size, flags, gap) in enumerate(steps):
        data = bytes([i]) * size
        seq = seqs[flow] + (7 if gap else 0)
        packets.append(flows[flow](seq, data, flags))
        seqs[flow] = seq + size
        sent[flow].append((seq, data, flags))
    for w in offload.coalesce(packets):
        body = flat(w)[10:]
        v6 = body[0] >> 4 == 6
        ihl = 40 if v6 else 20
        hl = ihl + (body[ihl + 12] >> 4) * 4
        flow = 2 if v6 else (0 if body[12:16] == bytes([10, 0, 0, 1]) else 1)
        payload = bytes(body[hl:])
        seq = struct.unpack_from("!I", body, ihl + 4)[0]
        # The write holds the flow's next input segments, back to back in sequence space.
        off, used = 0, []
        while off < len(payload):
            seg_seq, data, flags = sent[flow].pop(0)
            assert seg_seq == seq + off and payload[off:off + len(data)] == data
            off += len(data)
            used.append((flags, len(data)))
        assert off == len(payload)
        if len(used) > 1:  # only ACK segments merge; PSH or a shorter size only as the last
            assert all(f & 0x37 == 0x10 for f, _ in used)
            assert not any(f & 8 or n != used[0][1] for f, n in used[:-1])
            assert used[-1][1] <= used[0][1]
        if isinstance(w, list):
            flags, gso, _, gso_size, cstart, coff = struct.unpack_from("<BBHHHH", w[0])
            assert flags == offload.F_NEEDS_CSUM and (cstart, coff) == (ihl, 16)
            assert body[ihl + 13] & 0x37 == 0x10  # ACK, no SYN/FIN/RST/URG
            if not v6:
                assert naive_sum(body[:20]) == 0xFFFF
                assert struct.unpack_from("!H", body, 2)[0] == len(body)
            else:
                assert struct.unpack_from("!H", body, 4)[0] == len(body) - 40
            assert all(len(p) <= gso_size for p in w[2:])
    assert not any(sent.values())


def test_interleaved_flows_each_merge_whole():
    """Two flows taking turns, two segments at a time, still merge into one write each
    (Linux GRO holds one group per flow in a batch, and so does coalesce)."""
    a1, a2, b = [10, 0, 0, 1], [10, 0, 0, 3], [10, 0, 0, 2]
    packets = []
    for i in range(0, 6, 2):
        packets += [tcp4(a1, b, 100 + 50 * j, b"a" * 50) for j in (i, i + 1)]
        packets += [tcp4(a2, b, 900 + 70 * j, b"b" * 70) for j in (i, i + 1)]
    writes = [flat(w) for w in offload.coalesce(packets)]
    assert len(writes) == 2
    assert writes[0][10 + 40:] == b"a" * 300 and writes[1][10 + 40:] == b"b" * 420


def udp4(src, dst, payload, sport=40000, csum=True, ip_id=7):
    ulen = 8 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ip_id, 0x4000, 64, 17, 0,
                               bytes(src), bytes(dst)))
    struct.pack_into("!H", ip, 10, naive_checksum(bytes(ip)))
    udp = struct.pack("!HHHH", sport, 5201, ulen, 0)
    c = 0
    if csum:
        c = naive_checksum(bytes(src) + bytes(dst) + struct.pack("!BBH", 0, 17, ulen) + udp
                           + payload) or 0xFFFF
    return bytes(ip) + udp[:6] + struct.pack("!H", c) + payload


def udp6(src, dst, payload, sport=40000):
    ulen = 8 + len(payload)
    ip = struct.pack("!IHBB16s16s", 6 << 28, ulen, 17, 64, src, dst)
    udp = struct.pack("!HHHH", sport, 5201, ulen, 0)
    c = naive_checksum(src + dst + struct.pack("!IxxxB", ulen, 17) + udp + payload) or 0xFFFF
    return ip + udp[:6] + struct.pack("!H", c) + payload


def kernel_cut_udp(write):
    """What Linux does with a merged GSO_UDP_L4 write, for checking it: the UDP checksum
    field must hold the pseudo-header sum over the whole length; each datagram then gets
    its own lengths and full checksums. -> list of datagrams."""
    flags, gso, hl, size, cstart, coff = struct.unpack_from("<BBHHHH", write[0])
    assert (flags, gso) == (offload.F_NEEDS_CSUM, offload.GSO_UDP_L4)
    body = b"".join(write)[10:]
    v6 = body[0] >> 4 == 6
    ihl = 40 if v6 else 20
    assert (hl, cstart, coff) == (ihl + 8, ihl, 6)
    ulen = len(body) - ihl
    assert struct.unpack_from("!H", body, ihl + 4)[0] == ulen
    if v6:
        pseudo = body[8:40] + struct.pack("!IxxxB", ulen, 17)
        assert struct.unpack_from("!H", body, 4)[0] == ulen
    else:
        pseudo = body[12:20] + struct.pack("!BBH", 0, 17, ulen)
        assert naive_sum(body[:20]) == 0xFFFF and struct.unpack_from("!H", body, 2)[0] == len(body)
    assert struct.unpack_from("!H", body, ihl + 6)[0] == naive_sum(pseudo)
    payload = body[hl:]
    assert 1 < -(-len(payload) // size) <= offload.UDP_MAX_SEGMENTS
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off:off + size]
        if v6:
            out.append(udp6(body[8:24], body[24:40], chunk,
                            sport=struct.unpack_from("!H", body, ihl)[0]))
        else:
            out.append(udp4(body[12:16], body[16:20], chunk,
                            sport=struct.unpack_from("!H", body, ihl)[0]))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([64, 64, 64, 1400, 30, 1])),
                max_size=150))
@example([(0, 64)] * 70 + [(0, 30)])  # more than UDP_MAX_SEGMENTS in a row
@example([(0, 64), (0, 30), (0, 64), (1, 64), (0, 64)])  # a short one ends a group
def test_udp_datagrams_merge_per_flow_and_cut_back(steps):
    """UDP flows (IPv4, IPv6, IPv4 without checksum) interleaved with TCP: cut back as the
    kernel cuts, each flow's datagrams come out whole, in order; merged writes hold one
    flow's datagrams of one size (the last may be shorter), at most UDP_MAX_SEGMENTS; a
    datagram without checksum and every TCP segment are written untouched or as before."""
    a, b = [10, 0, 0, 1], [10, 0, 0, 2]
    v6a, v6b = b"\xfd" + bytes(14) + b"\x01", b"\xfd" + bytes(14) + b"\x02"
    flows = [lambda d: udp4(a, b, d), lambda d: udp6(v6a, v6b, d),
             lambda d: udp4(a, b, d, sport=40001, csum=False),
             lambda d: tcp4(a, b, 1000, d, flags=0x18)]
    packets = []
    for i, (flow, size) in enumerate(steps):
        packets.append(flows[flow](bytes([i % 256]) * size))
    got = []
    for w in offload.coalesce(packets, udp=True):
        if isinstance(w, tuple):
            sizes = [len(x) for x in w[1:]]
            assert all(n == sizes[0] for n in sizes[:-1]) and sizes[-1] <= sizes[0]
            got += kernel_cut_udp(w)
        else:
            assert isinstance(w, bytes) and w[:10] == offload.PLAIN_HDR
            got.append(w[10:])
    # Each flow's packets in order (flows are told apart by version, protocol and port).
    def flow_of(p):
        return (p[0] >> 4, p[9] if p[0] >> 4 == 4 else p[6], p[20:22] if p[0] >> 4 == 4 else b"")
    for f in {flow_of(p) for p in packets}:
        sent = [p for p in packets if flow_of(p) == f]
        out = [p for p in got if flow_of(p) == f]
        if f[1] == 17 and f != flow_of(flows[2](b"x")):  # merged and cut: same bytes but IP id
            assert [p[20 if f[0] == 4 else 40:] for p in out] == \
                [p[20 if f[0] == 4 else 40:] for p in sent]
            assert all(valid(p) for p in out)
        else:
            assert out == sent
    # Without GSO_UDP_L4 in the kernel nothing UDP is merged.
    assert not any(isinstance(w, tuple) for w in offload.coalesce(packets, udp=False))


def test_unmerge_udp_gives_back_valid_datagrams():
    packets = [udp4([10, 0, 0, 1], [10, 0, 0, 2], bytes([i]) * 100) for i in range(5)]
    packets.append(udp4([10, 0, 0, 1], [10, 0, 0, 2], b"z" * 33))
    (w,) = offload.coalesce(packets, udp=True)
    back = offload.unmerge_udp(w)
    assert [p[20:] for p in back] == [p[20:] for p in packets]
    assert all(valid(p) for p in back)
