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
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh
from tests.private_run import PrivateRun
from tests.test_manage import wait_nothing_left

pytestmark = [pytest.mark.root]
WAN = ("10.252.0.1", "10.252.0.2")


def iface_text(ifname, priv, port, addresses, peers):
    """UCI sections of one interface: `peers` is a list of (name, public key, allowed ips,
    extra option lines)."""
    text = ("config interface '%s'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
            "\toption listen_port '%d'\n" % (ifname, priv, port))
    text += "".join("\tlist addresses '%s'\n" % a for a in addresses)
    for name, pub, ips, opts in peers:
        text += "\nconfig wireguard_%s '%s'\n\toption public_key '%s'\n" % (ifname, name, pub)
        text += "".join("\tlist allowed_ips '%s'\n" % a for a in ips)
        text += "\toption route_allowed_ips '1'\n" + opts
    return text + "\n"


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

    def write(self, site, extra_peers=(), endpoint=None, peer_opts="", more=""):
        """The file of `site`: its interface with the other router as peer (at `endpoint`,
        default its WAN address) plus `extra_peers` ((name, pub, ips, opts)), then `more`
        (other interfaces' sections, see iface_text)."""
        other = "b" if site == "a" else "a"
        me = "1" if site == "a" else "2"
        host = endpoint or WAN["ab".index(other)]
        peers = [("other", self.keys[other][1], ["10.60.0.%s/32" % ("2" if me == "1" else "1")],
                  "\toption endpoint_host '%s'\n" % host + peer_opts)]
        text = iface_text(self.ifname[site], self.keys[site][0], 51820, ["10.60.0.%s/24" % me],
                          peers + list(extra_peers))
        self.conf[site].write_text(text + more)
        self.conf[site].chmod(0o600)

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

    # A signal never takes an interface down: gone from the file, it is refused and kept.
    pair.conf["a"].write_text("config wgedge 'settings'\n\toption check_interval '10'\n")
    done = reloads_done(pair, a)
    os.kill(daemon, signal.SIGHUP)
    rec = wait_reload_done(pair, a, done)
    assert not rec["ok"] and "no wireguard interface %s" % a in rec["message"], rec
    pair.wait_log(a, "reload refused, keeping the running configuration")
    assert pair.pid(a) == daemon and pair.handshakes() == hs


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


# --- reload: the running set equals the file ---------------------------------------------------
def state(pair, ifname):
    with open(pair.run.path("/var/run/wgedge/%s.state.json" % ifname)) as f:
        return json.load(f)


def links(pair, site):
    return sh("ip", "-o", "link", "show", ns=pair.ns[site]).stdout


