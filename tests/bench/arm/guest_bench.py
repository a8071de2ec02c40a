"""The benchmark's guest side: runs inside the ARM guest, driven over the serial console by
tests/bench/arm/__main__.py, and answers with one JSON line per command.

    python3 -m tests.bench.arm.guest_bench info          what the guest is (crypto, kernel) and
                                                         its runtime floor (memory.py floor)
    python3 -m tests.bench.arm.guest_bench round N       one round: every candidate once
    python3 -m tests.bench.arm.guest_bench count NAME    instructions per packet, with the host

Candidates: the bare veth between the two namespaces (the ceiling: no tunnel), wgedge <->
wgedge and wireguard-go <-> wireguard-go, set up exactly as `make bench` sets them up
(tests/bench/tunnel_bench.py, whose measurements this reuses), both ends and iperf3 in this
one guest. A round runs the candidates in an order that rotates from round to round.

`count` works with the host: it prints `@@SNAP name@@` and waits for a line on standard input
while the host reads the plugin's counters (tests/bench/arm/plugin.py). Snapshots: before a
transfer of COUNT_BYTES through the candidate, after it, and after an idle window of the same
length, so the host can subtract the idle rate.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from tests.bench import core_bench, tunnel_bench
from tests.bench.arm import memory
from tests.netns import Namespaces
from wgedge.io import priority

CANDIDATES = ["veth", "wgedge", "wireguard-go"]
SECONDS = 5
# Seconds at the start of each TCP test that iperf3 leaves out of its figures (-O), so they
# are of the flow after its slow start. Under emulation a wake-up's batch takes tens of ms,
# the round trip is 50-150 ms, and TCP needs seconds to open its window: over the first
# seconds wgedge measured 20-30 Mbit/s and then 45-50 (arm64, 2026-11-30). The whole run,
# slow start included, is reported beside it (`*_whole`).
OMIT = 3
SERVER = {"veth": "10.210.0.2"}  # iperf3 server address per candidate; tunnels: 10.88.0.2
TUNNEL_ADDR = "10.88.0.2"
COUNT_BYTES = 20 << 20
# TCP payload per full packet inside the tunnel: MTU 1420 - IPv4 20 - TCP 20 - timestamps 12.
# Packets are counted as bytes / this, for every candidate (the veth's MTU is 1500 and it
# carries GSO super-packets, so its own counters would not compare).
PAYLOAD = 1368


def emit(tag, obj):
    sys.stdout.write("@@%s %s@@\n" % (tag, json.dumps(obj, sort_keys=True)))
    sys.stdout.flush()


def info():
    from wgedge import crypto

    backend = crypto.load()
    out = {"crypto": backend.describe(), "python": sys.version.split()[0],
           "uname": os.uname().release, "machine": os.uname().machine}
    try:
        import cryptography

        out["cryptography"] = cryptography.__version__
    except ImportError:
        out["cryptography"] = None
    with open("/proc/cpuinfo") as f:
        feats = [line.split(":", 1)[1].split() for line in f if line.startswith("Features")]
    out["cpu_features"] = feats[0] if feats else []
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, _, name = line.split()[:3]
            if name == "_stext":
                out["kernel_stext"] = int(addr, 16)
                break
    res = subprocess.run(["wireguard-go", "--version"], capture_output=True, text=True)
    out["wireguard_go"] = (res.stdout or res.stderr).strip().splitlines()[0]
    res = subprocess.run(["iperf3", "--version"], capture_output=True, text=True)
    out["iperf3"] = res.stdout.strip().splitlines()[0]
    out["memory_floor"] = memory.measure_floor(3)
    emit("INFO", out)


def setup(nets, name, tmp):
    """-> (client namespace, server namespace, server address) for one candidate."""
    if name == "veth":
        ns_a, ns_b = nets.ns("a"), nets.ns("b")
        nets.link(ns_a, ns_b, "10.210.0.1", "10.210.0.2", gro=tunnel_bench.GRO)
        return ns_a, ns_b, SERVER["veth"]
    ns_a, ns_b, _ = tunnel_bench._setup(nets, name, name, tmp)
    return ns_a, ns_b, TUNNEL_ADDR


def with_hog(fn):
    """fn() while one process spins on a CPU of the guest (a router's other work)."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        return fn()
    finally:
        hog.kill()
        hog.wait()


def guarded(r, key, fn):
    """r[key] = fn(), or None with the reason in r["errors"]: iperf3 in a slow guest now and
    then ends a test with an error in its JSON, and one lost figure must not lose the round."""
    try:
        r[key] = fn()
    except (KeyError, ValueError, subprocess.SubprocessError) as exc:
        r[key] = None
        r.setdefault("errors", []).append("%s: %s %s" % (key, type(exc).__name__, exc))
    return r[key]


def tcp(ns_a, ns_b, addr, streams):
    """-> (Mbit/s received after the slow start, Mbit/s sent over the whole run)."""
    res = tunnel_bench.iperf_json(ns_a, ns_b, addr, SECONDS, streams, OMIT)
    if res is None:
        raise ValueError("iperf3 failed")
    sums = [iv["sum"] for iv in res["intervals"]]  # the omitted seconds are among them
    whole = 8 * sum(s["bytes"] for s in sums) / sum(s["seconds"] for s in sums) / 1e6
    return res["end"]["sum_received"]["bits_per_second"] / 1e6, whole


def nice_of(pid):
    """The nice value of process `pid` (field 19 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[16])


def daemons(ns_a, ns_b):
    return [pid for ns in (ns_a, ns_b) for pid in tunnel_bench.daemon_pids(ns)]


def measure(name, ns_a, ns_b, addr):
    r = {}
    if name != "veth":
        r["nice"] = sorted({nice_of(pid) for pid in daemons(ns_a, ns_b)})
    res = guarded(r, "tcp1", lambda: tunnel_bench.cpu_busy(
        lambda: tcp(ns_a, ns_b, addr, 1)))
    (r["tcp1"], r["tcp1_whole"]), r["busy"] = res if res else ((None, None), None)
    res = guarded(r, "tcp4", lambda: tcp(ns_a, ns_b, addr, 4))
    r["tcp4"], r["tcp4_whole"] = res if res else (None, None)
    guarded(r, "udp64", lambda: tunnel_bench.iperf_udp(ns_a, ns_b, addr, SECONDS, 64))
    if name == "veth":
        return r
    guarded(r, "rtt_idle", lambda: tunnel_bench.ping_rtt(ns_a, addr))
    guarded(r, "rtt_loaded", lambda: tunnel_bench.loaded_rtt(ns_a, ns_b, addr, SECONDS))
    res = guarded(r, "tcp1_hog", lambda: with_hog(lambda: tcp(ns_a, ns_b, addr, 1)))
    r["tcp1_hog"], r["tcp1_hog_whole"] = res if res else (None, None)
    if name == "wireguard-go":
        # wgedge's daemons run at nice priority.DEFAULT; wireguard-go, which sets none, at
        # what it inherits (0). The same pair again at wgedge's value, quiet and with the hog,
        # so the report can compare the two at equal priority too.
        for pid in daemons(ns_a, ns_b):
            priority.apply(pid, priority.DEFAULT)
        res = guarded(r, "tcp1_renice", lambda: tcp(ns_a, ns_b, addr, 1))
        r["tcp1_renice"] = res[0] if res else None
        res = guarded(r, "tcp1_hog_renice",
                      lambda: with_hog(lambda: tcp(ns_a, ns_b, addr, 1)))
        r["tcp1_hog_renice"] = res[0] if res else None
    # Peak RSS of each end's daemon (kB), after all of the round's traffic.
    r["rss_kb"] = [tunnel_bench.rss_kb(pid) for pid in daemons(ns_a, ns_b)]
    return r


def one_round(n):
    k = n % len(CANDIDATES)
    order = CANDIDATES[k:] + CANDIDATES[:k]
    results = {"order": order}
    for name in order:
        nets = Namespaces()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                ns_a, ns_b, addr = setup(nets, name, tmp)
                results[name] = measure(name, ns_a, ns_b, addr)
        finally:
            nets.cleanup()
    t0 = time.monotonic()
    send, recv, gro = core_bench.per_packet(core_bench.crypto.load("fast"), batches=20, rounds=3)
    results["core"] = {"send_us": send, "recv_us": recv, "recv_gro_us": gro,
                       "handshakes_per_s": core_bench.handshakes_per_second(
                           core_bench.crypto.load("fast"), 2.0),
                       "seconds": time.monotonic() - t0}
    emit("RESULT", results)


def snap(name):
    """Let the host read the instruction counters now; go on when it answers."""
    sys.stdout.write("@@SNAP %s@@\n" % name)
    sys.stdout.flush()
    sys.stdin.readline()


def count(name):
    nets = Namespaces()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ns_a, ns_b, addr = setup(nets, name, tmp)
            server = subprocess.Popen(["ip", "netns", "exec", ns_b, "iperf3", "-s", "-B", addr],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(1)
                # Warm up: code paths translated, handshake done, TCP windows open.
                client = ["ip", "netns", "exec", ns_a, "iperf3", "-c", addr, "-J"]
                subprocess.run(client + ["-n", "2M"], capture_output=True, check=True)
                time.sleep(1)
                snap("start")
                t0 = time.monotonic()
                res = subprocess.run(client + ["-n", str(COUNT_BYTES)], capture_output=True,
                                     text=True, check=True)
                t1 = time.monotonic()
                snap("loaded")
            finally:
                server.kill()
                server.wait()
            time.sleep(t1 - t0)  # the idle window: the same length, the same daemons
            t2 = time.monotonic()
            snap("idle")
            end = json.loads(res.stdout)["end"]
            # All of it crossed within the window: the client returns only after the server
            # has received everything and answered.
            sent = end["sum_sent"]["bytes"]
            emit("COUNT", {"name": name, "bytes": sent, "packets": sent / PAYLOAD,
                           "loaded_s": t1 - t0, "idle_s": t2 - t1,
                           "mbit": end["sum_received"]["bits_per_second"] / 1e6})
    finally:
        nets.cleanup()


def main(argv):
    if argv[:1] == ["info"]:
        info()
    elif argv[:1] == ["round"] and len(argv) == 2:
        one_round(int(argv[1]))
    elif argv[:1] == ["count"] and len(argv) == 2 and argv[1] in CANDIDATES:
        count(argv[1])
    else:
        print("usage: guest_bench info | round N | count %s" % "|".join(CANDIDATES))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
