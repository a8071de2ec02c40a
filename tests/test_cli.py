"""wgedge/cli/__init__.py: a command or an interface name, `down` touching only what wgedge runs,
relative paths, `up --log`, and errors that say what to do.

The rule for words is tested without root; everything else runs in its own network namespace
with private /var/run/wgedge and /var/run/wireguard (fixture `run`, tests/private_run.py).
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh
from tests.private_run import processes_in
from tests.test_manage import wait_nothing_left, write_conf
from wgedge import cli

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


# --- the rule: a command or an interface name --------------------------------------------------
@pytest.mark.parametrize("word, meant", [
    ("stauts", "status"), ("statsu", "status"), ("stat", "status"), ("Status", "status"),
    ("dwon", "down"), ("upp", "up"), ("relaod", "reload"), ("chekc", "check"),
    ("inf", "info"), ("show", "status"), ("showconf", "status"), ("set", "reload"),
    ("stop", "down"), ("start", "up")])
def test_a_word_near_a_command_is_refused_with_a_suggestion(word, meant):
    assert cli._ifname_problem(word, after_options=False).startswith(
        "unknown command '%s'; did you mean '%s'?" % (word, meant))


@pytest.mark.parametrize("word", ["wg0", "wg1", "wg10", "vpn", "home", "office", "tun0", "lan",
                                  "wan", "dmz", "relay", "mullvad", "site-b", "wg_hub",
                                  "eth0.10", "de"])
def test_usual_interface_names_stay_interface_names(word):
    assert cli._ifname_problem(word, after_options=False) is None


@pytest.mark.parametrize("word, needle", [
    ("a" * 16, "1-15 characters"), ("my tun", "invalid interface name"),
    ("a\vb", "invalid interface name"), ("wg%d", "invalid interface name"),
    ("..", "invalid interface name"), ("a:b", "invalid interface name"),
    ("wg0.conf", "wgedge up wg0.conf"), ("site.uci", "wgedge up site.uci"),
    ("genkey", "wg genkey")])
def test_names_linux_refuses_and_other_non_names_are_explained(word, needle):
    assert needle in cli._ifname_problem(word, after_options=False)


def test_a_command_after_daemon_options_is_not_an_interface():
    assert "is a command" in cli._ifname_problem("status", after_options=True)


# --- nothing is created for a word that is not an interface ------------------------------------
@pytest.mark.root
@pytest.mark.parametrize("args, needle", [
    (["stauts"], "unknown command 'stauts'; did you mean 'status'?"),
    (["stauts", "--json"], "did you mean 'status'?"),
    (["show"], "unknown command 'show'; did you mean 'status'?"),
    (["-f", "show"], "did you mean 'status'?"),
    (["-f", "status"], "'status' is a command"),
    (["wg0.conf"], "wgedge up wg0.conf"),
    (["wg%d"], "invalid interface name"),
    (["my tun"], "invalid interface name")])
def test_a_word_that_is_not_an_interface_creates_nothing(nets, run, args, needle):
    ns = nets.ns("w")
    links_before = sh("ip", "-o", "link", "show", ns=ns).stdout
    res = run.wgedge(*args, ns=ns, check=False, timeout=30)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1, res.stderr  # one line
    assert sh("ip", "-o", "link", "show", ns=ns).stdout == links_before
    assert run.files() == [] and processes_in(ns) == []


# --- down touches only what wgedge runs -------------------------------------------------------
def start_wireguard_go(run, ns, ifname, tmp_path):
    env = dict(os.environ, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1", LOG_LEVEL="error")
    log = tmp_path / ("wireguard-go-%s.log" % ifname)
    with open(log, "w") as f:  # it detaches but keeps its stderr: a file, not a pipe
        res = subprocess.run(run.cmd(["wireguard-go", ifname], ns), env=env, stdout=f,
                             stderr=f, timeout=30)
    assert res.returncode == 0, log.read_text()


def up_conf(tmp_path, ifname, name="wg.uci", port=51820):
    priv, _ = genkey()
    _, pub = genkey()
    conf = tmp_path / name
    write_conf(conf, ifname, priv, ["10.77.0.1/24"], [("p1", pub, ["10.77.0.2/32"], "")])
    conf.write_text(conf.read_text().replace("'51820'", "'%d'" % port))
    return conf


@pytest.mark.root
def test_down_leaves_a_wireguard_go_interface_alone(nets, run, tmp_path):
    ns_e, ns_g = nets.ns("e"), nets.ns("g")
    ifname, goname = "wge" + nets.tag, "wgg" + nets.tag
    start_wireguard_go(run, ns_g, goname, tmp_path)
    run.wgedge("up", str(up_conf(tmp_path, ifname)), ns=ns_e)
    # A pid file naming a live process that wgedge does not run (a reused pid, a stale file):
    # no signal goes to it.
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        with open(run.path("/var/run/wgedge/gone.watchdog.pid"), "w") as f:
            f.write("%d\n" % bystander.pid)
        res = run.wgedge("down", goname, ns=ns_g, check=False)
        assert res.returncode == 1 and "not run by wgedge" in res.stderr, res.stderr
        assert "is down" not in res.stdout

        res = run.wgedge("down", ns=ns_e)
        assert "%s is down" % ifname in res.stdout, res.stdout
        assert "gone was not running" in res.stdout, res.stdout
        assert bystander.poll() is None, "down signalled a process wgedge does not run"
    finally:
        bystander.kill()
        bystander.wait()
    assert wait_nothing_left(run, ns_e, ifname) == ["/run/wireguard/%s.sock" % goname]
    assert "listening port" in run.sh("wg", "show", goname, ns=ns_g).stdout
    assert sh("ip", "link", "show", goname, ns=ns_g, check=False).returncode == 0


@pytest.mark.root
def test_down_of_what_does_not_run_says_so_and_fails(nets, run, tmp_path):
    ns = nets.ns("n")
    ifname = "wgn" + nets.tag
    res = run.wgedge("down", ifname, ns=ns, check=False)
    assert res.returncode == 1 and "%s is not running" % ifname in res.stderr, res.stderr
    assert "is down" not in res.stdout
    res = run.wgedge("down", ns=ns)
    assert "no interface brought up by `wgedge up` is running" in res.stdout
    # After a crash (watchdog and daemon killed): it says so, and cleans up what was left.
    run.wgedge("up", str(up_conf(tmp_path, ifname)), ns=ns)
    for pidfile in ("%s.watchdog.pid" % ifname, "%s.pid" % ifname):
        with open(run.path("/var/run/wgedge/" + pidfile)) as f:
            os.kill(int(f.read()), signal.SIGKILL)
    deadline = time.time() + 10
    while processes_in(ns) and time.time() < deadline:
        time.sleep(0.05)
    res = run.wgedge("down", ifname, ns=ns, check=False)
    assert res.returncode == 1 and "was not running; removed what its last run left" \
        in res.stderr, res.stderr
    assert wait_nothing_left(run, ns, ifname) == []


def test_down_takes_only_an_interface_name(capsys):
    # IFNAME names files in /var/run/wgedge: '../x' would be /var/run/x.state.json and others.
    with pytest.raises(SystemExit) as exc:  # argparse refuses it before anything runs
        cli.main(["down", "../x"])
    assert exc.value.code == 2 and "invalid interface name '../x'" in capsys.readouterr().err


# --- relative paths, --log ---------------------------------------------------------------------
def wgedge_in(run, cwd, *args, ns=None, check=True):
    """`wgedge ARGS` run from directory `cwd` (nsenter starts in /: cd there first)."""
    res = subprocess.run(run.cmd(["sh", "-c", 'cd "$0" && exec "$@"', str(cwd), "env",
                                  "PYTHONPATH=" + ROOT, sys.executable, "-m", "wgedge"]
                                 + list(args), ns), capture_output=True, text=True, timeout=120)
    if check:
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def read_pid(run, name):
    try:
        with open(run.path("/var/run/wgedge/" + name)) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def kill_9_daemon_and_wait_for_its_return(run, ns, ifname):
    """kill -9 the daemon; wait until the watchdog has a new one configured from the file."""
    first = read_pid(run, ifname + ".pid")
    os.kill(first, signal.SIGKILL)
    deadline = time.time() + 30  # the watchdog restarts it after a 1 s backoff
    while True:
        pid = read_pid(run, ifname + ".pid")
        if pid not in (None, first) and \
                "10.77.0.1/24" in sh("ip", "addr", "show", ifname, ns=ns, check=False).stdout \
                and "allowed ips: 10.77.0.2/32" in run.sh("wg", "show", ifname, ns=ns,
                                                          check=False).stdout:
            return
        assert time.time() < deadline, "no daemon configured again after kill -9"
        time.sleep(0.2)


@pytest.mark.root
def test_relative_path_up_survives_kill_9(nets, run, tmp_path):
    ns = nets.ns("p")
    ifname = "wgp" + nets.tag
    up_conf(tmp_path, ifname, name="site.uci")
    assert "OK" in wgedge_in(run, tmp_path, "check", "site.uci", ns=ns).stdout
    wgedge_in(run, tmp_path, "up", "site.uci", ns=ns)
    assert "10.77.0.1/24" in sh("ip", "addr", "show", ifname, ns=ns).stdout
    with open(run.path("/var/run/wgedge/%s.state.json" % ifname)) as f:
        assert str(tmp_path / "site.uci") in f.read()  # the absolute path is recorded
    kill_9_daemon_and_wait_for_its_return(run, ns, ifname)
    assert wgedge_in(run, tmp_path, "reload", "site.uci", ns=ns).returncode == 0
    run.wgedge("down", ifname, ns=ns)
    assert wait_nothing_left(run, ns, ifname) == []


@pytest.mark.root
@pytest.mark.parametrize("mode", ["watchdog", "no-watchdog"])
def test_up_logs_where_asked(nets, run, tmp_path, mode):
    ns = nets.ns("l")
    ifname = "wgl" + nets.tag
    up_conf(tmp_path, ifname)
    wgedge_in(run, tmp_path, "up", "--log", "up.log", "wg.uci",
              *(["--no-watchdog"] if mode == "no-watchdog" else []), ns=ns)
    log = tmp_path / "up.log"  # relative to where `up` ran
    assert "interface %s is up" % ifname in log.read_text()
    if mode == "watchdog":
        assert "%s: up under the watchdog" % ifname in log.read_text()
        kill_9_daemon_and_wait_for_its_return(run, ns, ifname)
        text = log.read_text()  # the restarted daemon logs there too
        assert "%s: daemon restarted" % ifname in text and \
            text.count("interface %s is up" % ifname) == 2, text
    res = run.wgedge("up", "--log", "/nonexistent/dir/x.log", str(tmp_path / "wg.uci"), ns=ns,
                     check=False)
    assert res.returncode == 1 and "cannot write the log file" in res.stderr, res.stderr
    run.wgedge("down", ifname, ns=ns)
    assert wait_nothing_left(run, ns, ifname) == []


# --- errors that say what to do ----------------------------------------------------------------
@pytest.mark.root
@pytest.mark.parametrize("mode", ["watchdog", "no-watchdog"])
def test_port_in_use_is_named(nets, run, tmp_path, mode):
    ns = nets.ns("q")
    ifname = "wgq" + nets.tag
    holder = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c",
         "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "s.bind(('0.0.0.0', 51899))\nprint('bound', flush=True)\ntime.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "bound"
        res = run.wgedge("up", str(up_conf(tmp_path, ifname, port=51899)),
                         *(["--no-watchdog"] if mode == "no-watchdog" else []), ns=ns,
                         check=False)
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 1
    assert "wgedge: %s: listen_port 51899 is already in use" % ifname in res.stderr, res.stderr
    assert "errno" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert wait_nothing_left(run, ns, ifname) == []


@pytest.mark.root
def test_reload_to_a_port_in_use_names_it_and_changes_nothing(nets, run, tmp_path):
    ns = nets.ns("o")
    ifname = "wgo" + nets.tag
    conf = up_conf(tmp_path, ifname, port=51897)
    run.wgedge("up", str(conf), ns=ns)
    holder = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c",
         "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "s.bind(('0.0.0.0', 51898))\nprint('bound', flush=True)\ntime.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "bound"
        conf.write_text(conf.read_text().replace("'51897'", "'51898'"))
        res = run.wgedge("reload", str(conf), ns=ns, check=False)
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 1
    assert "listen_port 51898 is already in use" in res.stderr, res.stderr
    assert "errno" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert "listening port: 51897" in run.sh("wg", "show", ifname, ns=ns).stdout
    run.wgedge("down", ifname, ns=ns)
    assert wait_nothing_left(run, ns, ifname) == []


@pytest.mark.root
def test_not_root_is_told_so_and_changes_nothing(nets, run, tmp_path):
    ns = nets.ns("r")
    ifname = "wgr" + nets.tag
    conf = up_conf(tmp_path, ifname)
    run.wgedge("up", str(conf), ns=ns)
    before = sh("ip", "-o", "link", "show", ns=ns).stdout
    for args in (["up", str(conf)], ["down"], ["down", ifname], ["reload", str(conf)]):
        res = subprocess.run(run.cmd(NOBODY + [sys.executable, "-m", "wgedge"] + args, ns),
                             env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 1, (args, res.stdout, res.stderr)
        assert "wgedge %s: needs root (CAP_NET_ADMIN)" % args[0] in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and "is down" not in res.stdout, res
    res = subprocess.run(run.cmd(NOBODY + [sys.executable, "-m", "wgedge", "wgx" + nets.tag],
                                 ns), env=dict(os.environ, PYTHONPATH=ROOT),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "wgx%s: needs root (CAP_NET_ADMIN)" % nets.tag in res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert sh("ip", "-o", "link", "show", ns=ns).stdout == before
    assert run.sh("wg", "show", ifname, ns=ns).returncode == 0
    run.wgedge("down", ifname, ns=ns)
    assert wait_nothing_left(run, ns, ifname) == []

