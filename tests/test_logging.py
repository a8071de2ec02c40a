"""Where the daemon's log goes in the background: syslog when a daemon listens on /dev/log,
else a file; never nowhere (Python 3.11's SysLogHandler no longer fails without a listener,
it drops every message)."""

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh, write_key
from wgedge.io import events
from wgedge.io.logger import INFO, log
from wgedge.router import daemon


def _log_one(monkeypatch, tmp_path, message):
    monkeypatch.setattr(daemon, "SYSLOG_SOCKET", str(tmp_path / "log.sock"))
    monkeypatch.setattr(daemon, "FALLBACK_LOG", str(tmp_path / "wgedge-%s.log"))
    monkeypatch.delenv("WGEDGE_SYSLOG", raising=False)
    saved = log.level, log.sinks
    daemon.setup_logging("wgt0", INFO, foreground=False, logfile=None)
    try:
        log.info(message)
    finally:
        for sink in log.sinks:
            sink.close()
        log.level, log.sinks = saved


def test_without_a_syslog_daemon_the_log_goes_to_the_fallback_file(monkeypatch, tmp_path):
    _log_one(monkeypatch, tmp_path, "nobody listens")
    assert "wgt0: INFO: nobody listens" in (tmp_path / "wgedge-wgt0.log").read_text()


def test_with_a_syslog_daemon_the_log_goes_to_syslog(monkeypatch, tmp_path):
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        syslogd.bind(str(tmp_path / "log.sock"))
        syslogd.settimeout(5)
        _log_one(monkeypatch, tmp_path, "to syslog")
        record = syslogd.recv(4096)
    finally:
        syslogd.close()
    assert record.startswith(b"<30>wgedge[") and record.endswith(b": wgt0: to syslog\x00")
    assert not (tmp_path / "wgedge-wgt0.log").exists()


