"""docs/benchmarks-arm.md: one section per architecture, each replaced by its own run.

Ratios and instructions per packet come first: under software emulation absolute Mbit/s say
little about a router, while instructions per packet and the ratio between two
implementations in the same guest do.
"""

import os
import re
import statistics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
DOC = os.path.join(ROOT, "docs", "benchmarks-arm.md")
CANDIDATES = ["veth", "wgedge", "wireguard-go"]
TUNNELS = ["wgedge", "wireguard-go"]
LABEL = {"veth": "bare veth (no tunnel)", "wgedge": "wgedge <-> wgedge",
         "wireguard-go": "wireguard-go <-> wireguard-go"}
CPU = {"arm64": "cortex-a53", "armhf": "cortex-a15, NEON off"}
INTRO = """# Benchmarks on emulated ARM

Produced by `make bench-arm ARCH=arm64` and `make bench-arm ARCH=armhf` (`python -m
tests.bench.arm ARCH`, as root); each run replaces its own architecture's section. One QEMU
guest (`-smp 2 -m 1024`, software emulation) built like the QEMU test image (docs/qemu.md),
plus wireguard-go, iperf3 and the veth module from Debian's packages, runs both tunnel ends
and iperf3 in two network namespaces, exactly as `make bench` does on the host
(docs/benchmarks.md). Rounds interleave the candidates (the order rotates); figures are
medians of the rounds that ran on a quiet host. Instructions are counted by a QEMU plugin
(tests/bench/arm/insncount.c) in further boots of the same image, first with one vCPU, then
with two, over a 20 MiB iperf3 transfer, with the instructions of an idle window of the same
length subtracted; a packet is 1368 bytes of TCP payload (a full 1420-byte packet in the
tunnel), for every candidate.
Each TCP test runs iperf3 for 3 + 5 s and reports the last 5 (`-O 3`: TCP's slow start left
out, as iperf3 offers for this); the figure over all 8 s, slow start included, is shown too.
Counts are reported whatever the host's load, which is shown beside them: a busy host changes
how fast the guest runs, not what it runs (only batch sizes follow the speed, a little).
The CPU hog is one process spinning in the guest during a TCP 1 stream test. Each daemon runs
at its own default priority: wgedge's at nice -10 under SCHED_BATCH (docs/configuration.md,
`nice`), wireguard-go's at what it inherits, nice 0; wireguard-go is measured once more with
wgedge's nice value and policy, quiet and with the hog, so the two compare at equal priority
too.
Absolute Mbit/s under emulation mean little; the ratios and the instructions per packet are
what carry over to real boards (docs/performance.md estimates those).
"""


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def per_packet(count):
    """-> (user, kernel) instructions per packet, idle rate subtracted."""
    s = count["snaps"]
    scale = count["loaded_s"] / count["idle_s"]
    out = []
    for i in (0, 1):
        loaded = s["loaded"][i] - s["start"][i]
        idle = s["idle"][i] - s["loaded"][i]
        out.append((loaded - idle * scale) / count["packets"])
    return out


def quiet_rounds(results):
    return [r for r in results["rounds"] if r["load"]["quiet"]]


def medians(results):
    rounds = quiet_rounds(results)
    m = {}
    for name in CANDIDATES:
        keys = set()
        for r in rounds:
            keys.update(r[name])
        m[name] = {k: median([r[name].get(k) for r in rounds]) for k in keys
                   if k not in ("rss_kb", "errors", "nice")}
        m[name]["nice"] = sorted({v for r in rounds for v in r[name].get("nice", [])})
        rss = [max(r[name]["rss_kb"]) for r in rounds if r[name].get("rss_kb")]
        m[name]["rss_max_kb"] = max(rss) if rss else None
        m[name]["rss_min_kb"] = min(min(r[name]["rss_kb"]) for r in rounds
                                    if r[name].get("rss_kb")) if rss else None
        if m[name].get("tcp1_hog") is not None and m[name].get("tcp1"):
            kept = [r[name]["tcp1_hog"] / r[name]["tcp1"] for r in rounds
                    if r[name]["tcp1"] and r[name].get("tcp1_hog") is not None]
            m[name]["kept"] = median(kept)
        kept = [r[name]["tcp1_hog_renice"] / r[name]["tcp1_renice"] for r in rounds
                if r[name].get("tcp1_renice") and r[name].get("tcp1_hog_renice") is not None]
        m[name]["kept_renice"] = median(kept) if kept else None
    return m


def _k(x):
    return "%.1fk" % (x / 1000) if abs(x) < 10000 else "%.0fk" % (x / 1000)