@pytest.mark.parametrize("mode", ["watchdog", "no-watchdog"])
def test_reload_adds_and_removes_interfaces_and_keeps_sessions(pair, mode):
    """An interface added to the file comes up, one removed goes down, the untouched one keeps
    its daemon and session; an interface run from another file is left alone; `reload
    IFNAME` reloads that interface from the file it was brought up with."""
    flags = ["--no-watchdog"] if mode == "no-watchdog" else []
    a, tag = pair.ifname["a"], pair.nets.tag
    new, other = "wn%s" % tag, "wo%s" % tag
    (priv_n, _), (priv_o, _), (_, pub_x) = genkey(), genkey(), genkey()
    new_text = iface_text(new, priv_n, 51821, ["10.62.0.1/24"],
                          [("x", pub_x, ["10.63.0.0/24"], "")])
    pair.write("b")
    pair.up("b")
    pair.write("a")
    pair.up("a", *flags)
    other_conf = pair.tmp / "other.uci"
    other_conf.write_text(iface_text(other, priv_o, 51822, ["10.64.0.1/24"], []))
    other_conf.chmod(0o600)
    pair.run.wgedge("up", str(other_conf), *flags, ns=pair.ns["a"])
    pair.ping()
    daemon, hs = pair.pid(a), pair.handshakes()

    pair.write("a", more=new_text)  # added
    res = pair.wgedge("a", "reload", str(pair.conf["a"]), *flags)
    assert "%s reloaded" % a in res.stdout and "%s is up" % new in res.stdout, res.stdout
    assert pair.peers("a", new) == [pub_x]
    assert "10.62.0.1/24" in sh("ip", "addr", "show", new, ns=pair.ns["a"]).stdout
    assert "10.63.0.0/24 dev " + new in sh("ip", "route", ns=pair.ns["a"]).stdout
    assert os.path.realpath(state(pair, new)["config"]) == os.path.realpath(pair.conf["a"])
    assert os.path.exists(pair.run.path("/var/run/wgedge/%s.watchdog.pid" % new)) \
        == (mode == "watchdog")

    # `reload IFNAME`: from the file it was brought up with; the other interface untouched.
    (_, pub_y) = genkey()
    pair.write("a", extra_peers=[("y", pub_y, ["10.65.0.0/24"], "")], more=new_text)
    new_daemon = pair.pid(new)
    res = pair.wgedge("a", "reload", a)
    assert res.stdout.strip() == "%s reloaded" % a, res.stdout
    assert pub_y in pair.peers("a")
    assert pair.pid(new) == new_daemon

    pair.write("a", extra_peers=[("y", pub_y, ["10.65.0.0/24"], "")])  # removed
    res = pair.wgedge("a", "reload", str(pair.conf["a"]))
    assert "%s is down" % new in res.stdout, res.stdout
    assert new + ":" not in links(pair, "a")
    assert not [f for f in pair.run.files() if "/%s." % new in f]
    # What runs from the file is what the file says; the rest is as it was.
    assert pair.pid(a) == daemon and pair.handshakes().split()[1] == hs.split()[1]
    pair.ping()
    assert pair.handshakes().split()[1] == hs.split()[1]
    assert other + ":" in links(pair, "a") and pair.peers("a", other) == []
    res = pair.wgedge("a", "reload", other)
    assert res.stdout.strip() == "%s reloaded" % other

    for site, name in (("a", a), ("a", other), ("b", pair.ifname["b"])):
        pair.wgedge(site, "down", name)
    assert wait_nothing_left(pair.run, pair.ns["a"], a) == []


def test_reload_handles_each_interface_on_its_own(pair):
    """One new interface the kernel refuses (an IPv6 address with IPv6 disabled), one new that
    works and one removed, in one reload: exit 1 naming the refused one, of which nothing
    runs; the others applied; the state files describe exactly what runs."""
    a, tag = pair.ifname["a"], pair.nets.tag
    gone, good, bad = "wg%s" % tag, "wk%s" % tag, "wf%s" % tag
    keys = [genkey() for _ in range(3)]
    gone_text = iface_text(gone, keys[0][0], 51821, ["10.62.0.1/24"], [])
    good_text = iface_text(good, keys[1][0], 51822, ["10.66.0.1/24"], [])
    bad_text = iface_text(bad, keys[2][0], 51823, ["10.67.0.1/24", "fd00:67::1/64"], [])
    pair.write("a", more=gone_text)
    pair.up("a")
    sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", ns=pair.ns["a"])
    before = pair.run.sh("wg", "showconf", a, ns=pair.ns["a"]).stdout

    pair.write("a", more=good_text + bad_text)
    res = pair.wgedge("a", "reload", str(pair.conf["a"]), check=False)
    assert res.returncode == 1
    assert bad in res.stderr and "fd00:67::1/64" in res.stderr and "Traceback" not in res.stderr
    assert "%s is down" % gone in res.stdout and "%s is up" % good in res.stdout, res.stdout
    assert "%s reloaded" % a in res.stdout
    assert pair.run.sh("wg", "showconf", a, ns=pair.ns["a"]).stdout == before
    assert bad + ":" not in links(pair, "a")
    assert not [f for f in pair.run.files() if "/%s." % bad in f or "/%s." % gone in f]
    running = sorted(f.rsplit("/", 1)[1][:-len(".state.json")]
                     for f in pair.run.files() if f.endswith(".state.json"))
    assert running == sorted([a, good])
    assert sorted(pair.run.sh("wg", "show", "interfaces", ns=pair.ns["a"]).stdout.split()) \
        == sorted([a, good])


