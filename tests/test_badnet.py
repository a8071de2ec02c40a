"""A bad network between two WireGuard ends: 5% loss, 5% duplication, 10% reordering and
100 ms round trip with jitter (tests/impair.py; this kernel has no sch_netem). A transfer
arrives byte-identical, no duplicated datagram is ever delivered twice, handshakes complete."""

import hashlib
import os
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT, sh
from tests.test_interop import build

pytestmark = [pytest.mark.root]


@pytest.mark.parametrize("impl_b", ["wgedge", "wireguard-go"])
def test_transfer_and_handshakes_through_a_bad_network(nets, tmp_path, impl_b):
    a, b = build(nets, tmp_path, "wgedge", impl_b)
    # Point a at the relay (in b's namespace), which forwards to b's real port.
    relay = subprocess.Popen(
        ["ip", "netns", "exec", b.ns, sys.executable, "-m", "tests.impair", "10.200.0.2",
         "6000", "10.200.0.2", "51821", "300"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        a.wg("set", a.ifname, "peer", b.pub, "endpoint", "10.200.0.2:6000")
        # Handshake through the relay (retransmissions cover lost initiations).
        sh("ping", "-c", "1", "-W", "20", b.tun4, ns=a.ns, timeout=40)
        res = sh("ping", "-c", "60", "-i", "0.05", "-W", "2", b.tun4, ns=a.ns, check=False,
                 timeout=60)
        assert "DUP!" not in res.stdout  # duplicated datagrams are refused by the replay window
        assert " 0 received" not in res.stdout
        data = os.urandom(1 << 20)
        src, out = tmp_path / "payload", tmp_path / "received"
        src.write_bytes(data)
        server = subprocess.Popen(
            ["ip", "netns", "exec", b.ns, sys.executable, "-c",
             "import socket,sys\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind(('%s', 5556)); s.listen(1); c,_=s.accept()\n"
             "f=open(sys.argv[1],'wb')\n"
             "while True:\n"
             "  d=c.recv(65536)\n"
             "  if not d: break\n"
             "  f.write(d)\n"
             "f.close()\n" % b.tun4, str(out)])
        try:
            time.sleep(0.3)
            sh(sys.executable, "-c",
               "import socket,sys\n"
               "s=socket.create_connection(('%s', 5556), timeout=60)\n"
               "s.sendall(open(sys.argv[1],'rb').read()); s.close()\n" % b.tun4,
               str(src), ns=a.ns, timeout=120)
            server.wait(timeout=60)
        finally:
            server.kill()
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
        # A fresh handshake through the bad network: b forgets a and is told again.
        conf = b.wg("showconf", b.ifname).stdout
        b.wg("set", b.ifname, "peer", a.pub, "remove")
        path = tmp_path / "b.conf"
        path.write_text(conf)
        b.wg("setconf", b.ifname, str(path))
        before = int(a.dump()[0]["handshake"])
        time.sleep(1.1)
        # a still holds its session, so b drops a's packets until a new handshake: b starts one
        # when it has something of its own to send (a late TCP segment, say), and a starts one
        # 15 s (Keepalive-Timeout + Rekey-Timeout) after sending with nothing heard back. Keep
        # pinging until one reply, or the test would depend on which of the two comes first.
        sh("ping", "-c", "1", "-i", "0.5", "-w", "50", b.tun4, ns=a.ns, timeout=70)
        assert int(a.dump()[0]["handshake"]) > before
    finally:
        relay.kill()
        relay.wait()
