"""`wgedge up/reload/down` as transactions: all or nothing, one owner per interface.

Root only. Each test runs in its own network namespace and its own private /var/run/wgedge and
/var/run/wireguard (tests/private_run.py, fixture `run`), so it never meets another wgedge on
the host.
The kernel is made to refuse an address by disabling IPv6 on the interface (sysctl) and asking
for an IPv6 address: `ip` answers "IPv6 is disabled on this device", every time.
"""

import json
import subprocess
import time

import pytest

from tests.netns import genkey, sh
from tests.private_run import processes_in

pytestmark = [pytest.mark.root]


def write_conf(path, ifname, priv, addresses, peers, mtu=1420, extra=""):
    """A UCI file: `peers` is a list of (name, public key, allowed ips, extra options)."""
    text = ("config interface '%s'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
            "\toption listen_port '51820'\n\toption mtu '%d'\n" % (ifname, priv, mtu))
    text += "".join("\tlist addresses '%s'\n" % a for a in addresses) + extra
    for name, pub, ips, opts in peers:
        text += "\nconfig wireguard_%s '%s'\n\toption public_key '%s'\n" % (ifname, name, pub)
        text += "".join("\tlist allowed_ips '%s'\n" % a for a in ips)
        text += "\toption route_allowed_ips '1'\n" + opts
    path.write_text(text)
    path.chmod(0o600)


def snapshot(run, ns, ifname):
    """What runs: the WireGuard settings, addresses, link (MTU), routes and the state file."""
    state_path = run.path("/var/run/wgedge/%s.state.json" % ifname)
    with open(state_path) as f:
        state = f.read()
    return {"wg": run.sh("wg", "showconf", ifname, ns=ns).stdout,
            "addr": sh("ip", "addr", "show", "dev", ifname, ns=ns).stdout,
            "link": sh("ip", "-o", "link", "show", ifname, ns=ns).stdout,
            "routes": sh("ip", "route", "show", ns=ns).stdout
            + sh("ip", "-6", "route", "show", ns=ns).stdout,
            "state": state}


def wait_nothing_left(run, ns, ifname, seconds=10):
    """Polls until nothing of `ifname` runs: no process in the namespace (so nothing can
    bring it back), no link, no socket, no file in the run directories. Returns what is
    still there after `seconds` (empty when clean)."""
    deadline = time.time() + seconds
    while True:
        left = ["process %s" % p for p in processes_in(ns)]
        if sh("ip", "link", "show", ifname, ns=ns, check=False).returncode == 0:
            left.append("link " + ifname)
        left += run.files()
        if not left or time.time() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.parametrize("mode", ["watchdog", "no-watchdog"])
