"""Nothing a local client asks of the daemon may stall forwarding: pings every 50 ms through
a wgedge tunnel lose nothing while the operator makes big changes (issue 12)."""

import base64
import re
import signal
import subprocess
import time

import pytest

from tests.netns import genkey, sh
from tests.test_interop import build

pytestmark = [pytest.mark.root]

PREFIXES = 100_000
PEERS = 10_000
PREFIXES_EACH = 16
LATE = 1.0  # s: a reply later than this counts as lost (ping -W 1)


def _rtts(out):
    """ping's output -> {icmp_seq: round-trip time in ms}."""
    return {int(m.group(1)): float(m.group(2))
            for m in re.finditer(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms", out)}


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
    print("max ping RTT while 100k allowed IPs moved: %.0f ms" % max(_rtts(out).values()))
    assert " 0% packet loss" in out, out
    dump = a.dump()
    moved = [row for row in dump if row["public_key"] == pubs[1]][0]
    assert moved["allowed"].count(",") == PREFIXES - 1
    assert [row for row in dump if row["public_key"] == pubs[0]][0]["allowed"] == "(none)"


def _peers_conf(path, count, mark):
    """A hub's wg config of `count` made-up peers (public keys starting with byte `mark`),
    each with a preshared key, an endpoint and PREFIXES_EACH prefixes of its own."""
    parts = []
    half = PREFIXES_EACH // 2
    for i in range(count):
        key = base64.b64encode(bytes([mark]) + i.to_bytes(4, "big") + bytes(27)).decode()
        psk = base64.b64encode(bytes([mark + 1]) + i.to_bytes(4, "big") + bytes(27)).decode()
        n = (i + mark * count) * half
        prefixes = ["10.%d.%d.%d/32" % (n + j >> 16 & 255, n + j >> 8 & 255, n + j & 255)
                    for j in range(half)]
        prefixes += ["fd%02x:%x::%x/128" % (mark, i, j) for j in range(half)]
        parts.append("[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = %s\n"
                     "Endpoint = 192.0.2.%d:%d\n" % (key, psk, ", ".join(prefixes),
                                                     i % 250 + 1, 1024 + i))
    path.write_text("\n".join(parts))
    return str(path)


def test_adding_10k_peers_loses_no_ping(nets, tmp_path):
    """`wg addconf` of 10k peers, twice (into an empty table, then beside 10k), while A pings
    B every 50 ms: no reply may come later than LATE (the old code parsed and applied each
    in one wake-up, and the loop forwarded nothing meanwhile)."""
    a, b = build(nets, tmp_path, "wgedge", "wgedge")
    sh("ping", "-c", "2", "-i", "0.2", "-W", "2", b.tun4, ns=a.ns, timeout=30)
    confs = [_peers_conf(tmp_path / ("p%d.conf" % mark), PEERS, mark) for mark in (6, 7)]
    # Pings until 2 s after the changes, then SIGINT; every ping but the last second's must
    # have its reply within LATE (the last ones may still be on their way when ping stops).
    ping = subprocess.Popen(["ip", "netns", "exec", a.ns, "ping", "-n", "-i", "0.05",
                             "-W", "%d" % LATE, b.tun4], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        started = time.monotonic()
        for conf in confs:
            a.wg("addconf", a.ifname, conf)
        took = time.monotonic() - started
        time.sleep(2)
        ping.send_signal(signal.SIGINT)
        out, _ = ping.communicate(timeout=30)
    finally:
        ping.kill()
    sent = int(re.search(r"(\d+) packets transmitted", out).group(1))
    rtts = _rtts(out)
    print("max ping RTT while 2 x 10k peers were added: %.0f ms (%d pings; the changes took "
          "%.1f s)" % (max(rtts.values()), sent, took))
    checked = range(1, sent - int(1 / 0.05) + 1)
    assert len(checked) > (took + 1) / 0.05 / 2  # (ping may send slower than asked)
    late = ["ping %d %s" % (seq, "lost" if seq not in rtts else "took %.0f ms" % rtts[seq])
            for seq in checked if rtts.get(seq, 1e9) > LATE * 1000]
    assert late == [], late
    dump = a.dump()
    assert len(dump) == 2 * PEERS + 1
    assert sum(row["allowed"].count(",") + 1 for row in dump) == 2 * PEERS * PREFIXES_EACH + 2