def test_reload_target_errors(pair):
    """A name that is neither a file nor an interface `up` brought up; a bad file changes
    nothing."""
    res = pair.wgedge("a", "reload", "wnothere", check=False)
    assert res.returncode == 1
    assert "wnothere is neither a file nor an interface" in res.stderr, res.stderr
    pair.write("a")
    pair.up("a")
    before = pair.run.sh("wg", "showconf", pair.ifname["a"], ns=pair.ns["a"]).stdout
    pair.conf["a"].write_text(pair.conf["a"].read_text() + "\toption mtu 'big'\n")
    res = pair.wgedge("a", "reload", pair.ifname["a"], check=False)
    assert res.returncode == 1 and "unchanged" in res.stderr and "mtu" in res.stderr
    assert pair.run.sh("wg", "showconf", pair.ifname["a"], ns=pair.ns["a"]).stdout == before
    # `reload IFNAME` of an interface its file no longer has: brought down, as `reload FILE`.
    pair.conf["a"].write_text("config wgedge 'settings'\n\toption check_interval '10'\n")
    res = pair.wgedge("a", "reload", pair.ifname["a"])
    assert res.stdout.strip() == "%s is down (no longer in %s)" % (
        pair.ifname["a"], pair.conf["a"]), res.stdout
    assert wait_nothing_left(pair.run, pair.ns["a"], pair.ifname["a"]) == []


# --- endpoint host names -----------------------------------------------------------------------
def test_unresolvable_host_warned_at_check_and_up_and_logged_by_the_watchdog(pair):
    """`nonexistent.invalid` (the namespace's resolver fails at once, offline): a warning at
    `check` and `up` (exit 0, the interface runs); the watchdog, retrying every second, logs
    one warning (not one per attempt) and every attempt at debug level; once the name
    resolves, the success and the new endpoint are logged and the tunnel works."""
    a = pair.ifname["a"]
    pair.write("b")
    pair.up("b")
    pair.write("a", endpoint="nonexistent.invalid")
    pair.conf["a"].write_text(pair.conf["a"].read_text()
                              + "config wgedge 'settings'\n\toption check_interval '1'\n")
    conf = str(pair.conf["a"])
    warning = "option 'endpoint_host': peer other of %s: host 'nonexistent.invalid' does " \
              "not resolve now" % a
    res = pair.wgedge("a", "check", conf)
    assert warning in res.stderr and res.stderr.startswith("warning: "), res.stderr
    assert "OK" in res.stdout
    res = pair.run.sh("env", "LOG_LEVEL=debug", "PYTHONPATH=" + ROOT, sys.executable, "-m",
                      "wgedge", "up", conf, ns=pair.ns["a"])
    assert warning in res.stderr and "%s is up" % a in res.stdout, res.stdout + res.stderr
    assert "endpoint" not in pair.run.sh("wg", "showconf", a, ns=pair.ns["a"]).stdout.lower()

    pair.wait_log(a, "does not resolve (attempt 4)")
    log = pair.log(a)
    assert log.count("nonexistent.invalid does not resolve;") == 1, log
    assert "WARNING" in log.split("nonexistent.invalid does not resolve;")[0].rsplit("\n", 1)[1]

    pair.hosts("a", {"nonexistent.invalid": WAN[1]})
    pair.wait_log(a, "nonexistent.invalid resolves again after")
    pair.wait_log(a, "nonexistent.invalid now resolves to %s:51820 (was None)" % WAN[1])
    pair.ping()
    assert pair.handshakes().split()[1] != "0"


def test_resolvable_host_gives_no_warning_and_its_result_is_logged(pair):
    a = pair.ifname["a"]
    pair.hosts("a", {"site-b.test": WAN[1]})
    pair.write("a", endpoint="site-b.test")
    res = pair.wgedge("a", "check", str(pair.conf["a"]))
    assert "warning" not in res.stderr, res.stderr
    res = pair.up("a")
    assert "warning" not in res.stderr, res.stderr
    pair.wait_log(a, "site-b.test resolves to %s:51820" % WAN[1])


def test_reload_brings_back_an_interface_whose_daemon_died(pair):
    """`up --no-watchdog`, then the daemon killed: its state file still names the file but
    nothing runs it. reload clears what is left and brings it up again from the file."""
    a = pair.ifname["a"]
    pair.write("b")
    pair.up("b")
    pair.write("a")
    pair.up("a", "--no-watchdog")
    daemon = pair.pid(a)
    os.kill(daemon, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while a + ":" in links(pair, "a"):
        assert time.monotonic() < deadline, "the link outlived its daemon"
        time.sleep(0.1)
    res = pair.wgedge("a", "reload", str(pair.conf["a"]), "--no-watchdog")
    assert "%s had stopped" % a in res.stdout and "%s is up" % a in res.stdout, res.stdout
    assert pair.pid(a) != daemon
    pair.ping()
