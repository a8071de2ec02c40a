"""`make bench-arm ARCH=arm64|armhf`: wgedge against wireguard-go inside one emulated ARM guest.

    python -m tests.bench.arm ARCH      (needs root; the image from tests.bench.arm.image)

1. Builds the instruction-counting plugin (plugin.py) for the installed QEMU.
2. Boots the benchmark guest (-smp 2 -m 1024, no plugin) and runs interleaved rounds
   (guest_bench.py round N), each in a window of host load (hostload.py): a round that ran
   while the rest of the host was busy is refused and another is run, up to MAX_ATTEMPTS.
3. Boots it again with the plugin and counts guest instructions per packet for each
   candidate, user and kernel apart, idle rate subtracted (guest_bench.py count NAME): once
   with one vCPU, the figure reported first, and once with two. With two vCPUs on a shared
   host, a vCPU waiting for the other (whose host thread is not running) spins, and those
   instructions are counted too: on arm64 the bare veth took 20.8k instructions per packet
   with -smp 2 and 2.5k with -smp 1, back to back on 2026-11-30.
   `--counts-only` keeps the rounds of the last run (results.json) and counts again.
4. Writes this architecture's section of docs/benchmarks-arm.md and its plot (report.py);
   the raw results go to .cache/qemu/bench-ARCH/results.json.

The plugin is not loaded during the rounds: a callback per translation block slows the guest.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from tests.bench.arm import hostload, image, plugin, report
from tests.qemu import cpio
from tests.qemu.guest import MACHINES, Guest, GuestError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
ROUNDS = int(os.environ.get("BENCH_ARM_ROUNDS", "3"))
MAX_ATTEMPTS = int(os.environ.get("BENCH_ARM_MAX_ATTEMPTS", str(2 * ROUNDS)))
# What the guest needs beyond the image: the benchmark code (tests/), run from /opt/bench.
GUEST_FILES = ["tests/netns.py", "tests/bench/__init__.py",
               "tests/bench/core_bench.py", "tests/bench/tunnel_bench.py",
               "tests/bench/arm/__init__.py", "tests/bench/arm/guest_bench.py",
               "tests/bench/arm/memory.py"]
GUEST_PY = "cd /opt/bench && PYTHONPATH=/opt/bench python3 -m tests.bench.arm.guest_bench"
BOOT_TIMEOUT = 300
# vCPU counts of the counting boots: 1 first (the figure reported first), then 2.
COUNT_SMP = [int(n) for n in os.environ.get("BENCH_ARM_COUNT_SMP", "1 2").split()]
# Before each round, wait up to this long for the rest of the host to quieten down.
WAIT_QUIET = float(os.environ.get("BENCH_ARM_WAIT_QUIET", "60"))


def bench_env():
    """The BENCH_ARM_* settings of this run, as a command line would show them."""
    return "".join("%s=%s " % (k, v) for k, v in sorted(os.environ.items())
                   if k.startswith("BENCH_ARM_"))


def qemu_version():
    binary = MACHINES["arm64"][0]
    return subprocess.run([binary, "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]


def boot(arch, work, plugin_args=(), smp=2):
    """-> a started Guest at its shell prompt, with the firmware's own wgedge stopped."""
    img = image.image_dir(arch)
    initrd = os.path.join(work, "initrd-bench.gz")
    extra = initrd + ".extra"
    with tempfile.TemporaryDirectory() as tree:  # a tree, so the archive has the directories
        for rel in GUEST_FILES:
            dest = os.path.join(tree, "opt", "bench", rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy(os.path.join(ROOT, rel), dest)
        arc = cpio.Archive(extra)
        arc.add_tree(tree)
        arc.close()
    with open(initrd, "wb") as out:  # the kernel unpacks both archives, in this order
        for part in (os.path.join(img, "initrd.gz"), extra):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    os.unlink(extra)
    binary, machine = MACHINES[arch]
    guest = Guest(arch, img, initrd, os.path.join(work, "console-%s.log" % arch), None, 0)
    # No link to the host is needed: restricted user networking, no forwarded ports.
    guest.cmd = ([binary] + machine + ["-smp", str(smp), "-m", "1024", "-display", "none",
                                       "-serial", "stdio", "-monitor", "none", "-no-reboot",
                                       "-kernel", os.path.join(img, "vmlinuz"), "-initrd", initrd,
                                       "-append", "console=ttyAMA0 rdinit=/init panic=-1 "
                                       "loglevel=3",
                                       "-netdev", "user,id=n0,restrict=on",
                                       "-device", "virtio-net-device,netdev=n0",
                                       "-device", "virtio-rng-device"] + list(plugin_args))
    guest.start()
    guest.wait_for(r"(?s)Starting wgedge: .*?\b(OK|FAIL)\r?\n", BOOT_TIMEOUT)
    guest.wait_for(r"# ", 60)
    guest.run("stty -echo 2>/dev/null; export PS1=''", check=False)
    guest.run("/etc/init.d/S50wgedge stop >/dev/null 2>&1", check=False, timeout=120)
    return guest


def parse(tag, text):
    m = re.search(r"@@%s (.*?)@@" % tag, text)
    if m is None:
        raise GuestError("no %s in the guest's answer:\n%s" % (tag, text[-3000:]))
    return json.loads(m.group(1))


def run_rounds(guest, results):
    attempt = 0
    while (sum(1 for r in results["rounds"] if r["load"]["quiet"]) < ROUNDS
           and attempt < MAX_ATTEMPTS):
        hostload.wait_quiet(guest.proc.pid, WAIT_QUIET)
        window = hostload.Window(guest.proc.pid).start()
        _, out = guest.run("%s round %d" % (GUEST_PY, attempt), timeout=1800)
        load = window.stop()
        res = parse("RESULT", out)
        res.update(attempt=attempt, load=load, at=time.strftime("%H:%M:%S"))
        results["rounds"].append(res)
        print("  round %d: host busy outside QEMU %.0f%% (limit %.0f%%), %s; TCP 1 stream "
              "Mbit/s %s" % (attempt, 100 * load["others"], 100 * hostload.MAX_OTHERS,
                             "kept" if load["quiet"] else "REFUSED (busy host)",
                             ", ".join("%s %s" % (n, report.fmt(res[n]["tcp1"]))
                                       for n in res["order"])),
              flush=True)
        attempt += 1


def run_counts(guest, counters, results, key="counts"):
    results[key] = {}
    for name in report.CANDIDATES:
        window = hostload.Window(guest.proc.pid).start()
        # The marker is split by quotes in what is typed, so the console's echo never matches.
        guest.send('%s count %s; echo "@@DO""NE=$?@@"\n' % (GUEST_PY, name))
        snaps, res = {}, None
        while True:
            m = guest.wait_for(r"@@(SNAP (\w+)|COUNT (.*?)|DONE=(\d+))@@", 1800)
            if m.group(2):
                snaps[m.group(2).decode()] = plugin.read_counters(counters)
                guest.send("\n")
            elif m.group(3):
                res = json.loads(m.group(3))
            else:
                break
        if res is None or m.group(4) != b"0":
            raise GuestError("counting %s failed:\n%s" % (name, guest.tail()))
        res["load"] = window.stop()
        res["snaps"] = snaps
        results[key][name] = res
        per = report.per_packet(res)
        print("  %s: %.0f instructions per packet (user %.0f, kernel %.0f), %.1f Mbit/s with "
              "the plugin" % (name, per[0] + per[1], per[0], per[1], res["mbit"]), flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    counts_only = "--counts-only" in argv
    argv = [a for a in argv if a != "--counts-only"]
    if len(argv) != 1 or argv[0] not in MACHINES:
        print("usage: python -m tests.bench.arm [--counts-only] arm64|armhf", file=sys.stderr)
        return 2
    arch = argv[0]
    if os.geteuid() != 0:
        print("bench-arm needs root (network namespaces inside the guest are fine, but QEMU's "
              "guest setup and the host's load figures are read as root)", file=sys.stderr)
    work = image.image_dir(arch)
    if not os.path.exists(os.path.join(work, "initrd.gz")):
        print("no benchmark image in %s: run `make bench-arm ARCH=%s`" % (work, arch),
              file=sys.stderr)
        return 1
    try:
        so = plugin.build_plugin()
    except plugin.PluginError as exc:
        print("bench-arm: %s" % exc, file=sys.stderr)
        return 1
    results = {"arch": arch, "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
               "qemu": qemu_version(), "host_cpus": os.cpu_count(),
               "max_others": hostload.MAX_OTHERS, "rounds": [], "counts": {},
               "command": "`%spython -m tests.bench.arm %s` (what `make bench-arm ARCH=%s` "
                          "runs)" % (bench_env(), arch, arch)}
    saved = os.path.join(work, "results.json")
    t0 = time.monotonic()
    if counts_only:  # keep the rounds of the last run, count again
        with open(saved) as f:
            results = json.load(f)
        t0 -= results.get("minutes", 0) * 60
        results["command"] += ", then `%spython -m tests.bench.arm --counts-only %s`" % (
            bench_env(), arch)
    else:
        print("== %s: rounds (guest without the plugin)" % arch, flush=True)
        guest = boot(arch, work)
        try:
            _, out = guest.run(GUEST_PY + " info", timeout=300)
            results["guest"] = parse("INFO", out)
            print("  guest: %s" % results["guest"]["crypto"], flush=True)
            run_rounds(guest, results)
        finally:
            guest.close()
            with open(saved, "w") as f:
                json.dump(results, f, indent=1, sort_keys=True)
    counters = os.path.join(work, "counters")
    for smp in COUNT_SMP:
        key = "counts" if smp == 1 else "counts_smp%d" % smp
        print("== %s: instructions per packet (guest with the plugin, -smp %d)" % (arch, smp),
              flush=True)
        guest = boot(arch, work, plugin.qemu_args(so, counters, arch), smp=smp)
        try:
            run_counts(guest, counters, results, key)
        finally:
            guest.close()
    results["minutes"] = (time.monotonic() - t0) / 60
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    doc = report.write(results)
    print("written to %s (%.0f min)" % (os.path.relpath(doc, ROOT), results["minutes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
