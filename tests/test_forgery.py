"""Forged and replayed datagrams against a live tunnel, wgedge and wireguard-go side by side.

An attacker in a third namespace, one hop from the victim, learns a live receiver index and
captures a genuine data datagram from the wire, then sends: the header with a garbage tag,
the captured datagram again (a replay), and a bare header with counter 2^64-1. None of it
authenticates, so none of it may move the victim's endpoint, kill its keypair or bring the
attacker a single datagram: pings every 50 ms keep flowing both ways (paper 6.5; issue 12).
"""

import subprocess

import pytest

from tests.netns import sh
from tests.test_interop import IMPLS, build

pytestmark = [pytest.mark.root]

SNIFF = r"""
import socket, struct, sys
ifname, port, want, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind((ifname, 0x0800))
s.settimeout(30)
print("ready", flush=True)
got = []
while len(got) < want:
    ip = s.recv(65535)
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17 or struct.unpack("!H", ip[ihl + 2:ihl + 4])[0] != port:
        continue
    payload = ip[ihl + 8:]
    if payload[:4] == b"\x04\x00\x00\x00" and len(payload) > 32:
        got.append(payload.hex())
open(path, "w").write("\n".join(got))
"""

ATTACK = r"""
import os, socket, struct, sys, time
target, port, captured = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
_, receiver, counter = struct.unpack_from("<IIQ", captured)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
forged = [
    struct.pack("<IIQ", 4, receiver, counter + 5) + os.urandom(48),  # garbage tag
    captured,                                                          # replay
    struct.pack("<IIQ", 4, receiver, 2 ** 64 - 1) + bytes(16),         # counter-maxed header
]
for _ in range(3):
    for d in forged:
        s.sendto(d, (target, port))
print("sent", flush=True)
s.settimeout(0.2)
received = 0
end = time.time() + float(sys.argv[4])
while time.time() < end:
    try:
        s.recv(65535)
        received += 1
    except socket.timeout:
        pass
print("received", received, flush=True)
"""


def endpoint_of_peer(site):
    return site.dump()[0]["endpoint"]


@pytest.mark.parametrize("impl_a,impl_b", IMPLS)
def test_forged_and_replayed_datagrams_change_nothing(nets, tmp_path, impl_a, impl_b):
    a, b = build(nets, tmp_path, impl_a, impl_b)  # b is the victim, a its genuine peer
    ns_c = nets.ns("c")
    nets.link(b.ns, ns_c, "10.201.0.2", "10.201.0.1")
    capture = str(tmp_path / "captured")
    towards_a = "vb" + nets.tag  # the first link's end in b (tests/netns.py names them)
    sniffer = subprocess.Popen(["ip", "netns", "exec", b.ns, "python3", "-c", SNIFF,
                                towards_a, str(b.port), "2", capture],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout.readline().strip() == "ready"
        sh("ping", "-c", "3", "-i", "0.2", "-W", "2", b.tun4, ns=a.ns, timeout=30)
        sniffer.wait(timeout=30)
    finally:
        sniffer.kill()
    captured = open(capture).read().split()
    assert len(captured) == 2
    before = endpoint_of_peer(b)
    assert before == "10.200.0.1:%d" % a.port
    attacker = subprocess.Popen(["ip", "netns", "exec", ns_c, "python3", "-c", ATTACK,
                                 "10.201.0.2", str(b.port), captured[0], "5"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert attacker.stdout.readline().strip() == "sent"
        # b answers a's pings through its endpoint for a: a hijacked endpoint loses them all
        res = sh("ping", "-c", "40", "-i", "0.05", "-W", "2", b.tun4, ns=a.ns, check=False,
                 timeout=60)
        assert " 0% packet loss" in res.stdout, res.stdout
        res = sh("ping", "-c", "20", "-i", "0.05", "-W", "2", a.tun4, ns=b.ns, check=False,
                 timeout=60)
        assert " 0% packet loss" in res.stdout, res.stdout
        out, _ = attacker.communicate(timeout=30)
    finally:
        attacker.kill()
    assert out.split() == ["received", "0"], out
    assert endpoint_of_peer(b) == before

