"""The TUN device against the real kernel, inside a throwaway namespace: merged UDP writes
(GSO_UDP_L4) arrive as the datagrams they were made of, and a kernel that refuses them gets
the datagrams one by one, with merging off from then on.

Local delivery does not check the checksums of a GSO packet's datagrams (the kernel
computes them from the seed it is given), so the seed itself is checked against a
reference in tests/test_offload.py."""

import json
import os
import subprocess
import sys

from tests.netns import ROOT

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
