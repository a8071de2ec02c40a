"""The daemon's nice value (wgedge/io/priority.py): parsed strictly, given to every
thread, set by `wgedge IFNAME` from WGEDGE_NICE and by `up` and the watchdog from `option
nice`, changed by reload on the running daemon (same pid, all or nothing), refused with a
clear error when bad."""

import os
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT
from tests.private_run import PrivateRun
from tests.test_reload import pair  # noqa: F401 - the fixture, routers A and B
from wgedge.config.loader import load
from wgedge.io import priority


def nice_of(tid):
    """Field 19 of /proc/TID/stat: the nice value of that thread."""
    with open("/proc/%d/stat" % tid) as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[16])


def test_parse_takes_nice_values_and_refuses_the_rest():
    for text, value in (("-10", -10), ("0", 0), ("+5", 5), ("19", 19), ("-20", -20),
                        ("007", 7)):
        assert priority.parse(text) == value
    for text in ("20", "-21", "x", "", "-", "--1", "1.5", " 3", "1e1", "0x5", "1000"):
        with pytest.raises(ValueError) as exc:
            priority.parse(text)
        assert "-20 to 19" in str(exc.value)


def test_from_env(monkeypatch):
    monkeypatch.delenv(priority.ENV, raising=False)
    assert priority.from_env() == priority.DEFAULT == -10
    monkeypatch.setenv(priority.ENV, " ")
    assert priority.from_env() == -10
    monkeypatch.setenv(priority.ENV, "3")
    assert priority.from_env() == 3
    monkeypatch.setenv(priority.ENV, "high")
    with pytest.raises(ValueError) as exc:
        priority.from_env()
    assert str(exc.value).startswith("WGEDGE_NICE: ")


