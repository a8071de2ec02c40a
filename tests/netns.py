"""Throwaway network namespaces joined by veth, and WireGuard daemons inside them.

Every namespace a test makes is removed afterwards, even when the test fails. Test traffic only
ever goes to addresses inside these namespaces.

Other WireGuard daemons may run on the same host (another test run, a real wgedge or
wireguard-go), and `wg`, wireguard-go and wgedge all keep their sockets and state in the
host-wide /var/run/wireguard and /var/run/wgedge. So while a `Namespaces` exists, this process
and everything it starts see private run directories: the process has its own mount namespace
(entered once, `private_mounts`) with an empty tmpfs on each run directory (`RunDirs`). Nothing
a test starts can see, reuse or `down` another's daemons, and no one else can see the test's.
"""

import ctypes
import os
import shutil
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*args, ns=None, check=True, input=None, timeout=60, env=None):
    cmd = list(args)
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns] + cmd
    res = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                         env=env)
    if check and res.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), res.returncode,
                                                          res.stdout, res.stderr))
    return res


CLONE_NEWNS = 0x00020000
# The run directories, with the modes wireguard-go/wgedge give them when they create them,
# and /var/log, where a daemon without a syslog daemon to talk to writes its log
# (wgedge/router/daemon.py FALLBACK_LOG): a test's logs stay out of the host's.
RUN_DIRS = (("/var/run/wireguard", "0755"), ("/var/run/wgedge", "0700"), ("/var/log", "0755"))
_private = False


def private_mounts():
    """Move this process into a mount namespace of its own (once; needs root). Mounts made
    here afterwards stay here; the host's later mounts (new network namespaces) still arrive.
    Must run while the process has one thread: unshare(CLONE_NEWNS) refuses otherwise."""
    global _private
    if _private:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "unshare(CLONE_NEWNS) for private run directories: %s"
                      % os.strerror(err))
    _private = True
    sh("mount", "--make-rslave", "/")
    # `ip netns add` makes /run/netns a shared mount (of this namespace's own peer group) the
    # first time it runs here. Do it now: a mount namespace copied from this one before the
    # first network namespace is made (tests/private_run.py's holder) must still receive it.
    os.makedirs("/run/netns", exist_ok=True)
    if sh("mount", "--make-shared", "/run/netns", check=False).returncode != 0:
        sh("mount", "--bind", "/run/netns", "/run/netns")  # not a mount point yet
        sh("mount", "--make-shared", "/run/netns")


class RunDirs:
    """An empty tmpfs on each of RUN_DIRS, in this process's private mount namespace, while
    at least one holder needs it (`acquire`/`release`, counted): daemons started meanwhile
    (through `ip netns exec`, which copies this mount namespace) keep their sockets there."""

    holders = 0

    @classmethod
    def acquire(cls):
        private_mounts()
        if cls.holders == 0:
            for path, mode in RUN_DIRS:
                os.makedirs(path, exist_ok=True)  # the mount point, on the host if missing
                sh("mount", "-t", "tmpfs", "-o", "mode=%s,size=16m" % mode, "wgedge-test", path)
        cls.holders += 1

    @classmethod
    def release(cls):
        cls.holders -= 1
        if cls.holders == 0:
            for path, _ in RUN_DIRS:
                if sh("umount", path, check=False).returncode != 0:
                    sh("umount", "-l", path)  # a straggler still has it open


def have_tools():
    missing = [t for t in ("ip", "wg", "wireguard-go") if shutil.which(t) is None]
    return missing


class Namespaces:
    """Creates namespaces and veth links; `cleanup()` removes everything it made."""

    def __init__(self):
        self.tag = uuid.uuid4().hex[:6]
        self.names = []
        self.procs = []
        self.ifnames = []
        RunDirs.acquire()
        self._run_dirs = True

    def ns(self, label):
        name = "wge-%s-%s" % (label, self.tag)
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def link(self, ns_a, ns_b, addr_a, addr_b, addr6_a=None, addr6_b=None, gro=False):
        """veth between two namespaces with the given /24 (and /64) addresses. `gro` turns on
        the veth's NAPI GRO, as a real NIC driver has it (benchmarks use it for every
        candidate alike)."""
        va, vb = "va" + self.tag, "vb" + self.tag
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", ns_a)
        sh("ip", "link", "set", vb, "netns", ns_b)
        for ns, dev, addr, addr6 in ((ns_a, va, addr_a, addr6_a), (ns_b, vb, addr_b, addr6_b)):
            sh("ip", "addr", "add", addr + "/24", "dev", dev, ns=ns)
            if addr6:
                sh("ip", "-6", "addr", "add", addr6 + "/64", "dev", dev, "nodad", ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
            if gro:
                sh("ethtool", "-K", dev, "gro", "on", ns=ns, check=False)
        return va, vb

    def start_wgedge(self, ns, ifname, env=None):
        e = dict(os.environ)
        e.update(env or {})
        e["PYTHONPATH"] = ROOT
        sh(sys.executable, "-m", "wgedge", "--log", "/tmp/wgedge-%s.log" % ifname, ifname,
           ns=ns, env=e)
        self.ifnames.append((ns, ifname, "wgedge"))

    def start_wireguard_go(self, ns, ifname):
        e = dict(os.environ)
        e["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1"
        e["LOG_LEVEL"] = "error"
        # It detaches but keeps its stderr: give it a file, not a pipe we would wait on.
        with open("/tmp/wireguard-go-%s.log" % ifname, "w") as log:
            res = subprocess.run(["ip", "netns", "exec", ns, "wireguard-go", ifname], env=e,
                                 stdout=log, stderr=log, timeout=30)
        assert res.returncode == 0, open("/tmp/wireguard-go-%s.log" % ifname).read()
        self.ifnames.append((ns, ifname, "wireguard-go"))

    def move(self, ns, ifname, to_ns):
        """Move interface `ifname` from namespace `ns` to `to_ns`; its daemon stays where it
        runs, and with it its UDP socket (as the kernel's socket stays in the namespace the
        interface was made in). Cleanup then deletes the interface where it is now."""
        sh("ip", "link", "set", ifname, "netns", to_ns, ns=ns)
        self.ifnames = [(to_ns if (n, i) == (ns, ifname) else n, i, impl)
                        for n, i, impl in self.ifnames]

    def start(self, impl, ns, ifname, env=None):
        if impl == "wgedge":
            self.start_wgedge(ns, ifname, env)
        else:
            self.start_wireguard_go(ns, ifname)

    def cleanup(self):
        for ns, ifname, _ in self.ifnames:
            sh("ip", "link", "del", ifname, ns=ns, check=False)
        deadline = time.time() + 5
        for _ns, ifname, _ in self.ifnames:
            sock = "/var/run/wireguard/%s.sock" % ifname
            while os.path.exists(sock) and time.time() < deadline:
                time.sleep(0.05)
        for name in self.names:
            sh("ip", "netns", "pids", name, check=False)
            pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (OSError, ValueError):
                    pass
            sh("ip", "netns", "del", name, check=False)
        for _, ifname, _ in self.ifnames:
            for path in ("/var/run/wireguard/%s.sock" % ifname,):
                try:
                    os.unlink(path)
                except OSError:
                    pass
        if self._run_dirs:
            self._run_dirs = False
            RunDirs.release()


def genkey():
    priv = sh("wg", "genkey").stdout.strip()
    pub = sh("wg", "pubkey", input=priv + "\n").stdout.strip()
    return priv, pub


def write_key(tmp_path, name, key):
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(key + "\n")
    os.chmod(path, 0o600)
    return path
