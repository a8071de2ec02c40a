"""The TUN device against the real kernel, inside a throwaway namespace: merged UDP writes
(GSO_UDP_L4) arrive as the datagrams they were made of, and a kernel that refuses them gets
the datagrams one by one, with merging off from then on. Then, without a device, the policy
that decides whether a batch is merged at all (MergePolicy).

Local delivery does not check the checksums of a GSO packet's datagrams (the kernel
computes them from the seed it is given), so the seed itself is checked against a
reference in tests/test_offload.py."""

import json
import os
import struct
import subprocess
import sys

from tests.netns import ROOT
from tests.test_offload import flat
from wgedge.io import offload
from wgedge.io import tun as tunmod

SCRIPT = r'''
import errno, json, os, socket, sys
sys.path.insert(0, sys.argv[1])
from tests.test_offload import udp4, udp6
from wgedge.io import tun as tunmod

name = sys.argv[2]
t = tunmod.Tun(name)
os.system("ip addr add 10.77.0.1/24 dev %s && ip addr add fd77::1/64 dev %s nodad"
          " && ip link set %s up" % (name, name, name))
rx4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx4.bind(("10.77.0.1", 5201))
rx6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
rx6.bind(("fd77::1", 5201))
for s in (rx4, rx6):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.settimeout(1)
v6src, v6dst = socket.inet_pton(socket.AF_INET6, "fd77::2"), socket.inet_pton(socket.AF_INET6, "fd77::1")

def burst(tag):
    pkts, want4, want6 = [], [], []
    for i in range(150):
        n = (700 if i < 149 else 301) if i % 3 else 64  # two flows of their own sizes
        data = (b"%s-%d-" % (tag, i)).ljust(n, b"x")
        if i % 3:
            pkts.append(udp4([10, 77, 0, 2], [10, 77, 0, 1], data))
            want4.append(data)
        else:
            pkts.append(udp6(v6src, v6dst, data))
            want6.append(data)
    return pkts, want4, want6

def receive(sock, count):
    got = []
    try:
        while len(got) < count:
            got.append(sock.recv(4096))
    except socket.timeout:
        pass
    return got

result = {"offloads": list(t.offloads), "udp_gro": t.udp_gro}
pkts, want4, want6 = burst(b"merged")
writes = []
real_writev = os.writev
def counting_writev(fd, parts):
    writes.append(len(parts) - 1)
    return real_writev(fd, parts)
os.writev = counting_writev
t.write_batch(pkts)
result["merged_writes"] = writes
result["merged_ok"] = (receive(rx4, len(want4)) == want4, receive(rx6, len(want6)) == want6)

def refusing_writev(fd, parts):  # a kernel without GSO_UDP_L4
    if isinstance(parts, tuple):
        raise OSError(errno.EINVAL, "Invalid argument")
    return real_writev(fd, parts)
os.writev = refusing_writev
pkts, want4, want6 = burst(b"refused")
t.write_batch(pkts)
result["after_refusal"] = {"udp_gro": t.udp_gro, "offloads": list(t.offloads),
                           "drops": t.write_drops}
result["refused_ok"] = (receive(rx4, len(want4)) == want4, receive(rx6, len(want6)) == want6)
print(json.dumps(result))
'''


def test_merged_udp_writes_arrive_whole_and_fallback_is_clean(nets):
    ns = nets.ns("tun")
    res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT, ROOT,
                          "wgt" + nets.tag],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    # This machine's kernel (6.x) takes GSO_UDP_L4 writes: a silent loss of the feature fails.
    assert r["udp_gro"] and "udp-gro-write" in r["offloads"], r
    # 100 IPv4 datagrams of one flow: 64 + 36 (the last one shorter); 50 IPv6 in one write.
    assert sorted(r["merged_writes"]) == [36, 50, 64], r
    assert r["merged_ok"] == [True, True]
    assert r["after_refusal"] == {"udp_gro": False, "offloads": ["gro-write"], "drops": 0}
    assert r["refused_ok"] == [True, True]


# --- MergePolicy: when the writes to TUN merge (no device needed) -----------------------------

def _segments(n, ts_every, seq=1000, ts=1):
    """`n` in-order TCP segments of one flow; the timestamp option changes every `ts_every`
    segments (what makes Linux GRO, and coalesce, stop merging)."""
    from tests.test_offload import tcp4

    out = []
    for i in range(n):
        opts = struct.pack("!BBBBII", 1, 1, 8, 10, ts + i // ts_every, 7)
        out.append(tcp4(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", seq + i * 100, b"x" * 100,
                        options=opts))
    return out


def test_merge_policy_keeps_merging_where_segments_merge():
    policy = tunmod.MergePolicy()
    segs = _segments(16, ts_every=1000)
    for _ in range(3 * tunmod.MERGE_PAUSE):
        assert policy.wants(len(segs))
        policy.judge(len(segs), len(offload.coalesce(segs)))  # 1 write
    assert policy.paused == 0


def test_merge_policy_pauses_after_poor_windows_then_tries_again():
    policy = tunmod.MergePolicy()
    poor = len(offload.coalesce(_segments(16, ts_every=2)))  # 8 writes for 16 packets
    for i in range(tunmod.MERGE_WINDOW):
        assert policy.wants(16), i  # one poor batch does not pause it, a window does
        policy.judge(16, poor)
    for _ in range(tunmod.MERGE_PAUSE):
        assert not policy.wants(16)  # paused: packet by packet
        assert not policy.wants(1)  # a single packet never merges, and counts for nothing
    assert policy.wants(16)  # merging again


def test_merge_policy_judges_only_batches_that_could_show_it():
    policy = tunmod.MergePolicy()
    n = tunmod.MERGE_JUDGE_MIN - 1
    for _ in range(4 * tunmod.MERGE_WINDOW):
        assert policy.wants(n)
        policy.judge(n, n)  # nothing merged, but too few to say
    assert policy.paused == 0


def test_write_batch_merges_or_writes_packet_by_packet_as_the_policy_says():
    """Tun.write_batch on a SOCK_SEQPACKET pair instead of a TUN device: one message per
    write, so the writes can be read back as they were made."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    theirs.setblocking(False)
    t = tunmod.Tun.__new__(tunmod.Tun)
    t.fd, t.vnet_hdr, t.udp_gro, t.write_drops = ours.fileno(), True, False, 0
    t.merging = tunmod.MergePolicy()

    def written(packets):
        t.write_batch(packets)
        out = []
        while True:
            try:
                out.append(theirs.recv(1 << 17))
            except BlockingIOError:
                return out

    good, poor = _segments(16, ts_every=1000), _segments(16, ts_every=2)
    assert written(good) == [flat(w) for w in offload.coalesce(good)]
    assert len(written(good)) == 1
    t.merging = tunmod.MergePolicy()  # a window of poor batches only
    for _ in range(tunmod.MERGE_WINDOW):
        assert written(poor) == [flat(w) for w in offload.coalesce(poor)]
    assert written(good) == [offload.PLAIN_HDR + p for p in good]  # paused
    assert written(good[:1]) == [offload.PLAIN_HDR + good[0]]
    ours.close()
    theirs.close()
