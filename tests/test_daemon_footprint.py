"""What a running `wgedge IFNAME` daemon loads (its RSS on a router) and what it says at start-up
about the cryptography it found. Real daemons in namespaces (root)."""

import os
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT

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
}


def _start(ns, ifname, code=None, extra=()):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("WGEDGE_SYSLOG", None)
    head = [sys.executable, "-X", "importtime"]
    head += ["-c", code] if code else ["-m", "wgedge"]
    return subprocess.Popen(["ip", "netns", "exec", ns] + head + list(extra) + ["-f", ifname],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _run_until_up(ns, ifname, code=None, extra=()):
    """Start a foreground daemon, wait for its control socket, stop it -> its stderr."""
    proc = _start(ns, ifname, code, extra)
    sock = "/var/run/wireguard/%s.sock" % ifname
    deadline = time.monotonic() + 60
    try:
        while not os.path.exists(sock):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no control socket after 60 s"
            time.sleep(0.1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    return err


def _imported(stderr):
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    names.discard("package")  # the header line
    return names


def test_the_daemon_loads_none_of_what_it_does_not_need(nets):
    ns = nets.ns("fp")
    ifname = "wgfp" + nets.tag[:4]
    err = _run_until_up(ns, ifname)
    names = _imported(err)
    assert "wgedge.io.loop" in names and "wgedge.crypto.fast" in names, err[-2000:]
    loaded = {m: why for m, why in NOT_IN_THE_DAEMON.items() if m in names}
    assert not loaded, loaded
    # This venv's cryptography is a fast one: no warning at start-up.
    assert "takes the slow path" not in err


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
