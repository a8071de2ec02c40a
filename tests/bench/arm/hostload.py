"""How busy the host was while the guest measured: CPU time of everything but QEMU.

QEMU's own threads (one per vCPU, plus I/O) are the benchmark; anything else that ran on the
host took CPU from them, which slows an emulated guest in proportion. A round is reported
only if the rest of the host used at most MAX_OTHERS of the host's CPU time meanwhile.
"""

import os
import time

# Fraction of the host's CPU time (all cores) that processes other than QEMU may use during a
# round that is reported. 0.15 on a 2-core host is 0.3 of one core: a guest with two busy
# vCPUs then loses at most about 15% of its CPU, and loses it throughout the round, so its
# candidates are hit alike. Other engineers' tests on the shared machine often exceed this.
MAX_OTHERS = float(os.environ.get("BENCH_ARM_MAX_HOST_BUSY", "0.15"))


def _host():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return sum(v), sum(v) - v[3] - v[4]  # total, busy (idle and iowait excluded)


def _proc(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def _loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Window:
    """start(); ...; stop() -> dict with the host's load over the window."""

    def __init__(self, qemu_pid):
        self.pid = qemu_pid

    def start(self):
        self.t0 = time.monotonic()
        self.total0, self.busy0 = _host()
        self.qemu0 = _proc(self.pid)
        self.load0 = _loadavg()
        return self

    def stop(self):
        total, busy = _host()
        qemu = _proc(self.pid)
        span = max(1, total - self.total0)
        others = max(0, (busy - self.busy0) - (qemu - self.qemu0)) / span
        return {"seconds": time.monotonic() - self.t0, "others": others,
                "qemu_cores": (qemu - self.qemu0) / span * os.cpu_count(),
                "loadavg": [self.load0, _loadavg()], "quiet": others <= MAX_OTHERS}


def wait_quiet(qemu_pid, timeout, step=3.0):
    """Wait until the rest of the host stays under MAX_OTHERS for `step` seconds, or until
    `timeout` -> whether it did (the round then runs either way and is judged by its own
    window)."""
    deadline = time.monotonic() + timeout
    while True:
        w = Window(qemu_pid).start()
        time.sleep(step)
        if w.stop()["quiet"]:
            return True
        if time.monotonic() >= deadline:
            return False
