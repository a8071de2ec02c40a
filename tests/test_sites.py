"""Site-to-site: two routers running `wgedge up` from UCI files, a LAN behind each.

Root only: network namespaces, veth, TUN. Covers routing from route_allowed_ips, reload
(keeps sessions; a broken file changes nothing), the watchdog (kill -9, moved host name) and
`down` leaving nothing behind.
"""

import json
import os
import re
import signal
import time

import pytest

from tests.netns import sh
from tests.sitelab import LAN, WAN, SiteLab

pytestmark = [pytest.mark.root]


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.fail("site tests need root (CI runs as root)")
    lab = SiteLab().build()
    try:
        yield lab
    finally:
        lab.close()


def fast_checks(lab, site):
    with open(lab.conf[site], "a") as f:
        f.write("\nconfig wgedge 'settings'\n\toption check_interval '1'\n")


def status(lab, site):
    data = json.loads(lab.wgedge(site, "status", "--json").stdout)
    return {i["interface"]: i for i in data}


def test_lan_to_lan_through_the_tunnel_and_down_leaves_nothing(lab):
    for s in "ab":
        lab.up(s)
    lab.ping("a", LAN["b"][1])
    lab.ping("b", LAN["a"][1])
    ifa = lab.ifname["a"]
    routes = sh("ip", "route", ns=lab.router["a"]).stdout
    assert "192.168.20.0/24 dev %s" % ifa in routes
    st = status(lab, "a")[ifa]
    assert st["peers"][0]["health"] == "ok" and st["peers"][0]["endpoint"] == WAN["b"] + ":51820"
    lab.wgedge("a", "down", ifa)
    assert ifa not in sh("ip", "link", ns=lab.router["a"]).stdout
    assert ifa not in sh("ip", "route", ns=lab.router["a"]).stdout
    assert "10.99.0.1" not in sh("ip", "addr", ns=lab.router["a"]).stdout
    for path in ("/var/run/wireguard/%s.sock", "/var/run/wgedge/%s.pid",
                 "/var/run/wgedge/%s.watchdog.pid", "/var/run/wgedge/%s.state.json"):
        assert not os.path.exists(path % ifa), path % ifa
    assert lab.ping("a", LAN["b"][1], count=1, check=False).returncode != 0


def test_reload_keeps_sessions_and_refuses_a_broken_file(lab):
    for s in "ab":
        lab.up(s)
    lab.ping("a", LAN["b"][1])
    ifa = lab.ifname["a"]
    before = status(lab, "a")[ifa]["peers"][0]
    with open(lab.conf["a"], "a") as f:
        f.write("\nconfig wireguard_%s 'site_c'\n" % ifa +
                "\toption public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='\n"
                "\tlist allowed_ips '192.168.30.0/24'\n\toption route_allowed_ips '1'\n")
    res = lab.wgedge("a", "reload", lab.conf["a"])
    assert "reloaded" in res.stdout
    after = status(lab, "a")[ifa]["peers"]
    assert len(after) == 2
    same = [p for p in after if p["public_key"] == before["public_key"]][0]
    # No new handshake: the session in place before the reload is the one still used.
    assert same["latest_handshake_seconds_ago"] >= before["latest_handshake_seconds_ago"]
    assert "192.168.30.0/24 dev %s" % ifa in sh("ip", "route", ns=lab.router["a"]).stdout
    lab.ping("a", LAN["b"][1])
    good = open(lab.conf["a"]).read()
    with open(lab.conf["a"], "w") as f:
        f.write(good.replace("list allowed_ips '192.168.30.0/24'",
                             "list allowed_ips '192.168.300.0/24'"))
    res = lab.wgedge("a", "reload", lab.conf["a"], check=False)
    assert res.returncode == 1
    assert re.search(r"site-a\.uci:\d+: option 'allowed_ips': bad IPv4", res.stderr)
    assert "refused" in res.stderr
    assert len(status(lab, "a")[ifa]["peers"]) == 2  # nothing changed
    lab.ping("a", LAN["b"][1])


def test_watchdog_restarts_a_killed_daemon(lab):
    for s in "ab":
        lab.up(s)
    lab.ping("a", LAN["b"][1])
    pid_file = "/var/run/wgedge/%s.pid" % lab.ifname["a"]
    with open(pid_file) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline:
        if lab.ping("a", LAN["b"][1], count=1, check=False).returncode == 0:
            break
    else:
        pytest.fail("no traffic within 10 s of the daemon being killed")
    with open(pid_file) as f:
        assert int(f.read()) != pid


def test_watchdog_follows_a_moved_host_name(lab):
    # Router A first resolves site B's name to a wrong address: no handshake ever completes,
    # which counts as stale, so the watchdog keeps resolving; once the name points at B, the
    # tunnel comes up without anyone touching router A.
    fast_checks(lab, "a")
    lab.set_name("a", "10.250.0.77", "site-b.example.net")
    lab.up("b")
    lab.up("a")
    assert lab.ping("a", LAN["b"][1], count=1, check=False).returncode != 0
    lab.set_name("a", WAN["b"], "site-b.example.net")
    deadline = time.time() + 20
    while time.time() < deadline:
        if lab.ping("a", LAN["b"][1], count=1, check=False).returncode == 0:
            break
    else:
        pytest.fail("router A never found site B at its new address")
    assert status(lab, "a")[lab.ifname["a"]]["peers"][0]["endpoint"] == WAN["b"] + ":51820"


def test_up_refuses_a_bad_file_and_creates_nothing(lab, tmp_path):
    bad = tmp_path / "bad.uci"
    bad.write_text("config interface 'wgbad'\n\toption proto 'wireguard'\n"
                   "\toption private_key 'nope'\n\toption listen_port '99999'\n")
    res = lab.wgedge("a", "up", str(bad), check=False)
    assert res.returncode == 1
    assert "bad.uci:3: option 'private_key'" in res.stderr
    assert "bad.uci:4: option 'listen_port'" in res.stderr
    assert "Traceback" not in res.stderr
    assert "wgbad" not in sh("ip", "link", ns=lab.router["a"]).stdout


def test_hardware_watchdog_fed_while_healthy_and_magic_closed(lab, tmp_path):
    dev = tmp_path / "watchdog"
    dev.write_bytes(b"")
    with open(lab.conf["a"], "a") as f:
        f.write("\nconfig wgedge 'settings'\n\toption check_interval '1'\n"
                "\toption watchdog_device '%s'\n" % dev)
    lab.up("a")
    time.sleep(2.5)
    fed = dev.read_bytes()
    assert fed.count(b"\0") >= 2 and b"V" not in fed
    lab.wgedge("a", "down", lab.ifname["a"])
    assert dev.read_bytes().endswith(b"V")


def test_sighup_to_the_watchdog_reloads(lab):
    fast_checks(lab, "a")
    lab.up("a")
    ifa = lab.ifname["a"]
    with open(lab.conf["a"], "a") as f:
        f.write("\nconfig wireguard_%s 'site_c'\n" % ifa +
                "\toption public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='\n"
                "\tlist allowed_ips '192.168.30.0/24'\n")
    with open("/var/run/wgedge/%s.watchdog.pid" % ifa) as f:
        os.kill(int(f.read()), signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline:
        if len(status(lab, "a")[ifa]["peers"]) == 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail("SIGHUP did not reload the configuration")
