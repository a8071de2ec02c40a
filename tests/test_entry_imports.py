"""Heavy imports only where used: which of pyroute2 (netlink) and cryptography each entry
point loads, seen in sys.modules of a fresh interpreter that ran it. `check`, `info`, key
generation and the daemon (`wgedge IFNAME`) never touch netlink; only `up`, `down` and
`reload` (wgedge/router/netsetup.py) do."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.netns import ROOT, genkey

HEAVY = ("pyroute2", "cryptography")
# Runs `body` (which sets `code`), then prints the heavy top-level packages now imported.
PROGRAM = """
import json, sys
%s
print("HEAVY=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(%r))))
sys.exit(code)
"""


def loaded_by(body, cmd_prefix=(), timeout=60):
    res = subprocess.run(list(cmd_prefix) + [sys.executable, "-c", PROGRAM % (body, HEAVY)],
                         capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
    lines = [line for line in res.stdout.splitlines() if line.startswith("HEAVY=")]
    assert lines, "no report (exit %d):\n%s\n%s" % (res.returncode, res.stdout, res.stderr)
    return res.returncode, set(json.loads(lines[-1][len("HEAVY="):])), res.stderr


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "wgedge"
    path.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key 'generate'\n\toption listen_port '51820'\n"
                    "\tlist addresses '10.9.0.1/24'\n\n"
                    "config wireguard_wg0\n\toption public_key '%s'\n"
                    "\tlist allowed_ips '10.9.0.2/32'\n" % genkey()[1])
    path.chmod(0o600)
    return str(path)


def test_check_imports_neither_netlink_nor_cryptography(config):
    code, heavy, err = loaded_by("from wgedge.cli import main\ncode = main(['check', %r])"
                                 % config)
    assert code == 0, err
    assert heavy == set()


def test_key_generation_imports_neither(config):
    code, heavy, err = loaded_by(
        "from wgedge.config import loader\nfrom wgedge.router import keys\n"
        "loaded = loader.load(%r)\nkeys.generate_keys(loaded)\n"
        "code = 0 if loaded.interfaces[0].private_key else 1" % config)
    assert code == 0, err
    assert "generate" not in open(config).read()
    assert heavy == set()


def test_info_imports_no_netlink():
    code, heavy, err = loaded_by("from wgedge.cli import main\ncode = main(['info'])")
    assert code == 0, err
    assert "pyroute2" not in heavy


def test_netsetup_imports_netlink():
    """The check sees an import when there is one (the part of `up` that needs netlink)."""
    code, heavy, err = loaded_by("from wgedge.router import netsetup\ncode = 0")
    assert code == 0, err
    assert "pyroute2" in heavy


# The daemon in its own network and mount namespaces (its run directories on tmpfs), stopped
# with SIGTERM once its control socket answers, as `down` would stop it.
DAEMON = """
import os, signal, socket, threading, time
def answers():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect("/var/run/wireguard/wgimp0.sock")
        s.sendall(b"get=1\\n\\n")
        return b"errno=" in s.recv(65536)
    except OSError:
        return False
    finally:
        s.close()
def stop_when_up():  # once the loop answers, its SIGTERM handler is in place
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not answers():
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=stop_when_up, daemon=True).start()
from wgedge.cli import main
code = main(["-f", "wgimp0"])
"""


@pytest.mark.root
def test_the_daemon_imports_no_netlink():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare")
    mounts = ("mkdir -p /var/run/wgedge /var/run/wireguard && "
              "mount -t tmpfs -o mode=0700 tmpfs /var/run/wgedge && "
              "mount -t tmpfs tmpfs /var/run/wireguard && exec \"$@\"")
    code, heavy, err = loaded_by(DAEMON, ["unshare", "-n", "-m", "--propagation", "private",
                                          "sh", "-c", mounts, "sh"], timeout=120)
    assert code == 0, err
    assert "pyroute2" not in heavy
