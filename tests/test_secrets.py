"""Private keys never leave: not in logs, status output or error messages; runtime files are
root-only; a config file with keys readable by others is warned about."""

import base64
import json
import os
import sys

import pytest

from tests.netns import ROOT, genkey, sh
from tests.sitelab import SiteLab

pytestmark = [pytest.mark.root]


def forms(b64key):
    raw = base64.b64decode(b64key)
    return [b64key, raw.hex(), b64key[:20], raw.hex()[:24]]


def test_keys_not_in_log_status_or_files(nets, tmp_path):
    ns = nets.ns("s")
    ifname = "wgs" + nets.tag[:4]
    log = tmp_path / "daemon.log"
    env = dict(os.environ, PYTHONPATH=ROOT)
    sh(sys.executable, "-m", "wgedge", "-v", "--log", str(log), ifname, ns=ns, env=env)
    nets.ifnames.append((ns, ifname, "wgedge"))
    priv, _ = genkey()
    psk = sh("wg", "genpsk").stdout.strip()
    key = tmp_path / "k"
    key.write_text(priv + "\n")
    pskf = tmp_path / "p"
    pskf.write_text(psk + "\n")
    _, peer_pub = genkey()
    sh("wg", "set", ifname, "private-key", str(key), "peer", peer_pub, "preshared-key",
       str(pskf), "allowed-ips", "10.5.0.2/32", "endpoint", "127.0.0.1:9", ns=ns)
    # A malformed line carrying (a corrupted copy of) the key: the refusal is logged, the
    # key is not.
    import socket

    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect("/var/run/wireguard/%s.sock" % ifname)
    c.sendall(("set=1\nprivate_key=%sz\n\n" % base64.b64decode(priv).hex()[:-1]).encode())
    assert c.recv(100) == b"errno=-22\n\n"
    c.close()
    sh("ping", "-c", "1", "-W", "1", "10.5.0.2", ns=ns, check=False)
    status = sh(sys.executable, "-m", "wgedge", "status", ns=ns, env=env).stdout
    as_json = sh(sys.executable, "-m", "wgedge", "status", "--json", ns=ns, env=env).stdout
    assert any(i["interface"] == ifname for i in json.loads(as_json))
    status += as_json
    text = log.read_text()
    assert "control: refused set" in text  # the log is really being written
    for secret in forms(priv) + forms(psk):
        assert secret not in text, "secret in the daemon log"
        assert secret not in status, "secret in wgedge status"
    for path in ("/var/run/wireguard/%s.sock" % ifname, "/var/run/wgedge/%s.pid" % ifname):
        assert os.stat(path).st_mode & 0o077 == 0, path
    assert os.stat("/var/run/wgedge").st_mode & 0o077 == 0


def test_config_errors_do_not_echo_keys_and_loose_modes_warned(tmp_path):
    priv, _ = genkey()
    bad = priv[:-3] + "!!="  # a key with a typo: the message must not repeat it
    conf = tmp_path / "wgedge"
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key '%s'\n" % bad)
    conf.chmod(0o644)
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = sh(sys.executable, "-m", "wgedge", "check", str(conf), env=env, check=False)
    assert res.returncode == 1 and "private_key" in res.stderr
    assert bad[:20] not in res.stderr and priv[:20] not in res.stderr
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key '%s'\n" % priv)
    res = sh(sys.executable, "-m", "wgedge", "check", str(conf), env=env)
    assert "readable by group or others" in res.stderr and priv[:20] not in res.stderr
    conf.chmod(0o600)
    res = sh(sys.executable, "-m", "wgedge", "check", str(conf), env=env)
    assert "readable" not in res.stderr


def test_sigkill_of_watchdog_and_daemon_then_down_cleans_and_up_works():
    import signal
    import time

    lab = SiteLab().build()
    try:
        lab.up("a")
        lab.up("b")
        lab.ping("a", "192.168.20.2")
        ifa = lab.ifname["a"]
        for name in (ifa + ".watchdog.pid", ifa + ".pid"):
            with open("/var/run/wgedge/" + name) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        time.sleep(0.5)
        lab.wgedge("a", "down", ifa)
        assert ifa not in sh("ip", "link", ns=lab.router["a"]).stdout
        assert "192.168.20.0/24" not in sh("ip", "route", ns=lab.router["a"]).stdout
        for path in ("/var/run/wireguard/%s.sock", "/var/run/wgedge/%s.pid",
                     "/var/run/wgedge/%s.watchdog.pid", "/var/run/wgedge/%s.state.json"):
            assert not os.path.exists(path % ifa), path % ifa
        lab.up("a")
        deadline = time.time() + 10
        while lab.ping("a", "192.168.20.2", count=1, check=False).returncode:
            assert time.time() < deadline, "link not back after down + up"
    finally:
        lab.close()