@pytest.mark.parametrize("refused", ["address", "route"])
def test_reload_refused_by_the_kernel_changes_nothing(nets, run, tmp_path, mode, refused):
    ns = nets.ns("r")
    ifname = "wgr" + nets.tag
    priv, _ = genkey()
    (_, pub1), (_, pub2) = genkey(), genkey()
    conf = tmp_path / "wg.uci"
    write_conf(conf, ifname, priv, ["10.77.0.1/24", "10.78.0.1/24"],
               [("p1", pub1, ["10.77.0.2/32", "10.80.0.0/16"], "")])
    run.wgedge("up", str(conf), *(["--no-watchdog"] if mode == "no-watchdog" else []), ns=ns)
    sh("sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % ifname, ns=ns)
    before = snapshot(run, ns, ifname)
    assert "10.80.0.0/16 dev " + ifname in before["routes"]

    # One change that touches everything: an address removed and one added, a new MTU, a
    # changed peer, a new peer with routes; and one IPv6 address or route, which the kernel
    # refuses on this interface.
    new_peers = [("p1", pub1, ["10.77.0.2/32", "10.81.0.0/16"], ""),
                 ("p2", pub2, ["10.79.0.0/24"], "")]
    if refused == "address":
        bad, addresses, peers = "fd00:77::1/64", ["10.77.0.1/24", "fd00:77::1/64"], new_peers
    else:
        bad, addresses = "fd00:79::/64", ["10.77.0.1/24", "10.76.0.1/24"]
        peers = new_peers[:1] + [("p2", pub2, ["10.79.0.0/24", "fd00:79::/64"], "")]
    write_conf(conf, ifname, priv, addresses, peers, mtu=1380)
    res = run.wgedge("reload", str(conf), ns=ns, check=False)
    assert res.returncode != 0
    assert snapshot(run, ns, ifname) == before
    assert bad in res.stderr and "unchanged" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr

    # The next, valid reload starts from what really runs: 10.78.0.1 goes, the rest arrives.
    write_conf(conf, ifname, priv, ["10.77.0.1/24"], new_peers, mtu=1380)
    res = run.wgedge("reload", str(conf), ns=ns)
    assert "reloaded" in res.stdout
    after = snapshot(run, ns, ifname)
    assert pub2 in after["wg"] and "10.81.0.0/16" in after["wg"]
    assert "10.80.0.0/16" not in after["wg"]
    assert "10.77.0.1/24" in after["addr"] and "10.78.0.1" not in after["addr"]
    assert "mtu 1380" in after["link"]
    for prefix in ("10.79.0.0/24", "10.81.0.0/16"):
        assert prefix + " dev " + ifname in after["routes"]
    assert "10.80.0.0/16" not in after["routes"]
    net = json.loads(after["state"])["net"]
    assert net["addresses"] == ["10.77.0.1/24"] and net["mtu"] == 1380
    assert sorted(r[0] for r in net["routes"]) == ["10.77.0.2", "10.79.0.0", "10.81.0.0"]

    run.wgedge("down", ifname, ns=ns)
    assert wait_nothing_left(run, ns, ifname) == []


@pytest.mark.parametrize("mode", ["watchdog", "no-watchdog"])
@pytest.mark.parametrize("failure", ["address refused", "route refused", "port in use"])
def test_up_that_fails_half_way_leaves_nothing(nets, run, tmp_path, mode, failure):
    ns, ns_peer = nets.ns("u"), nets.ns("p")
    nets.link(ns, ns_peer, "10.251.0.1", "10.251.0.2")
    ifname = "wgu" + nets.tag
    priv, _ = genkey()
    _, pub = genkey()
    conf = tmp_path / "wg.uci"
    routes_before = sh("ip", "route", "show", ns=ns).stdout
    # A /0 through the tunnel, so `up` also adds a host route to the endpoint on the veth:
    # the one change that outlives the link and must be taken back explicitly.
    addresses, allowed = ["10.77.0.1/24"], ["0.0.0.0/0"]
    if failure == "address refused":
        addresses.append("fd00:77::1/64")
    elif failure == "route refused":
        allowed.append("::/0")
    write_conf(conf, ifname, priv, addresses,
               [("p1", pub, allowed, "\toption endpoint_host '10.251.0.2'\n")])
    holder = None
    if failure == "port in use":
        holder = subprocess.Popen(
            ["ip", "netns", "exec", ns, "python3", "-c",
             "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "s.bind(('0.0.0.0', 51820))\nprint('bound', flush=True)\ntime.sleep(600)\n"],
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "bound"
    else:  # the kernel refuses IPv6 addresses and routes on the new interface
        sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
    try:
        res = run.wgedge("up", str(conf), *(["--no-watchdog"] if mode == "no-watchdog" else []),
                         ns=ns, check=False)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
    assert res.returncode != 0
    assert ifname in res.stderr and "Traceback" not in res.stderr, res.stderr
    if failure != "port in use":
        assert ("fd00:77::1/64" if failure == "address refused" else "::/1") in res.stderr, \
            res.stderr
    assert wait_nothing_left(run, ns, ifname) == []
    assert sh("ip", "route", "show", ns=ns).stdout == routes_before


def test_two_ups_at_once_one_wins_and_down_leaves_nothing(nets, run, tmp_path):
    ns = nets.ns("c")
    ifname = "wgc" + nets.tag
    priv, _ = genkey()
    _, pub = genkey()
    conf = tmp_path / "wg.uci"
    write_conf(conf, ifname, priv, ["10.77.0.1/24"], [("p1", pub, ["10.77.0.2/32"], "")])
    procs = [subprocess.Popen(run.wgedge_cmd("up", str(conf), ns=ns), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes[0] == 0 and codes[1] != 0, results
    loser = [r for r in results if r[0] != 0][0]
    assert "already" in loser[2] and ifname in loser[2] and "Traceback" not in loser[2], loser
    assert len(run.sh("wg", "show", "interfaces", ns=ns).stdout.split()) == 1
    run.wgedge("down", ifname, ns=ns)
    assert wait_nothing_left(run, ns, ifname) == []


def test_two_daemons_of_one_name_at_once_one_wins(nets, run, tmp_path):
    # Two namespaces, one name, shared run directories (as on a host where wireguard-go
    # instances live in several namespaces): the control socket path is the same, so only
    # one may run. A leftover socket file makes the stale check run in both.
    ns_a, ns_b = nets.ns("a"), nets.ns("b")
    ifname = "wgd" + nets.tag
    run.sh("python3", "-c", "import socket; s = socket.socket(socket.AF_UNIX); "
           "s.bind('/var/run/wireguard/%s.sock')" % ifname)
    procs = [subprocess.Popen(run.wgedge_cmd(ifname, ns=ns), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for ns in (ns_a, ns_b)]
    results = [(p.wait(60), p.stderr.read()) for p in procs]
    codes = [r[0] for r in results]
    assert sorted(codes)[0] == 0 and sorted(codes)[1] != 0, results
    assert "in use" in results[codes.index(0) ^ 1][1], results
    winner, loser = (ns_a, ns_b) if codes[0] == 0 else (ns_b, ns_a)
    assert run.sh("wg", "show", ifname, ns=winner).returncode == 0
    # `up` of the same name is refused too, before it creates anything.
    priv, _ = genkey()
    conf = tmp_path / "wg.uci"
    write_conf(conf, ifname, priv, ["10.77.0.1/24"], [])
    res = run.wgedge("up", str(conf), ns=loser, check=False)
    assert res.returncode != 0 and "already" in res.stderr, res.stderr
    assert sh("ip", "link", "show", ifname, ns=loser, check=False).returncode != 0
    assert run.sh("wg", "show", ifname, ns=winner).returncode == 0
    sh("ip", "link", "del", ifname, ns=winner)
    for ns in (ns_a, ns_b):
        assert wait_nothing_left(run, ns, ifname) == []
