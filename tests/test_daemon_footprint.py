"""What a running `wgedge IFNAME` daemon loads (its RSS on a router) and what it says at start-up
about the cryptography it found. Real daemons in namespaces (root): what each imported is read
from `-X importtime` on its stderr, which lists every import of the process as it happens,
those made after start-up too."""

import os
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh, write_key

pytestmark = [pytest.mark.root]

# Modules the interface daemon does not need, each a measured share of its RSS
# (docs/performance.md, "Memory"): the daemon must not load them.
NOT_IN_THE_DAEMON = {
    "argparse": "the daemon's arguments are read without it (cli._plain_daemon_args)",
    "shutil": "argparse's help formatter brings it, with bz2 and lzma",
    "logging.handlers": "syslog goes through wgedge.io.syslog",
    "hashlib": "BLAKE2s comes from _blake2",
    "_hashlib": "loads the interpreter's libcrypto beside cryptography's OpenSSL",
    "hmac": "HMAC-BLAKE2s is written out in wgedge.crypto.fast",
    "platform": "sysinfo reads os.uname()",
    "json": "only `status --json` needs it",
    "cryptography.hazmat.backends.openssl.backend": "RSA, EC and padding modules: X25519 keys "
                                                    "load without it",
    "pyroute2": "netlink is for `up`/`reload`, not the interface daemon",
    "cryptography.hazmat.primitives.ciphers": "its __init__ loads every cipher, mode and the "
                                              "decrepit algorithms: ChaCha20Poly1305 comes "
                                              "from the Rust bindings",
    "cryptography.hazmat.primitives.asymmetric.x25519": "X25519 keys load through the Rust "
                                                        "bindings",
    "logging": "the daemon logs through wgedge.io.logger",
    "traceback": "control.where_it_failed reads the frames itself",
}


def _start(ns, ifname, code=None, extra=(), stderr=subprocess.PIPE, env=None):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    env.pop("WGEDGE_SYSLOG", None)
    head = [sys.executable, "-X", "importtime"]
    head += ["-c", code] if code else ["-m", "wgedge"]
    return subprocess.Popen(["ip", "netns", "exec", ns] + head + list(extra) + ["-f", ifname],
                            env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


class _Daemon:
    """A foreground daemon whose stderr (its log lines and -X importtime's) goes to a file."""

    def __init__(self, ns, ifname, path, env=None):
        self.ifname, self.path = ifname, path
        with open(path, "w") as err:
            self.proc = _start(ns, ifname, stderr=err, env=env)

    def stderr(self):
        with open(self.path) as f:
            return f.read()

    def wait_up(self):
        """Until its last start-up line: privileges are dropped, the loop about to run."""
        deadline = time.monotonic() + 60
        while "interface %s is up" % self.ifname not in self.stderr():
            assert self.proc.poll() is None, self.stderr()[-3000:]
            assert time.monotonic() < deadline, "not up after 60 s"
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        return self.stderr()


def _imported(stderr):
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    names.discard("package")  # the header line
    return names


def test_the_daemon_loads_none_of_what_it_does_not_need(nets, tmp_path):
    """Two daemons, configured through their control sockets, a handshake and pings through
    the tunnel between them, then `wg show`: neither imported anything in NOT_IN_THE_DAEMON,
    at start-up or since. ctypes is for privileges.drop alone (prctl and capset have no
    other way in): the first daemon keeps its privileges (WGEDGE_KEEP_PRIVILEGES=1) and must
    not load it, though its UDP sockets are steered by a BPF program (udp.py once used ctypes
    for that); the second drops them and does load it, which shows the check sees it."""
    ns_a, ns_b = nets.ns("fpa"), nets.ns("fpb")
    nets.link(ns_a, ns_b, "10.213.0.1", "10.213.0.2")
    sites = [(ns_a, "wgfa" + nets.tag[:4], "10.89.0.1", 2, 40021),
             (ns_b, "wgfb" + nets.tag[:4], "10.89.0.2", 1, 40022)]
    keys = [genkey(), genkey()]
    daemons = [_Daemon(ns, ifname, str(tmp_path / (ifname + ".err")), env)
               for (ns, ifname, _, _, _), env in zip(sites, ({"WGEDGE_KEEP_PRIVILEGES": "1"},
                                                             {}), strict=True)]
    try:
        for d in daemons:
            d.wait_up()
        for i, (ns, ifname, addr, peer_host, port) in enumerate(sites):
            other = 1 - i
            sh("wg", "set", ifname, "private-key", write_key(tmp_path, ifname, keys[i][0]),
               "listen-port", str(port), "peer", keys[other][1], "allowed-ips",
               sites[other][2] + "/32", "endpoint",
               "10.213.0.%d:%d" % (peer_host, sites[other][4]), ns=ns)
            sh("ip", "addr", "add", addr + "/24", "dev", ifname, ns=ns)
            sh("ip", "link", "set", ifname, "up", ns=ns)
        sh("ping", "-c", "3", "-W", "5", "10.89.0.2", ns=ns_a, timeout=60)
        shown = sh("wg", "show", sites[0][1], ns=ns_a).stdout
        assert "latest handshake" in shown, shown
    finally:
        errs = [d.stop() for d in daemons]
    for err in errs:
        names = _imported(err)
        assert "wgedge.io.loop" in names and "wgedge.crypto.fast" in names, err[-2000:]
        loaded = {m: why for m, why in NOT_IN_THE_DAEMON.items() if m in names}
        assert not loaded, loaded
        # This venv's cryptography is a fast one: no warning at start-up.
        assert "takes the slow path" not in err
    kept, dropped = errs
    assert "privileges: dropped" not in kept and "privileges: dropped" in dropped
    assert "ctypes" not in _imported(kept) and "_ctypes" not in _imported(kept)
    assert "ctypes" in _imported(dropped)


FAKE_VERSION = ("import sys, cryptography; cryptography.__version__ = '38.0.4'; "
                "from wgedge.cli import main; sys.exit(main())")


def test_start_up_log_warns_about_a_slow_cryptography(nets, tmp_path):
    ns = nets.ns("fs")
    ifname = "wgfs" + nets.tag[:4]
    log = tmp_path / "daemon.log"
    # Wait for the log lines themselves: the control socket can appear before the daemon
    # writes them, and stopping it then left an empty log (one run in six under load).
    proc = _start(ns, ifname, FAKE_VERSION, ["--log", str(log)])
    deadline = time.monotonic() + 60
    text = ""
    try:
        while "install 43.0.0 or newer" not in text:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no slow-path warning after 60 s: %r" % text
            time.sleep(0.1)
            text = log.read_text() if log.exists() else ""
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert "INFO: crypto: fast (cryptography 38.0.4 " in text and "AEAD slow path" in text, text
    assert ("WARNING: cryptography 38.0.4 takes the slow path: ChaCha20-Poly1305 through Python "
            "and cffi") in text, text
    assert "install 43.0.0 or newer" in text
