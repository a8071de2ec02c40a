"""Tunnel benchmark: wgedge and wireguard-go side by side, in one run.

Two namespaces joined by veth; each candidate pair is set up with `wg` and `ip`, rounds are
interleaved so machine noise hits every candidate alike, and medians are reported: TCP with 1
and 4 streams, UDP packets per second at 64- and 1400-byte payloads, ping round-trip time on
an idle and on a loaded tunnel, and how busy the two cores were during single-stream TCP.
Also: a wgedge daemon's CPU time while idle for 10 s and its peak RSS with 1 and with 1000
configured peers. Needs root.
"""

import json
import os
import statistics
import subprocess
import time

from tests.netns import Namespaces, genkey, sh

GRO = True  # NAPI GRO on the veth, as real NICs have it, for every candidate alike
PAIRS = [("wgedge", "wgedge"), ("wgedge", "wireguard-go"), ("wireguard-go", "wireguard-go")]


def _setup(nets, impl_a, impl_b, tmp):
    ns_a, ns_b = nets.ns("a"), nets.ns("b")
    nets.link(ns_a, ns_b, "10.210.0.1", "10.210.0.2", gro=GRO)
    (pa, ka), (pb, kb) = genkey(), genkey()
    sites = [(ns_a, "bta" + nets.tag[:4], impl_a, pa, kb, "10.88.0.1", "10.88.0.2", 2, 51850),
             (ns_b, "btb" + nets.tag[:4], impl_b, pb, ka, "10.88.0.2", "10.88.0.1", 1, 51851)]
    for ns, ifname, impl, priv, other_pub, addr, peer_addr, peer_host, port in sites:
        nets.start(impl, ns, ifname)
        key = os.path.join(tmp, ifname + ".key")
        with open(key, "w") as f:
            f.write(priv + "\n")
        peer_port = 51851 if port == 51850 else 51850
        sh("wg", "set", ifname, "private-key", key, "listen-port", str(port), "peer",
           other_pub, "allowed-ips", peer_addr + "/32", "endpoint",
           "10.210.0.%d:%d" % (peer_host, peer_port), ns=ns)
        sh("ip", "addr", "add", addr + "/24", "dev", ifname, ns=ns)
        sh("ip", "link", "set", "mtu", "1420", "up", "dev", ifname, ns=ns)
    sh("ping", "-c", "2", "-W", "2", "10.88.0.2", ns=ns_a, timeout=30)
    return ns_a, ns_b, sites


def iperf(ns_client, ns_server, addr, seconds, streams=1):
    res = iperf_json(ns_client, ns_server, addr, seconds, streams)
    return 0.0 if res is None else res["end"]["sum_received"]["bits_per_second"] / 1e6