def fmt(x, spec="%.1f"):
    return "n/a" if x is None else spec % x


def ratio(a, b):
    return "n/a" if a is None or not b else "%.2f" % (a / b)


def summary(results, m):
    counts = {n: per_packet(c) for n, c in results["counts"].items()}
    rows = ["| | wgedge | wireguard-go | wgedge / wireguard-go | bare veth |",
            "|---|---|---|---|---|"]
    ipp = {n: sum(v) for n, v in counts.items()}
    if counts:
        cell = {n: "%s (%s + %s)" % (_k(ipp[n]), _k(counts[n][0]), _k(counts[n][1]))
                if n in counts else "n/a" for n in CANDIDATES}
        rows.append("| instructions per packet (user + kernel), idle subtracted | %s | %s | "
                    "%s | %s |" % (cell["wgedge"], cell["wireguard-go"],
                                   ratio(ipp.get("wgedge"), ipp.get("wireguard-go")),
                                   cell["veth"]))
    if quiet_rounds(results):
        for key, label, spec in (("tcp1", "TCP 1 stream, Mbit/s (after the slow start)",
                                  "%.1f"),
                                 ("tcp1_whole", "TCP 1 stream, Mbit/s over the whole run "
                                  "(slow start included)", "%.1f"),
                                 ("tcp4", "TCP 4 streams, Mbit/s (after the slow start)",
                                  "%.1f"),
                                 ("tcp4_whole", "TCP 4 streams, Mbit/s over the whole run",
                                  "%.1f"),
                                 ("udp64", "UDP 64 B, packets/s", "%.0f"),
                                 ("tcp1_hog", "TCP 1 stream with a CPU hog in the guest, Mbit/s",
                                  "%.1f"),
                                 ("kept", "fraction of quiet TCP 1 stream kept with the hog, "
                                  "each daemon at its own nice value", "%.2f"),
                                 ("rtt_loaded", "ping under load (TCP 1 stream), ms", "%.1f")):
            a, b, v = m["wgedge"].get(key), m["wireguard-go"].get(key), m["veth"].get(key)
            rows.append("| %s | %s | %s | %s | %s |" % (label, fmt(a, spec), fmt(b, spec),
                                                        ratio(a, b), fmt(v, spec)))
            nice = m["wgedge"]["nice"]
            if key == "kept" and len(nice) == 1:  # wireguard-go again at wgedge's value
                a, b = m["wgedge"].get("kept"), m["wireguard-go"].get("kept_renice")
                rows.append("| the same, both daemons at nice %d (wireguard-go reniced) | %s "
                            "| %s | %s | n/a |" % (nice[0], fmt(a, "%.2f"), fmt(b, "%.2f"),
                                                   ratio(a, b)))
        rows.append("| daemons' nice value | %s | %s | | |" % tuple(
            ", ".join("%d" % v for v in m[n]["nice"]) or "n/a"
            for n in ("wgedge", "wireguard-go")))
        a, b = m["wgedge"]["rss_max_kb"], m["wireguard-go"]["rss_max_kb"]
        rows.append("| daemon peak RSS, MB (each end, all quiet rounds) | %s-%s | %s-%s | %s | |"
                    % (fmt(m["wgedge"]["rss_min_kb"] and m["wgedge"]["rss_min_kb"] / 1024),
                       fmt(a and a / 1024),
                       fmt(m["wireguard-go"]["rss_min_kb"]
                           and m["wireguard-go"]["rss_min_kb"] / 1024),
                       fmt(b and b / 1024), ratio(a, b)))
    else:
        rows.append("| throughput | no round ran on a quiet host: none is reported | | | |")
    return "\n".join(rows)


def floor_table(results):
    """The guest's runtime floor (tests/bench/arm/memory.py), beside the daemons' peak RSS."""
    floor = results["guest"].get("memory_floor")
    if not floor:
        return None
    rows = ["| process | peak RSS, MB | of it anonymous, MB | each run's peak, MB |",
            "|---|---|---|---|"]
    for r in floor:
        if "error" in r:
            rows.append("| %s | failed: %s | | |" % (r["name"], r["error"]))
        else:
            rows.append("| %s | %.1f | %.1f | %s |" % (
                r["name"], r["hwm_kb"] / 1024, r["anon_kb"] / 1024,
                ", ".join("%.1f" % (v / 1024) for v in r["runs"])))
    m = medians(results)
    if quiet_rounds(results) and m["wgedge"]["rss_max_kb"]:
        rows.append("| wgedge's daemons (`wgedge IFNAME`: forked, detached), after the rounds' "
                    "traffic | %s-%s | | |" % (fmt(m["wgedge"]["rss_min_kb"] / 1024),
                                             fmt(m["wgedge"]["rss_max_kb"] / 1024)))
    return "\n".join(rows)