# --- in namespaces: what a running daemon logs (root) -------------------------------------------
@pytest.mark.root
@pytest.mark.parametrize("foreground", [True, False])
def test_a_log_file_that_cannot_be_opened_is_one_line_not_a_traceback(nets, foreground):
    ns = nets.ns("n")
    ifname = "wgn" + nets.tag
    res = sh(sys.executable, "-m", "wgedge", *(["-f"] if foreground else []), "--log",
             "/nonexistent/dir/x.log", ifname, ns=ns, check=False,
             env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 1
    assert res.stderr == "wgedge: [Errno 2] No such file or directory: " \
        "'/nonexistent/dir/x.log'\n", res.stderr
    assert ifname not in sh("ip", "link", ns=ns).stdout  # nothing was made


def _wait_for(path, predicate, seconds=15):
    deadline = time.time() + seconds
    text = ""
    while time.time() < deadline:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            text = ""
        if predicate(text):
            return text
        time.sleep(0.1)
    return text


def _send_initiations(ns, public_key, port, count):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return sh(sys.executable, "-m", "tests.initiations", public_key, "127.0.0.1", str(port),
              str(count), ns=ns, env=env).stdout.strip()


@pytest.mark.root
def test_an_unknown_peer_is_logged_and_a_flood_is_rate_limited(nets, tmp_path):
    ns = nets.ns("l")
    ifname = "wgl" + nets.tag
    logfile = "/tmp/wgedge-%s.log" % ifname  # where Namespaces.start_wgedge logs
    nets.start_wgedge(ns, ifname)
    priv, pub = genkey()
    sh("wg", "set", ifname, "private-key", write_key(tmp_path, "k", priv), "listen-port",
       "40011", ns=ns)
    stranger = _send_initiations(ns, pub, 40011, 1)
    text = _wait_for(logfile, lambda t: "unknown-peer" in t)
    lines = [x for x in text.splitlines() if "unknown-peer" in x]
    assert len(lines) == 1, text
    assert "127.0.0.1:" in lines[0] and stranger[:8] in lines[0] and "WARNING" in lines[0]
    assert stranger not in text and priv not in text

    # A flood from unknown peers: thousands of refusals, a bounded number of lines (BURST per
    # reason and interval: unknown-peer, and cookie-sent/ratelimited once the daemon counts
    # as under load, handshake-overload when a batch brings more than it looks at).
    before = len(text.splitlines())
    for _ in range(4):
        _send_initiations(ns, pub, 40011, 1000)
    time.sleep(2)
    received = sh("wg", "show", ifname, ns=ns).stdout  # the daemon still answers
    assert "listening port: 40011" in received
    with open(logfile) as f:
        new = f.read().splitlines()[before:]
    assert len([x for x in new if "[unknown-peer]" in x]) <= events.BURST, new
    reasons = {x.rsplit("[", 1)[-1] for x in new}
    assert len(new) <= len(reasons) * events.BURST, new
    assert len(new) < 100, new


@pytest.mark.root
def test_up_logs_to_the_fallback_file_with_handshakes_and_restarts(nets, tmp_path):
    """`wgedge up` (watchdog and daemon, both in the background) with no syslog daemon:
    their lines reach /var/log/wgedge-IFNAME.log, an unknown peer's attempt and a restart
    after kill -9 among them."""
    from tests.private_run import PrivateRun

    if daemon._syslog_listening(daemon.SYSLOG_SOCKET):
        pytest.skip("a syslog daemon listens on %s: the log goes there" % daemon.SYSLOG_SOCKET)
    run = PrivateRun()  # made after `nets`: it sees the test's own /var/log (tests/netns.py)
    try:
        ns = nets.ns("u")
        ifname = "wgu" + nets.tag
        priv, pub = genkey()
        conf = tmp_path / "wg.uci"
        conf.write_text("config interface '%s'\n\toption proto 'wireguard'\n\toption "
                        "private_key '%s'\n\toption listen_port '40012'\n" % (ifname, priv))
        conf.chmod(0o600)
        run.wgedge("up", str(conf), ns=ns)
        logfile = run.root + daemon.FALLBACK_LOG % ifname
        stranger = _send_initiations(ns, pub, 40012, 1)
        text = _wait_for(logfile, lambda t: "unknown-peer" in t and "under the watchdog" in t)
        assert "up under the watchdog" in text and stranger[:8] in text, text
        with open(run.path("/var/run/wgedge/%s.pid" % ifname)) as f:
            pid = int(f.read())
        os.kill(pid, 9)
        text = _wait_for(logfile, lambda t: "daemon restarted" in t, 30)
        assert "daemon (pid %d) was killed by SIGKILL" % pid in text, text
        assert "daemon restarted (pid " in text, text
        assert priv not in text
        run.wgedge("down", ifname, ns=ns)
    finally:
        run.close()


@pytest.mark.root
def test_debug_level_shows_the_handshakes_sent(nets, tmp_path):
    """-v (here LOG_LEVEL=debug, what -v sets) adds each initiation sent; info does not."""
    ns = nets.ns("v")
    names = {"debug": "wgv" + nets.tag, "info": "wgi" + nets.tag}
    peers = {}
    for level, ifname in names.items():
        nets.start_wgedge(ns, ifname, env={"LOG_LEVEL": level})
        priv, _ = genkey()
        _, peers[level] = genkey()
        sh("wg", "set", ifname, "private-key", write_key(tmp_path, ifname, priv), "peer",
           peers[level],
           "endpoint", "127.0.0.1:9", "persistent-keepalive", "1", "allowed-ips",
           "10.98.0.2/32", ns=ns)
    debug = _wait_for("/tmp/wgedge-%s.log" % names["debug"],
                      lambda t: "handshake initiation sent to 127.0.0.1:9" in t)
    assert "DEBUG: peer %s: handshake initiation sent to 127.0.0.1:9" % peers["debug"][:8] \
        in debug, debug
    time.sleep(1)
    with open("/tmp/wgedge-%s.log" % names["info"]) as f:
        info = f.read()
    assert "initiation sent" not in info and "is up" in info, info


@pytest.mark.root
def test_up_verbose_logs_debug_detail_to_its_log_file(nets, tmp_path):
    """`up -v --log FILE`: the daemon under the watchdog logs at debug level, into FILE."""
    from tests.private_run import PrivateRun

    run = PrivateRun()
    try:
        ns = nets.ns("w")
        ifname = "wgw" + nets.tag
        priv, _ = genkey()
        _, peer = genkey()
        conf = tmp_path / "wg.uci"
        conf.write_text("config interface '%s'\n\toption proto 'wireguard'\n\toption "
                        "private_key '%s'\n\toption listen_port '40013'\n"
                        "config wireguard_%s\n\toption public_key '%s'\n\toption "
                        "endpoint_host '127.0.0.1'\n\toption endpoint_port '9'\n\toption "
                        "persistent_keepalive '1'\n\tlist allowed_ips '10.97.0.2/32'\n"
                        % (ifname, priv, ifname, peer))
        conf.chmod(0o600)
        log = tmp_path / "wg.log"
        run.wgedge("up", "-v", "--log", str(log), str(conf), ns=ns)
        text = _wait_for(str(log), lambda t: "handshake initiation sent" in t)
        assert "DEBUG: peer %s: handshake initiation sent to 127.0.0.1:9" % peer[:8] in text, \
            text
        assert priv not in text
        run.wgedge("down", ifname, ns=ns)
    finally:
        run.close()


@pytest.mark.root
def test_the_daemon_writes_the_summary_when_the_interval_ends(nets, tmp_path):
    """The loop wakes for the summary of suppressed lines (EventLog.next_deadline) with no
    further traffic. The daemon runs with the interval shortened to 2 s (set on the module
    before it starts; there is no option for it)."""
    ns = nets.ns("f")
    ifname = "wgf" + nets.tag
    logfile = str(tmp_path / "daemon.log")
    code = ("import sys; from wgedge.io import events; events.INTERVAL = 2.0; "
            "from wgedge.cli import main; sys.exit(main(['-f', '--log', %r, %r]))"
            % (logfile, ifname))
    daemon_proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                                   env=dict(os.environ, PYTHONPATH=ROOT),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert "is up" in _wait_for(logfile, lambda t: "is up" in t)
        priv, pub = genkey()
        sh("wg", "set", ifname, "private-key", write_key(tmp_path, "k", priv), "listen-port",
           "40013", ns=ns)
        _send_initiations(ns, pub, 40013, 50)  # fewer than make the daemon count as loaded
        text = _wait_for(logfile, lambda t: "suppressed" in t, 10)
        lines = [x for x in text.splitlines() if "[unknown-peer]" in x]
        assert len(lines) == events.BURST + 1, text
        # one summary, at the level of the lines it stands for
        assert lines[-1].endswith("WARNING: 40 more like this suppressed in 2 s: "
                                  "handshake-failed [unknown-peer]"), lines[-1]
    finally:
        daemon_proc.terminate()
        daemon_proc.wait(10)