def test_apply_reaches_every_thread_and_fails_for_a_gone_process():
    child = subprocess.Popen([sys.executable, "-c",
                              "import threading, time, sys\n"
                              "for _ in range(3):\n"
                              "    threading.Thread(target=time.sleep, args=(60,),"
                              " daemon=True).start()\n"
                              "print('ready', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        tasks = [int(t) for t in os.listdir("/proc/%d/task" % child.pid)]
        assert len(tasks) == 4
        start = nice_of(child.pid)
        target = min(start + 3, 19)  # raising the value needs no privilege
        priority.apply(child.pid, target)
        assert [nice_of(t) for t in tasks] == [target] * 4
        assert [os.sched_getscheduler(t) for t in tasks] == [os.SCHED_BATCH] * 4
    finally:
        child.kill()
        child.wait()
    with pytest.raises(ProcessLookupError):
        priority.apply(child.pid, 5)


def test_a_refused_nice_value_leaves_the_process_as_it_was():
    """Without CAP_SYS_NICE a process cannot lower its nice value: apply() raises and leaves
    the policy too as it was (it once switched to SCHED_BATCH first, so a daemon that logged
    "cannot set nice" ran under a policy no line named). The capability goes as the daemon
    drops it (root stays root, so the checkout need not be readable by another user)."""
    code = ("import os, sys, threading, time\n"
            "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "from wgedge.io import priority\n"
            "from wgedge.router import privileges\n"
            "assert privileges.drop()\n"
            "before = [(os.getpriority(os.PRIO_PROCESS, int(t)), os.sched_getscheduler(int(t)))"
            " for t in os.listdir('/proc/self/task')]\n"
            "try:\n"
            "    priority.apply(0, os.getpriority(os.PRIO_PROCESS, 0) - 5)\n"
            "    print('applied')\n"
            "except PermissionError:\n"
            "    print('refused')\n"
            "after = [(os.getpriority(os.PRIO_PROCESS, int(t)), os.sched_getscheduler(int(t)))"
            " for t in os.listdir('/proc/self/task')]\n"
            "print(before == after, len(after), after[0][1] == os.SCHED_OTHER)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.stdout.split() == ["refused", "True", "2", "True"], out.stderr


def sleeper(*args):
    """A process that sleeps, with `args` at the end of its command line, once that command
    line reads back (right after exec it can read empty for a moment)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"] + list(args))
    deadline = time.monotonic() + 10
    while True:
        with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
            if f.read():
                return proc
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_change_with_reverts_the_priority_when_the_change_fails():
    child = sleeper()
    try:
        start = nice_of(child.pid)
        calls = []
        priority.change_with(child.pid, start, start + 2, lambda: calls.append(1))
        assert calls == [1] and nice_of(child.pid) == start + 2

        def refused():
            assert nice_of(child.pid) == start + 4  # reniced before the change ran
            raise OSError("refused")

        with pytest.raises(OSError, match="refused"):
            priority.change_with(child.pid, start + 2, start + 4, refused)
        assert nice_of(child.pid) == start + 2
        priority.change_with(None, start, start + 6, lambda: calls.append(2))
        assert calls == [1, 2] and nice_of(child.pid) == start + 2
    finally:
        child.kill()
        child.wait()


def test_daemon_pid_trusts_only_a_wgedge_daemon_for_that_interface(tmp_path, monkeypatch):
    """A stale IFNAME.pid whose pid now belongs to another process is not that daemon: reload
    must not renice it."""
    from wgedge.router import lifecycle

    other = sleeper()
    named = sleeper("wgedge", "wt0")
    try:
        for pid, ifname, want in ((other.pid, "wt0", None), (named.pid, "wt0", named.pid),
                                  (named.pid, "wt1", None), (None, "wt0", None)):
            monkeypatch.setattr(lifecycle, "read_pid", lambda path, pid=pid: pid)
            assert lifecycle.daemon_pid(ifname) == want
    finally:
        for p in (other, named):
            p.kill()
            p.wait()


def load_text(tmp_path, text):
    path = tmp_path / "wgedge.uci"
    path.write_text(text)
    path.chmod(0o600)
    return load(str(path))


def test_option_nice_in_the_config(tmp_path):
    base = "config interface 'wg0'\n\toption proto 'wireguard'\n\toption private_key '%s'\n" \
        % ("A" * 43 + "=")
    assert load_text(tmp_path, base).settings.nice == -10
    loaded = load_text(tmp_path, base + "\nconfig wgedge 'settings'\n\toption nice '-5'\n")
    assert not loaded.errors and loaded.settings.nice == -5
    for bad in ("fast", "-25", "1.5"):
        loaded = load_text(tmp_path, base + "\nconfig wgedge 'settings'\n\toption nice '%s'\n"
                           % bad)
        assert len(loaded.errors) == 1, loaded.errors
        text = str(loaded.errors[0])
        assert "nice" in text and "-20 to 19" in text and "wgedge.uci:6: option 'nice'" in text, text


# --- the daemon, root only -------------------------------------------------------------------
def daemon_pid(run, ifname):
    with open(run.path("/var/run/wgedge/%s.pid" % ifname)) as f:
        return int(f.read())


def wait_pid(run, ifname, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return daemon_pid(run, ifname)
        except (OSError, ValueError):
            assert time.monotonic() < deadline, "no pid file for %s" % ifname
            time.sleep(0.1)


@pytest.mark.root
def test_the_daemon_runs_at_its_nice_value_and_refuses_a_bad_one(nets):
    ns = nets.ns("n")
    run = PrivateRun()
    try:
        for env, want in ((None, -10), ("4", 4), ("0", 0)):
            ifname = "wn%s%d" % (nets.tag[:6], want + 10)
            env_args = [] if env is None else ["WGEDGE_NICE=" + env]
            proc = subprocess.Popen(run.cmd(["env", "PYTHONPATH=" + ROOT] + env_args
                                            + [sys.executable, "-m", "wgedge", "-f", ifname],
                                            ns), stderr=subprocess.PIPE, text=True)
            try:
                pid = wait_pid(run, ifname)
                assert nice_of(pid) == want
                tasks = os.listdir("/proc/%d/task" % pid)
                assert all(nice_of(int(t)) == want for t in tasks)
                assert all(os.sched_getscheduler(int(t)) == os.SCHED_BATCH for t in tasks)
            finally:
                proc.terminate()
                err = proc.communicate(timeout=20)[1]
            assert "priority: nice %d, SCHED_BATCH" % want in err, err
        ifname = "wb" + nets.tag[:6]
        res = subprocess.run(run.cmd(["env", "PYTHONPATH=" + ROOT, "WGEDGE_NICE=urgent",
                                      sys.executable, "-m", "wgedge", ifname], ns),
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1
        assert res.stderr.strip().splitlines() == [
            "wgedge: WGEDGE_NICE: expected a nice value from -20 to 19, got 'urgent'"]
        links = subprocess.run(["ip", "netns", "exec", ns, "ip", "-o", "link"],
                               capture_output=True, text=True).stdout
        assert ifname not in links and run.files() == []
    finally:
        run.close()


def settings_text(nice):
    return "config wgedge 'settings'\n\toption nice '%s'\n" % nice


@pytest.mark.root
@pytest.mark.parametrize("mode", ["watchdog", "no-watchdog"])
def test_reload_changes_the_running_daemons_nice_value_all_or_nothing(request, mode):
    """`option nice` starts the daemon at that value; a reload that changes it renices the
    same daemon; a reload that the kernel refuses (an IPv6 address where IPv6 is off) leaves
    the value, like the rest, as it ran."""
    routers = request.getfixturevalue("pair")  # tests/test_reload.py's routers A and B
    flags = ["--no-watchdog"] if mode == "no-watchdog" else []
    a = routers.ifname["a"]
    routers.write("a", more=settings_text(-3))
    routers.up("a", *flags)
    pid = routers.pid(a)
    assert nice_of(pid) == -3
    routers.write("a", more=settings_text(5))
    res = routers.wgedge("a", "reload", str(routers.conf["a"]))
    assert "%s reloaded" % a in res.stdout, res.stdout
    assert routers.pid(a) == pid and nice_of(pid) == 5

    # IPv6 off in the namespace: an IPv6 address on the interface is refused by the kernel.
    routers.run.sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=routers.ns["a"])
    routers.run.sh("sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % a, ns=routers.ns["a"])
    text = routers.conf["a"].read_text().replace(
        "\tlist addresses '10.60.0.1/24'\n",
        "\tlist addresses '10.60.0.1/24'\n\tlist addresses 'fd00:60::1/64'\n")
    routers.conf["a"].write_text(text.replace(settings_text(5), settings_text(9)))
    res = routers.wgedge("a", "reload", str(routers.conf["a"]), check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert routers.pid(a) == pid and nice_of(pid) == 5
    routers.wgedge("a", "down", a)


@pytest.mark.root
def test_a_stop_during_start_up_still_cleans_up(nets):
    """SIGTERM while the daemon starts (its lock taken, the interface being made, the pid file
    just written: an init script that stops it at once) stops it as one in its loop does:
    exit 0, no link, no file left."""
    ns = nets.ns("s")
    run = PrivateRun()
    try:
        for i, wait_for in enumerate(("lock", "pid", "lock", "pid")):
            ifname = "ws%s%d" % (nets.tag[:6], i)
            proc = subprocess.Popen(run.cmd(["env", "PYTHONPATH=" + ROOT, sys.executable, "-m",
                                             "wgedge", "-f", ifname], ns),
                                    stderr=subprocess.PIPE, text=True)
            path = run.path("/var/run/wgedge/%s.%s" % (ifname, wait_for))
            deadline = time.monotonic() + 30
            while not os.path.exists(path):
                assert time.monotonic() < deadline and proc.poll() is None, path
                time.sleep(0.001)
            proc.terminate()
            err = proc.communicate(timeout=30)[1]
            assert proc.returncode == 0, err
            assert "Traceback" not in err, err
            links = subprocess.run(["ip", "netns", "exec", ns, "ip", "-o", "link"],
                                   capture_output=True, text=True).stdout
            assert ifname not in links
            assert run.files() == [], (wait_for, run.files())
    finally:
        run.close()