def detail(m):
    rows = ["| candidate | TCP 1 stream Mbit/s | TCP 4 streams Mbit/s | UDP 64 B pkt/s | "
            "ping idle ms | ping loaded ms | TCP 1 with hog Mbit/s | guest CPUs busy (TCP 1) |",
            "|---|---|---|---|---|---|---|---|"]
    for n in CANDIDATES:
        r = m[n]
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            LABEL[n], fmt(r.get("tcp1")), fmt(r.get("tcp4")), fmt(r.get("udp64"), "%.0f"),
            fmt(r.get("rtt_idle"), "%.2f"), fmt(r.get("rtt_loaded"), "%.1f"),
            fmt(r.get("tcp1_hog")), fmt(r.get("busy") and 100 * r["busy"], "%.0f%%")))
    return "\n".join(rows)


def count_table(results, key="counts"):
    rows = ["| candidate | user | kernel | total | packets | transfer s | idle instructions/s "
            "(user + kernel) | Mbit/s with the plugin | host busy outside QEMU |",
            "|---|---|---|---|---|---|---|---|---|"]
    for n in CANDIDATES:
        c = results.get(key, {}).get(n)
        if c is None:
            continue
        u, k = per_packet(c)
        s = c["snaps"]
        idle = sum(s["idle"][i] - s["loaded"][i] for i in (0, 1)) / c["idle_s"]
        rows.append("| %s | %.0f | %.0f | %.0f | %.0f | %.1f | %.1fM | %.1f | %.0f%% |" % (
            LABEL[n], u, k, u + k, c["packets"], c["loaded_s"], idle / 1e6, c["mbit"],
            100 * c["load"]["others"]))
    return "\n".join(rows)


def core_table(results):
    rows = ["| round | send 1420 B µs | receive µs | receive, GRO reads µs | handshakes/s |",
            "|---|---|---|---|---|"]
    for r in quiet_rounds(results):
        c = r["core"]
        rows.append("| %d | %.1f | %.1f | %.1f | %.0f |" % (
            r["attempt"], c["send_us"], c["recv_us"], c["recv_gro_us"], c["handshakes_per_s"]))
    return "\n".join(rows)


def rounds_table(results):
    rows = ["| round | at (UTC) | order | host busy outside QEMU | QEMU used (cores) | "
            "load average before / after | reported | TCP 1 stream Mbit/s: veth, wgedge, "
            "wireguard-go |", "|---|---|---|---|---|---|---|---|"]
    for r in results["rounds"]:
        ld = r["load"]
        figures = (", ".join(fmt(r[n]["tcp1"]) for n in CANDIDATES) if ld["quiet"]
                   else "refused: busy host")
        rows.append("| %d | %s | %s | %.0f%% | %.2f | %.2f / %.2f | %s | %s |" % (
            r["attempt"], r["at"], ", ".join(r["order"]), 100 * ld["others"], ld["qemu_cores"],
            ld["loadavg"][0], ld["loadavg"][1], "yes" if ld["quiet"] else "**no**", figures))
    return "\n".join(rows)


