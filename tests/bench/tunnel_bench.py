"""Tunnel benchmark: iperf3 TCP through wgedge and through wireguard-go, in one run.

Two namespaces joined by veth; each candidate pair is set up with `wg` and `ip`, rounds are
interleaved so machine noise hits every candidate alike, and medians are reported. Also
measures a wgedge daemon's CPU time while idle for 10 s. Needs root.
"""

import json
import os
import statistics
import subprocess
import time

from tests.netns import Namespaces, genkey, sh

PAIRS = [("wgedge", "wgedge"), ("wgedge", "wireguard-go"), ("wireguard-go", "wireguard-go")]


def _setup(nets, impl_a, impl_b, tmp):
    ns_a, ns_b = nets.ns("a"), nets.ns("b")
    nets.link(ns_a, ns_b, "10.210.0.1", "10.210.0.2")
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
    server = subprocess.Popen(["ip", "netns", "exec", ns_server, "iperf3", "-s", "-1", "-B",
                               addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        res = sh("iperf3", "-c", addr, "-t", str(seconds), "-P", str(streams), "-J",
                 ns=ns_client, timeout=seconds + 30, check=False)
        if res.returncode != 0:
            return 0.0
        return json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        server.kill()
        server.wait()


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


def run(rounds=3, seconds=5):
    import tempfile

    results = {pair: {1: [], 4: []} for pair in PAIRS}
    for _ in range(rounds):
        for pair in PAIRS:
            nets = Namespaces()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    ns_a, ns_b, _ = _setup(nets, pair[0], pair[1], tmp)
                    for streams in (1, 4):
                        results[pair][streams].append(
                            iperf(ns_a, ns_b, "10.88.0.2", seconds, streams))
            finally:
                nets.cleanup()
    return results


def report(results, idle):
    base = statistics.median(results[("wireguard-go", "wireguard-go")][1]) or 1.0
    lines = ["| client <-> server | TCP 1 stream (Mbit/s, median) | TCP 4 streams | "
             "1-stream ratio to wireguard-go |", "|---|---|---|---|"]
    for pair, r in results.items():
        one, four = statistics.median(r[1]), statistics.median(r[4])
        lines.append("| %s <-> %s | %.0f | %.0f | %.2f |" % (pair[0], pair[1], one, four,
                                                             one / base))
    lines.append("")
    lines.append("Idle wgedge daemon: %.3f s of CPU time in 10 s." % idle)
    return "\n".join(lines)


if __name__ == "__main__":
    idle = idle_cpu()
    print(report(run(), idle))
