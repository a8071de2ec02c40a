"""A private /var/run/wgedge and /var/run/wireguard for one test.

A holder process sits in its own mount namespace (`unshare -m`) with a fresh tmpfs on each of
the two run directories. Every command of the test enters that mount namespace (nsenter), then
its network namespace (`ip netns exec`), so the test sees only the daemons, sockets, pid and
state files it made, whatever other wgedge or wireguard-go instances run on the host, and the
host never sees the test's files. Propagation is `slave`: the namespaces `ip netns add` makes
later (bind mounts under /run/netns) still reach the holder's view, while its own tmpfs mounts
stay private. The test reads the files through /proc/HOLDER/root.
"""

import os
import subprocess
import sys

from tests.netns import ROOT, sh

RUN_DIRS = (("/run/wgedge", "0700"), ("/run/wireguard", "0755"))


class PrivateRun:
    def __init__(self):
        mounts = " && ".join("mkdir -p %s && mount -t tmpfs -o mode=%s,size=4m tmpfs %s"
                             % (d, mode, d) for d, mode in RUN_DIRS)
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "slave", "sh", "-c",
             mounts + " && echo ready && exec sleep 100000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.holder.stdout.readline().strip()
        if line != "ready":
            self.holder.kill()
            raise AssertionError("private mount namespace: %s" % self.holder.stderr.read())
        self.root = "/proc/%d/root" % self.holder.pid

    def cmd(self, args, ns=None):
        """`args` as a command line inside the private run directories (and namespace `ns`)."""
        prefix = ["nsenter", "-t", str(self.holder.pid), "-m"]
        if ns is not None:
            prefix += ["ip", "netns", "exec", ns]
        return prefix + list(args)

    def sh(self, *args, ns=None, check=True, timeout=60, input=None, env=None):
        res = subprocess.run(self.cmd(args, ns), capture_output=True, text=True,
                             timeout=timeout, input=input, env=env)
        if check and res.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(args), res.returncode,
                                                              res.stdout, res.stderr))
        return res

    def wgedge_cmd(self, *args, ns=None):
        return self.cmd(["env", "PYTHONPATH=" + ROOT, sys.executable, "-m", "wgedge"]
                        + list(args), ns)

    def wgedge(self, *args, ns=None, check=True, timeout=120):
        res = subprocess.run(self.wgedge_cmd(*args, ns=ns), capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError("wgedge %s failed (%d):\n%s\n%s" % (
                " ".join(args), res.returncode, res.stdout, res.stderr))
        return res

    def path(self, path):
        """Where the test reads `path` (under /var/run) as the commands above see it."""
        return self.root + path.replace("/var/run/", "/run/", 1)

    def files(self):
        """Every file left in the two private run directories."""
        out = []
        for d, _ in RUN_DIRS:
            out += [os.path.join(d, f) for f in sorted(os.listdir(self.root + d))]
        return out

    def close(self):
        self.holder.kill()
        self.holder.wait()


def processes_in(ns):
    """Pids of the processes in network namespace `ns`."""
    return sh("ip", "netns", "pids", ns, check=False).stdout.split()
