"""Nothing a local client asks of the daemon may stall forwarding: pings every 50 ms through
a wgedge tunnel lose nothing while the operator makes big changes (issue 12)."""

import subprocess

import pytest

from tests.netns import genkey, sh
from tests.test_interop import build

pytestmark = [pytest.mark.root]

PREFIXES = 100_000


def _allowed_conf(path, pub, n, reverse=False):
    lines = ["[Peer]", "PublicKey = " + pub]
    for i in range(n - 1, -1, -1) if reverse else range(n):
        lines.append("AllowedIPs = 10.%d.%d.%d/32" % (100 + (i >> 16), (i >> 8) & 255, i & 255))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_moving_100k_allowed_ips_between_peers_loses_no_ping(nets, tmp_path):
    a, b = build(nets, tmp_path, "wgedge", "wgedge")
    sh("ping", "-c", "2", "-i", "0.2", "-W", "2", b.tun4, ns=a.ns, timeout=30)
    pubs = [genkey()[1], genkey()[1]]
    # the second peer takes them in the opposite order (each prefix found last in the list
    # of its old owner, were that a list)
    confs = [_allowed_conf(tmp_path / ("p%d.conf" % i), pub, PREFIXES, reverse=i == 1)
             for i, pub in enumerate(pubs)]
    # -w: wait for every reply (up to 60 s in all), so a late reply is not counted as lost;
    # what this checks is that no packet is lost while the change is applied.
    ping = subprocess.Popen(["ip", "netns", "exec", a.ns, "ping", "-c", "200", "-i", "0.05",
                             "-w", "60", b.tun4], stdout=subprocess.PIPE, text=True)
    try:
        for conf in confs + confs:  # to the first peer, to the second, back and again
            a.wg("addconf", a.ifname, conf)
        out, _ = ping.communicate(timeout=120)
    finally:
        ping.kill()
    assert " 0% packet loss" in out, out
    dump = a.dump()
    moved = [row for row in dump if row["public_key"] == pubs[1]][0]
    assert moved["allowed"].count(",") == PREFIXES - 1
    assert [row for row in dump if row["public_key"] == pubs[0]][0]["allowed"] == "(none)"
