"""The daemon's life: start, stale sockets, signals, interface deletion, wg-quick, bad args."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh
from wgedge.router import manage

pytestmark = [pytest.mark.root]



def wgedge(*args, ns=None, env=None, check=True):
    e = dict(os.environ, PYTHONPATH=ROOT)
    e.update(env or {})
    return sh(sys.executable, "-m", "wgedge", *args, ns=ns, env=e, check=check)


def pid_of(ifname):
    with open("/var/run/wgedge/%s.pid" % ifname) as f:
        return int(f.read())


def wait_gone(path, seconds=5):
    deadline = time.time() + seconds
    while os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    return not os.path.exists(path)


def wait_exit(pid, seconds=5):
    return manage.wait_exit(pid, seconds)


def test_starts_detached_and_sigterm_cleans_up(nets):
    ns = nets.ns("d")
    ifname = "wgd" + nets.tag[:4]
    nets.start_wgedge(ns, ifname)
    sock = "/var/run/wireguard/%s.sock" % ifname
    assert os.stat(sock).st_mode & 0o777 == 0o600
    assert sh("wg", "show", ifname, ns=ns).returncode == 0
    pid = pid_of(ifname)
    os.kill(pid, signal.SIGTERM)
    assert wait_exit(pid)
    assert not os.path.exists(sock)
    assert sh("ip", "link", "show", ifname, ns=ns, check=False).returncode != 0
    assert not os.path.exists("/var/run/wgedge/%s.pid" % ifname)


def test_interface_deletion_stops_daemon(nets):
    ns = nets.ns("d")
    ifname = "wgd" + nets.tag[:4]
    nets.start_wgedge(ns, ifname)
    pid = pid_of(ifname)
    sh("ip", "link", "del", ifname, ns=ns)
    assert wait_exit(pid), "daemon still running after its interface was deleted"
    assert not os.path.exists("/var/run/wireguard/%s.sock" % ifname)


def test_stale_socket_replaced_and_live_one_refused(nets):
    ns = nets.ns("d")
    ifname = "wgd" + nets.tag[:4]
    sock = "/var/run/wireguard/%s.sock" % ifname
    os.makedirs("/var/run/wireguard", exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()  # a socket file nobody listens on, as a crashed run leaves it
    nets.start_wgedge(ns, ifname)
    assert sh("wg", "show", ifname, ns=ns).returncode == 0
    res = wgedge(ifname, ns=ns, check=False)  # same name again: refused
    assert res.returncode != 0 and "in use" in res.stderr
    assert sh("wg", "show", ifname, ns=ns).returncode == 0


def test_listen_port_and_fwmark_change_at_once(nets, tmp_path):
    ns = nets.ns("d")
    ifname = "wgd" + nets.tag[:4]
    nets.start_wgedge(ns, ifname)
    priv, _ = genkey()
    key = tmp_path / "k"
    key.write_text(priv + "\n")
    sh("wg", "set", ifname, "private-key", str(key), "listen-port", "40001", ns=ns)
    assert ":40001 " in sh("ss", "-uln", ns=ns).stdout
    sh("wg", "set", ifname, "listen-port", "40002", ns=ns)
    out = sh("ss", "-uln", ns=ns).stdout
    assert ":40002 " in out and ":40001 " not in out
    assert "listening port: 40002" in sh("wg", "show", ifname, ns=ns).stdout
    sh("wg", "set", ifname, "fwmark", "0x42", ns=ns)
    assert "fwmark: 0x42" in sh("wg", "show", ifname, ns=ns).stdout
    # SO_MARK is on the sockets: ss shows it as fwmark on each UDP socket.
    marks = sh("ss", "-ulnpe", "-O", ns=ns).stdout
    assert "fwmark:0x42" in marks or "mark:0x42" in marks, marks


def test_bad_arguments_give_clear_errors():
    for args, needle in ((["bad/name"], "invalid interface name"),
                         (["a" * 20], "1-15 characters"),
                         (["--no-such-flag", "wg0"], "unrecognized arguments")):
        res = wgedge(*args, check=False)
        assert res.returncode != 0
        assert needle in res.stderr
        assert "Traceback" not in res.stderr
    res = wgedge("info", env={"WGEDGE_CRYPTO": "nonsense"}, check=False)
    assert res.returncode == 1 and "WGEDGE_CRYPTO" in res.stderr and "Traceback" not in res.stderr


def test_info_reports_backend_cpu_and_offloads():
    out = wgedge("info", env={"WGEDGE_CRYPTO": "fast"}).stdout
    assert "crypto: fast" in out and "cpu:" in out and "kernel:" in out


def test_wg_quick_drives_wgedge(nets, tmp_path):
    ns_a, ns_b = nets.ns("a"), nets.ns("b")
    nets.link(ns_a, ns_b, "10.201.0.1", "10.201.0.2")
    (pa, ka), (pb, kb) = genkey(), genkey()
    ifa, ifb = "wqa" + nets.tag[:4], "wqb" + nets.tag[:4]
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, WG_QUICK_USERSPACE_IMPLEMENTATION="wgedge", PYTHONPATH=ROOT,
               PATH=bin_dir + ":" + os.environ["PATH"])
    for me, ns, ifname, priv, other_pub, addr, peer_addr, port, peer_port in (
            ("a", ns_a, ifa, pa, kb, "10.77.0.1", "10.77.0.2", 51830, 51831),
            ("b", ns_b, ifb, pb, ka, "10.77.0.2", "10.77.0.1", 51831, 51830)):
        conf = tmp_path / (ifname + ".conf")
        conf.write_text(
            "[Interface]\nPrivateKey = %s\nAddress = %s/24\nListenPort = %d\n\n"
            "[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = 10.201.0.%s:%d\n" % (
                priv, addr, port, other_pub, peer_addr, "2" if me == "a" else "1", peer_port))
        os.chmod(conf, 0o600)
        res = subprocess.run(["ip", "netns", "exec", ns, "wg-quick", "up", str(conf)], env=env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        nets.ifnames.append((ns, ifname, "wgedge"))
    sh("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2", ns=ns_a, timeout=30)
    res = subprocess.run(["ip", "netns", "exec", ns_a, "wg-quick", "down",
                          str(tmp_path / (ifa + ".conf"))], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert wait_gone("/var/run/wireguard/%s.sock" % ifa)


def test_daemon_keeps_only_the_capabilities_it_needs(nets, tmp_path):
    ns = nets.ns("d")
    ifname = "wgd" + nets.tag[:4]
    nets.start_wgedge(ns, ifname)
    with open("/proc/%d/status" % pid_of(ifname)) as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    wanted = (1 << 10) | (1 << 12)  # CAP_NET_BIND_SERVICE, CAP_NET_ADMIN
    assert int(status["CapEff"], 16) == wanted
    assert int(status["CapBnd"], 16) == wanted
    assert status["NoNewPrivs"].strip() == "1"
    # And it still does its job: configure, fwmark (NET_ADMIN), a low port (BIND_SERVICE).
    priv, _ = genkey()
    key = tmp_path / "k"
    key.write_text(priv + "\n")
    sh("wg", "set", ifname, "private-key", str(key), "listen-port", "853", "fwmark", "7", ns=ns)
    assert "listening port: 853" in sh("wg", "show", ifname, ns=ns).stdout
    sh("ip", "link", "del", ifname, ns=ns)
    assert wait_gone("/var/run/wireguard/%s.sock" % ifname)
    assert wait_gone("/var/run/wgedge/%s.pid" % ifname)


def test_no_fd_leak_across_control_connections_and_rebinds(nets, tmp_path):
    import socket as so

    ns = nets.ns("d")
    ifname = "wgd" + nets.tag[:4]
    nets.start_wgedge(ns, ifname)
    pid = pid_of(ifname)
    priv, _ = genkey()
    key = tmp_path / "k"
    key.write_text(priv + "\n")
    sh("wg", "set", ifname, "private-key", str(key), "listen-port", "41000", ns=ns)

    def fds():
        return len(os.listdir("/proc/%d/fd" % pid))

    def settled():
        # The daemon closes its end of a finished control connection (the `wg set` above,
        # or the last one below) when it next sees the client's hang-up: a count taken before
        # that has one fd too many (it failed one run in five that way).
        deadline = time.time() + 10
        last, same = fds(), 0
        while same < 5 and time.time() < deadline:
            time.sleep(0.05)
            now = fds()
            same = same + 1 if now == last else 0
            last = now
        return last

    before = settled()
    path = "/var/run/wireguard/%s.sock" % ifname
    for i in range(300):
        c = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        c.connect(path)
        if i % 3 == 0:
            c.sendall(b"get=1\n\n")
            c.recv(65536)
        elif i % 3 == 1:
            c.sendall(b"set=1\nlisten_port=%d\n\n" % (41001 + i % 50))
            c.recv(100)
        else:
            c.sendall(b"set=1\nbogus")  # hang up mid-request
        c.close()
    after = settled()
    assert after == before, (before, after)