def iperf_json(ns_client, ns_server, addr, seconds, streams=1, omit=0):
    """iperf3's JSON answer for a TCP test of `seconds` after `omit` seconds that it leaves
    out of its end sums (`-O`: the TCP slow start), or None when iperf3 failed."""
    server = subprocess.Popen(["ip", "netns", "exec", ns_server, "iperf3", "-s", "-1", "-B",
                               addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        res = sh("iperf3", "-c", addr, "-t", str(seconds), "-O", str(omit), "-P", str(streams),
                 "-J", ns=ns_client, timeout=seconds + omit + 30, check=False)
        if res.returncode != 0:
            return None
        return json.loads(res.stdout)
    finally:
        server.kill()
        server.wait()


def iperf_udp(ns_client, ns_server, addr, seconds, length):
    """Packets per second received through the tunnel, UDP with `length`-byte payloads."""
    server = subprocess.Popen(["ip", "netns", "exec", ns_server, "iperf3", "-s", "-1", "-B",
                               addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        res = sh("iperf3", "-c", addr, "-u", "-b", "0", "-l", str(length), "-t", str(seconds),
                 "-J", ns=ns_client, timeout=seconds + 30, check=False)
        if res.returncode != 0:
            return 0.0
        end = json.loads(res.stdout)["end"]["sum"]
        return (end["packets"] - end["lost_packets"]) / end["seconds"]
    finally:
        server.kill()
        server.wait()


def ping_rtt(ns, addr, count=20):
    res = sh("ping", "-c", str(count), "-i", "0.05", "-q", addr, ns=ns, check=False, timeout=60)
    for line in res.stdout.splitlines():
        if "min/avg/max" in line:
            return float(line.split("=")[1].split("/")[1])
    return float("nan")


def loaded_rtt(ns_a, ns_b, addr, seconds=4):
    server = subprocess.Popen(["ip", "netns", "exec", ns_b, "iperf3", "-s", "-1", "-B", addr],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        client = subprocess.Popen(["ip", "netns", "exec", ns_a, "iperf3", "-c", addr, "-t",
                                   str(seconds)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(1)
        rtt = ping_rtt(ns_a, addr, 20)
        client.wait(timeout=seconds + 30)
        return rtt
    finally:
        server.kill()
        server.wait()


def cpu_busy(fn):
    """Run fn(); return (its result, fraction of all cores busy meanwhile)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    result = fn()
    t1, i1 = snap()
    return result, 1.0 - (i1 - i0) / max(1, t1 - t0)


def daemon_pids(ns):
    return [int(p) for p in sh("ip", "netns", "pids", ns).stdout.split()]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(seconds=10):
    nets = Namespaces()
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            ns_a, _, _ = _setup(nets, "wgedge", "wgedge", tmp)
            pid = daemon_pids(ns_a)[0]
            before = cpu_seconds(pid)
            time.sleep(seconds)
            return cpu_seconds(pid) - before
    finally:
        nets.cleanup()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return 0


def memory():
    """Peak RSS (kB) of a wgedge daemon after traffic with 1 peer, and with 1000 peers."""
    import tempfile

    out = {}
    nets = Namespaces()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ns_a, ns_b, sites = _setup(nets, "wgedge", "wgedge", tmp)
            pid = daemon_pids(ns_a)[0]
            iperf(ns_a, ns_b, "10.88.0.2", 3, 1)
            out[1] = rss_kb(pid)
            lines = []
            for i in range(999):
                priv = os.urandom(32)
                from wgedge.crypto import load

                pub = load().x25519_public(priv)
                lines.append("public_key=%s\nallowed_ip=10.%d.%d.0/24" % (
                    pub.hex(), 100 + i // 250, i % 250))
            from wgedge.router import control_client

            control_client.request(sites[0][1], "set=1\n" + "\n".join(lines), timeout=60)
            iperf(ns_a, ns_b, "10.88.0.2", 3, 1)
            out[1000] = rss_kb(pid)
    finally:
        nets.cleanup()
    return out


def run(rounds=3, seconds=5):
    import tempfile

    keys = ("tcp1", "tcp4", "udp64", "udp1400", "rtt_idle", "rtt_loaded", "busy")
    results = {pair: {k: [] for k in keys} for pair in PAIRS}
    for _ in range(rounds):
        for pair in PAIRS:
            nets = Namespaces()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    ns_a, ns_b, _ = _setup(nets, pair[0], pair[1], tmp)
                    r = results[pair]
                    mbit, busy = cpu_busy(lambda a=ns_a, b=ns_b: iperf(a, b, "10.88.0.2", seconds, 1))
                    r["tcp1"].append(mbit)
                    r["busy"].append(busy)
                    r["tcp4"].append(iperf(ns_a, ns_b, "10.88.0.2", seconds, 4))
                    r["udp64"].append(iperf_udp(ns_a, ns_b, "10.88.0.2", seconds, 64))
                    r["udp1400"].append(iperf_udp(ns_a, ns_b, "10.88.0.2", seconds, 1400))
                    r["rtt_idle"].append(ping_rtt(ns_a, "10.88.0.2"))
                    r["rtt_loaded"].append(loaded_rtt(ns_a, ns_b, "10.88.0.2"))
            finally:
                nets.cleanup()
    return results


def medians(results):
    return {pair: {k: statistics.median(v) for k, v in r.items()} for pair, r in results.items()}


def report(results, idle, mem=None):
    m = medians(results)
    base = m[("wireguard-go", "wireguard-go")]
    lines = ["| client <-> server | TCP 1 stream Mbit/s | ratio | TCP 4 streams Mbit/s | "
             "UDP 64 B pkt/s | UDP 1400 B pkt/s | ping idle ms | ping loaded ms | "
             "cores busy (TCP 1) |", "|---|---|---|---|---|---|---|---|---|"]
    for pair, r in m.items():
        lines.append("| %s <-> %s | %.0f | %.2f | %.0f | %.0f | %.0f | %.3f | %.2f | %.0f%% |" % (
            pair[0], pair[1], r["tcp1"], r["tcp1"] / (base["tcp1"] or 1), r["tcp4"],
            r["udp64"], r["udp1400"], r["rtt_idle"], r["rtt_loaded"], 100 * r["busy"]))
    lines.append("")
    lines.append("Idle wgedge daemon: %.3f s of CPU time in 10 s." % idle)
    if mem:
        lines.append("")
        lines.append("wgedge daemon peak RSS: %.1f MB with 1 peer, %.1f MB with 1000 peers "
                     "(after traffic)." % (mem[1] / 1024, mem[1000] / 1024))
    return "\n".join(lines)


def plot(results, path):
    """A bar chart of the throughput medians (PNG); skipped if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    m = medians(results)
    names = ["%s\n<-> %s" % pair for pair in m]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [r["tcp1"] for r in m.values()], 0.4, label="TCP 1 stream")
    ax.bar([x + 0.2 for x in xs], [r["tcp4"] for r in m.values()], 0.4, label="TCP 4 streams")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel("Mbit/s (median)")
    ax.set_title("Tunnel throughput, two namespaces on one 2-core machine")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


if __name__ == "__main__":
    idle = idle_cpu()
    res = run()
    print(report(res, idle, memory()))
