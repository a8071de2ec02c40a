"""Handshake flood: MAC1-valid initiations from many source addresses at full speed, at a
WireGuard interface that carries iperf3 TCP through an established tunnel.

    make flood        (root; about 2 minutes)

For wgedge and for Debian's wireguard-go, in the same run: single-stream TCP throughput
without and with the flood, cookie replies the flood received (proof of cookie mode), and the
victim daemon's peak RSS. The flood knows the victim's public key, so every initiation passes
mac1 and reaches the expensive part unless the victim defends itself; the rest is random.
"""

import hashlib
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time

from tests.bench import tunnel_bench as tb
from tests.netns import ROOT, Namespaces, sh

SOURCES = ["10.210.0.%d" % i for i in range(10, 18)]  # 8 attacker addresses in namespace b
VICTIM = ("10.210.0.1", 51850)


def initiation(mac1_key, rng):
    body = b"\x01\x00\x00\x00" + rng(4 + 32 + 48 + 28)
    mac1 = hashlib.blake2s(body, digest_size=16, key=mac1_key).digest()
    return body + mac1 + bytes(16)


def _flood(src, mac1_key, seconds, counter):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.setblocking(False)
    msgs = [initiation(mac1_key, os.urandom) for _ in range(256)]
    sent = cookies = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for m in msgs:
            try:
                s.sendto(m, VICTIM)
                sent += 1
            except OSError:
                pass
        try:
            while True:
                d = s.recv(2048)
                if d[:1] == b"\x03":
                    cookies += 1
        except BlockingIOError:
            pass
    counter.put((sent, cookies))


def flood_and_measure(ns_a, ns_b, victim_pub, pid, seconds=8):
    """Run the flood from namespace b while iperf3 runs a -> b; (Mbit/s, sent, cookies)."""
    mac1_key = hashlib.blake2s(b"mac1----" + victim_pub).digest()
    script = ("import sys, multiprocessing\n"
              "sys.path.insert(0, %r)\n"
              "from tests.reliability.flood import _flood\n"
              "q = multiprocessing.Queue()\n"
              "ps = [multiprocessing.Process(target=_flood, args=(s, %r, %d, q)) for s in %r]\n"
              "[p.start() for p in ps]\n"
              "r = [q.get() for _ in ps]\n"
              "[p.join() for p in ps]\n"
              "print(sum(x for x, _ in r), sum(y for _, y in r))\n") % (
        ROOT, mac1_key, seconds + 2, SOURCES)
    import subprocess

    flood = subprocess.Popen(["ip", "netns", "exec", ns_b, sys.executable, "-c", script],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    mbit = tb.iperf(ns_a, ns_b, "10.88.0.2", seconds - 1, 1)
    out, _ = flood.communicate(timeout=seconds + 30)
    sent, cookies = (int(x) for x in out.split())
    return mbit, sent, cookies


def run(impl, rounds=2):
    nets = Namespaces()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ns_a, ns_b, sites = tb._setup(nets, impl, impl, tmp)
            for src in SOURCES:
                sh("ip", "addr", "add", src + "/24", "dev", "vb" + nets.tag, ns=ns_b)
            pid = tb.daemon_pids(ns_a)[0]
            show = sh("wg", "show", sites[0][1], "public-key", ns=ns_a).stdout.strip()
            import base64

            victim_pub = base64.b64decode(show)
            calm, loaded, sent, cookies = [], [], 0, 0
            for _ in range(rounds):
                calm.append(tb.iperf(ns_a, ns_b, "10.88.0.2", 6, 1))
                m, s, c = flood_and_measure(ns_a, ns_b, victim_pub, pid)
                loaded.append(m)
                sent += s
                cookies += c
            return {"calm": statistics.median(calm), "flood": statistics.median(loaded),
                    "sent": sent, "cookies": cookies, "rss_mb": tb.rss_kb(pid) / 1024}
    finally:
        nets.cleanup()


def main():
    rows = []
    for impl in ("wgedge", "wireguard-go"):
        r = run(impl)
        rows.append("| %s | %.0f | %.0f | %.0f%% | %d | %d | %.1f |" % (
            impl, r["calm"], r["flood"], 100 * r["flood"] / (r["calm"] or 1), r["sent"],
            r["cookies"], r["rss_mb"]))
        print(rows[-1], flush=True)
    print("| victim | TCP Mbit/s calm | under flood | kept | initiations sent | "
          "cookie replies seen | victim peak RSS MB |")
    print("\n".join(rows))


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    main()
