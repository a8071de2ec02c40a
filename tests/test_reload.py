"""`wgedge reload`, SIGHUP and endpoint host names, in network namespaces (root only).

Each test has its own network namespaces and private run directories (tests/private_run.py),
so it never meets another wgedge on the host. Two routers A and B are linked by a veth and
each runs `wgedge up` from a UCI file of the test's. Host names resolve through the
namespace's own /etc/netns/NS/hosts; the resolver is pointed at the namespace's own loopback
(nothing listens there), so a name the hosts file lacks fails at once and no DNS query
leaves the namespaces.
"""

import json
import os
import shutil
import signal
import time

import pytest

from tests.netns import genkey, sh
from tests.private_run import PrivateRun
from tests.test_manage import write_conf

pytestmark = [pytest.mark.root]
WAN = ("10.252.0.1", "10.252.0.2")


class Pair:
    """Routers A and B, each with a key pair, a file and a tunnel address (10.60.0.1/.2)."""

    def __init__(self, nets, tmp_path):
        self.nets, self.tmp = nets, tmp_path
        self.run = PrivateRun()
        self.etc = []
        self.ns = {"a": nets.ns("ra"), "b": nets.ns("rb")}
        nets.link(self.ns["a"], self.ns["b"], *WAN)
        self.keys = {s: genkey() for s in "ab"}
        self.ifname = {s: "wr%s%s" % (s, nets.tag) for s in "ab"}
        self.conf = {s: tmp_path / ("%s.uci" % s) for s in "ab"}
        for s in "ab":
            d = "/etc/netns/" + self.ns[s]
            os.makedirs(d, exist_ok=True)
            self.etc.append(d)
            with open(d + "/resolv.conf", "w") as f:
                f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
            self.hosts(s, {})

    def hosts(self, site, names):
        with open("/etc/netns/%s/hosts" % self.ns[site], "w") as f:
            f.write("127.0.0.1 localhost\n" + "".join("%s %s\n" % (a, n)
                                                      for n, a in names.items()))

    def write(self, site, extra_peers=(), endpoint=None, peer_opts=""):
        """The file of `site`: its interface and the other router as peer (at `endpoint`,
        default its WAN address), plus `extra_peers` ((name, pub, ips, opts))."""
        other = "b" if site == "a" else "a"
        me = "1" if site == "a" else "2"
        host = endpoint or WAN["ab".index(other)]
        peers = [("other", self.keys[other][1], ["10.60.0.%s/32" % ("2" if me == "1" else "1")],
                  "\toption endpoint_host '%s'\n" % host + peer_opts)]
        write_conf(self.conf[site], self.ifname[site], self.keys[site][0],
                   ["10.60.0.%s/24" % me], peers + list(extra_peers))

    def up(self, site, *extra):
        return self.run.wgedge("up", str(self.conf[site]), *extra, ns=self.ns[site])

    def wgedge(self, site, *args, check=True):
        return self.run.wgedge(*args, ns=self.ns[site], check=check)

    def ping(self, site="a"):
        dst = "10.60.0.2" if site == "a" else "10.60.0.1"
        sh("ping", "-c", "3", "-i", "0.2", "-W", "2", dst, ns=self.ns[site])

    def handshakes(self, site="a"):
        return self.run.sh("wg", "show", self.ifname[site], "latest-handshakes",
                           ns=self.ns[site]).stdout

    def peers(self, site, ifname=None):
        out = self.run.sh("wg", "show", ifname or self.ifname[site], "peers", ns=self.ns[site])
        return out.stdout.split()

    def pid(self, ifname, kind="pid"):
        with open(self.run.path("/var/run/wgedge/%s.%s" % (ifname, kind))) as f:
            return int(f.read())

    def log(self, ifname):
        try:
            with open(self.run.root + "/var/log/wgedge-%s.log" % ifname) as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, ifname, text, seconds=30, after=0):
        deadline = time.monotonic() + seconds
        while text not in self.log(ifname)[after:]:
            assert time.monotonic() < deadline, "no %r in the log of %s:\n%s" % (
                text, ifname, self.log(ifname))
            time.sleep(0.1)

    def close(self):
        for d in self.etc:
            shutil.rmtree(d, ignore_errors=True)
        self.run.close()


@pytest.fixture
def pair(nets, tmp_path):
    p = Pair(nets, tmp_path)
    try:
        yield p
    finally:
        p.close()


def wait_reload_done(pair, ifname, before, seconds=30):
    """The watchdog's reload outcome once its count passed `before` (IFNAME.reload.json)."""
    path = pair.run.path("/var/run/wgedge/%s.reload.json" % ifname)
    deadline = time.monotonic() + seconds
    while True:
        try:
            with open(path) as f:
                rec = json.load(f)
            if rec["done"] > before:
                return rec
        except (OSError, ValueError, KeyError):
            pass
        assert time.monotonic() < deadline, "no reload by the watchdog of %s" % ifname
        time.sleep(0.1)


def reloads_done(pair, ifname):
    try:
        with open(pair.run.path("/var/run/wgedge/%s.reload.json" % ifname)) as f:
            return json.load(f)["done"]
    except (OSError, ValueError, KeyError):
        return 0


# --- SIGHUP ------------------------------------------------------------------------------------
def test_sighup_to_daemon_or_watchdog_keeps_the_session(pair):
    """kill -HUP of the pid in IFNAME.pid (the daemon) and of IFNAME.watchdog.pid: the daemon
    keeps running (same pid), the session stays (same latest handshake), and the watchdog
    applies the changed file."""
    for s in "ab":
        pair.write(s)
        pair.up(s)
    pair.ping()
    a = pair.ifname["a"]
    daemon, hs = pair.pid(a), pair.handshakes()
    assert hs.split()[1] != "0", hs

    # The daemon: passed on to its watchdog, which reloads (an unchanged file: nothing to do).
    done = reloads_done(pair, a)
    os.kill(daemon, signal.SIGHUP)
    rec = wait_reload_done(pair, a, done)
    assert rec["ok"], rec
    _, extra = genkey()
    pair.write("a", extra_peers=[("c", extra, ["10.61.0.0/24"], "")])
    done = rec["done"]
    os.kill(daemon, signal.SIGHUP)  # a changed file, through the daemon
    assert wait_reload_done(pair, a, done)["ok"]
    assert extra in pair.peers("a")

    # The watchdog itself: the changed file (the extra peer gone again) is applied.
    pair.write("a")
    done = reloads_done(pair, a)
    os.kill(pair.pid(a, "watchdog.pid"), signal.SIGHUP)
    assert wait_reload_done(pair, a, done)["ok"]
    assert extra not in pair.peers("a")
    time.sleep(1.5)  # a restarted daemon would be back by now (1 s backoff)
    assert pair.pid(a) == daemon
    assert pair.handshakes() == hs
    pair.ping()
    assert pair.handshakes() == hs  # the traffic used the session already in place


def test_sighup_to_a_daemon_without_watchdog_is_ignored(pair):
    for s in "ab":
        pair.write(s)
    pair.up("a", "--no-watchdog")
    pair.up("b")
    pair.ping()
    a = pair.ifname["a"]
    daemon, hs = pair.pid(a), pair.handshakes()
    os.kill(daemon, signal.SIGHUP)
    pair.wait_log(a, "SIGHUP ignored")
    os.kill(daemon, 0)  # still runs
    assert pair.pid(a) == daemon
    pair.ping()
    assert pair.handshakes() == hs