def plot(results, m, path):
    """TCP throughput medians and instructions per packet, side by side (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    xs = list(range(len(CANDIDATES)))
    names = [LABEL[n].replace(" <-> ", "\n<-> ").replace(" (", "\n(") for n in CANDIDATES]
    if quiet_rounds(results):
        for off, key, label in ((-0.27, "tcp1", "TCP 1 stream"), (0, "tcp4", "TCP 4 streams"),
                                (0.27, "tcp1_hog", "TCP 1, CPU hog")):
            left.bar([x + off for x in xs], [m[n].get(key) or 0 for n in CANDIDATES], 0.27,
                     label=label)
        left.legend(fontsize=7)
    else:
        left.text(0.5, 0.5, "no quiet round", ha="center", transform=left.transAxes)
    left.set_xticks(xs)
    left.set_xticklabels(names, fontsize=7)
    left.set_ylabel("Mbit/s (median)")
    left.set_title("Throughput in the guest", fontsize=9)
    counts = {n: per_packet(c) for n, c in results["counts"].items()}
    user = [counts.get(n, (0, 0))[0] / 1000 for n in CANDIDATES]
    kern = [counts.get(n, (0, 0))[1] / 1000 for n in CANDIDATES]
    right.bar(xs, user, 0.5, label="user")
    right.bar(xs, kern, 0.5, bottom=user, label="kernel")
    right.set_xticks(xs)
    right.set_xticklabels(names, fontsize=7)
    right.set_ylabel("thousand instructions per packet")
    right.set_title("Guest instructions per 1420-byte packet", fontsize=9)
    right.legend(fontsize=7)
    fig.suptitle("%s guest (QEMU %s), cryptography %s" % (
        results["arch"], CPU[results["arch"]], results["guest"].get("cryptography")), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def section(results):
    arch = results["arch"]
    m = medians(results)
    g = results["guest"]
    png = "benchmarks-arm-%s.png" % arch
    plotted = plot(results, m, os.path.join(ROOT, "docs", png))
    quiet = quiet_rounds(results)
    parts = [
        "## %s: QEMU `%s`, `-smp 2 -m 1024`" % (arch, CPU[arch]),
        "Commands: %s; run %s (%.0f min), on a %d-core host: %s. Guest: kernel %s, Python "
        "%s, cryptography **%s** (%s), %s, %s. %d of %d rounds ran on a quiet host and are "
        "reported (a round is refused when processes other than QEMU used more than %.0f%% "
        "of the host's CPU time during it)." % (
            results["command"], results["date"], results["minutes"], results["host_cpus"],
            results["qemu"], g["uname"], g["python"], g.get("cryptography"), g["crypto"],
            g["wireguard_go"], g["iperf3"], len(quiet), len(results["rounds"]),
            100 * results["max_others"]),
        "### Ratios and instructions per packet\n\n" + summary(results, m),
    ]
    if plotted:
        parts.append("![%s](%s)" % (arch, png))
    floor = floor_table(results)
    if floor:
        parts.append("### The runtime floor\n\nPeak RSS of a process that only loads this "
                     "guest's Python and the crypto the daemon uses and runs each operation "
                     "once (an X25519 key and exchange, one ChaCha20-Poly1305 encryption and "
                     "one failed decryption, BLAKE2s, a UDP socket and epoll), with no wgedge "
                     "module: no daemon built on them can be smaller. Forked after loading is "
                     "how `wgedge IFNAME` starts its daemon (the child maps the file pages its "
                     "parent touched only as it touches them again); the watchdog runs its "
                     "daemons in one process. The last is the same work on the interpreter's "
                     "own OpenSSL library through ctypes, for comparison: a different binding. "
                     "`python3 -m tests.bench.arm.memory floor`, medians of 3.\n\n" + floor)
    parts.append("### Instructions per packet, counted\n\nOne vCPU (`-smp 1`): the work per "
                 "packet, with no vCPU waiting for another.\n\n" + count_table(results))
    if results.get("counts_smp2"):
        parts.append("Two vCPUs (`-smp 2`, as in the rounds). A vCPU that waits for the other "
                     "spins, and when the host does not run the other's thread at that moment "
                     "the spinning is long: these figures include it, and grow with the host's "
                     "load.\n\n" + count_table(results, "counts_smp2"))
    if quiet:
        parts.append("### Medians of the quiet rounds\n\n" + detail(m))
        parts.append("### Core engine in the guest (in memory, fast backend, "
                     "tests/bench/core_bench.py)\n\n" + core_table(results))
    parts.append("### Every round, with the host's load\n\n" + rounds_table(results))
    errors = ["round %d, %s: %s" % (r["attempt"], n, e) for r in quiet for n in CANDIDATES
              for e in r[n].get("errors", [])]
    if errors:
        parts.append("Figures lost to iperf3 errors (left out of the medians):\n\n"
                     + "\n".join("- " + e for e in errors))
    body = "\n\n".join(parts)
    return "<!-- bench-arm %s -->\n%s\n<!-- /bench-arm %s -->" % (arch, body, arch)


def write(results, path=DOC):
    """Replace (or add) this architecture's section; keep the other's. -> path."""
    arch = results["arch"]
    new = section(results)
    old = open(path).read() if os.path.exists(path) else INTRO
    rx = re.compile(r"<!-- bench-arm %s -->.*?<!-- /bench-arm %s -->" % (arch, arch), re.S)
    if rx.search(old):
        text = rx.sub(lambda _: new, old)
    else:
        text = old.rstrip("\n") + "\n\n" + new + "\n"
    text = re.sub(r"^# Benchmarks on emulated ARM\n.*?\n(?=<!-- bench-arm )", INTRO + "\n",
                  text, count=1, flags=re.S)
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return path

