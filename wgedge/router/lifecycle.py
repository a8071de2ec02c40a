"""One interface's life as the commands run it: `up`, `down` and `reload` (wgedge/cli only
parses their arguments and prints what they report).

Rules kept here:
- One owner per interface (wgedge/router/runlock.py): `up` takes the interface's lock before
  it creates anything, so of two `up` at once exactly one proceeds and the other changes
  nothing; `down` reports success only once it could take the lock, i.e. nothing runs the
  interface any more.
- `down` touches only what wgedge runs. The interface's lock says whether wgedge runs it (its
  holder wrote the pid files); a name whose lock nobody holds gets no signal and keeps its
  link, whatever pid files say, and only the files of its last run and the host routes `up`
  added are removed (manage.teardown). Without a name, `down` takes the names `up` brought
  up (a state or watchdog pid file in RUN_DIR), never the sockets in /var/run/wireguard.
- An interface under a watchdog is configured only by its watchdog; `reload` asks it
  (SIGHUP) and waits for the answer it writes to IFNAME.reload.json, so the watchdog's own
  copy of the configuration is always the one that runs.
- `reload FILE` makes what runs from FILE (the interfaces whose state file names it) equal
  to FILE (ReloadPlan): removed interfaces go down, changed ones get the difference, new ones
  come up; each on its own and all or nothing, so a failure leaves that one as it ran.

The functions the commands call (up_one, down_one, reload_target, reload) report through a
Report: each line for the operator as it happens, and the exit code.
"""

import os
import signal
import subprocess
import sys
import time

from wgedge.io import priority
from wgedge.io.control import socket_path
from wgedge.router import manage, runlock
from wgedge.router.manage import ManageError
from wgedge.router.runfiles import (
    pid_path,
    read_reload_result,
    read_state,
    reload_result_path,
    running_from,
    socket_answers,
    state_path,
    watchdog_pid_path,
)

read_pid = runlock.live_pid


class Report:
    """What a command did, line by line, handed at once to `emit(text, is_error)` (the
    command line prints it); `code` is the exit code so far (0, or 1 once anything failed)."""

    def __init__(self, emit):
        self.emit = emit
        self.code = 0

    def say(self, text):
        self.emit(text, False)

    def fail(self, text):
        self.emit(text, True)
        self.code = 1


RELOAD_WAIT = 120.0  # a watchdog may first sit out a restart backoff (60 s at most)


def start_daemon(ifname, lock=None, logfile=None, nice=None):
    """Start the interface daemon detached (as `wgedge IFNAME` does) and wait for it. `lock`
    (runlock) is handed down to it, so the daemon holds the interface for as long as it runs.
    `logfile`: its --log; `nice`: its nice value (WGEDGE_NICE, or the daemon's default)."""
    env = dict(os.environ)
    pass_fds = ()
    if lock is not None:
        env[runlock.ENV] = str(lock)
        pass_fds = (lock,)
    if nice is not None:
        env[priority.ENV] = str(nice)
    log_args = ["--log", logfile] if logfile else []
    res = subprocess.run([sys.executable, "-m", "wgedge"] + log_args + [ifname],
                         capture_output=True, text=True, timeout=30, env=env,
                         pass_fds=pass_fds)
    if res.returncode != 0:
        raise ManageError(res.stderr.strip() or "daemon failed to start")


def own_files(ifname):
    """The files of `ifname` in RUN_DIR: what wgedge made for it (or left after a crash)."""
    return [p for p in (state_path(ifname), watchdog_pid_path(ifname), pid_path(ifname),
                        reload_result_path(ifname), runlock.lock_path(ifname))
            if os.path.exists(p)]


def runs(ifname):
    """True while wgedge runs `ifname`: its lock is held (wgedge/router/runlock.py)."""
    return runlock.is_held(ifname)


def down(ifname, lock=None):
    """Undo `up`: stop the watchdog and the daemon, remove routes, addresses and the link.
    Touches only what wgedge runs (the rule at the top of this file); after a crash it
    removes what the last run left (stale pid and state files, host routes, a dead socket).
    `lock` is the interface's lock when the caller holds it already. Returns True once
    nothing runs the interface (its lock could be taken), False if something still holds it."""
    if lock is None:
        try:
            lock = runlock.acquire(ifname)
        except runlock.LockBusy:
            pass
        else:  # nothing of wgedge runs it: its pid files name no process of ours
            manage.teardown(ifname, link=False)
            runlock.release(lock, ifname)
            return True
    wd = read_pid(watchdog_pid_path(ifname))
    if wd is not None:
        os.kill(wd, signal.SIGTERM)
        if not manage.wait_exit(wd, 20):
            os.kill(wd, signal.SIGKILL)
            manage.wait_exit(wd, 5)
    manage.teardown(ifname, daemon_pid=read_pid(pid_path(ifname)))
    if lock is None:
        lock = runlock.wait_acquire(ifname, 5.0)  # a process that is exiting may hold it
        if lock is None:
            return False
    runlock.release(lock, ifname)
    return True


def reload_through_watchdog(ifname, wd_pid, seconds=RELOAD_WAIT):
    """Ask the watchdog `wd_pid` to reload (SIGHUP) and wait for the outcome it records in
    IFNAME.reload.json -> (ok, message). Only a reload that started after this call counts:
    the watchdog numbers them ('started', 'done')."""
    before = read_reload_result(ifname) or {}
    started = before.get("started", 0) if before.get("watchdog_pid") == wd_pid else 0
    os.kill(wd_pid, signal.SIGHUP)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rec = read_reload_result(ifname) or {}
        if rec.get("watchdog_pid") == wd_pid and rec.get("done", 0) > started:
            return bool(rec.get("ok")), rec.get("message", "")
        try:
            os.kill(wd_pid, 0)
        except ProcessLookupError:
            return False, "its watchdog (pid %d) exited during the reload" % wd_pid
        time.sleep(0.05)
    return False, ("no answer from its watchdog (pid %d) within %d s; see the log"
                   % (wd_pid, seconds))


def clear_abandoned(ifname):
    """True when nothing runs `ifname` any more although its state file is there (a daemon
    without a watchdog that died): its lock was free, and what is left of it (routes,
    addresses, files) has been removed as `down` does. False while anything holds it."""
    try:
        lock = runlock.acquire(ifname)
    except runlock.LockBusy:
        return False
    down(ifname, lock)
    return True


class ReloadPlan:
    """What `reload` does to make the running set equal to a valid file: `remove` (names
    that run from the file but are no longer in it), `change` and `add` (interfaces of the
    file that run from it / do not run), `elsewhere` ((interface, the other file it runs
    from): left alone). `only` restricts all of it to one interface name."""

    def __init__(self, loaded, only=None):
        running = running_from(loaded.path)
        wanted = [i for i in loaded.interfaces if only is None or i.name == only]
        names = {i.name for i in loaded.interfaces}
        self.remove = [n for n in running if n not in names and only in (None, n)]
        self.change = [i for i in wanted if i.name in running]
        self.add, self.elsewhere = [], []
        for iface in wanted:
            if iface.name in running:
                continue
            config = (read_state(iface.name) or {}).get("config")
            if config:
                self.elsewhere.append((iface, config))
            else:
                self.add.append(iface)


# --- the commands -----------------------------------------------------------------------------
def up_one(path, iface, no_watchdog, report, logfile=None, nice=None):
    """Bring up one interface of the file at `path` (absolute: the watchdog runs from / and
    reads the file again after each restart). `nice`: the file's `option nice` for a daemon
    without a watchdog (a watchdog reads it from the file itself)."""
    # The interface's lock first: of two `up` at once exactly one gets past this line,
    # and a loser changes nothing (wgedge/router/runlock.py).
    try:
        lock = runlock.acquire(iface.name)
    except runlock.LockBusy as exc:
        report.fail("wgedge: %s is already up or being brought up by %s: use reload, or down "
                    "first" % (iface.name, exc.holder()))
        return
    if os.path.exists(socket_path(iface.name)) and manage.wait_socket(iface.name, 0.5):
        # run by something that takes no lock, e.g. wireguard-go
        runlock.release(lock, iface.name)
        report.fail("wgedge: %s is already up (use reload)" % iface.name)
        return
    if no_watchdog:
        _start_without_watchdog(iface, lock, report, logfile, nice)
    else:
        _start_watchdog(path, iface.name, lock, report, logfile)


def _start_without_watchdog(iface, lock, report, logfile, nice):
    try:
        start_daemon(iface.name, lock, logfile, nice)
        manage.configure(iface, first=True)
    except Exception as exc:  # noqa: BLE001 - reported, and the half-made link removed
        report.fail("wgedge: %s: %s" % (iface.name, exc))
        down(iface.name, lock)
        return
    runlock.release(lock)  # the daemon holds the interface from now on
    report.say("%s is up" % iface.name)


def _start_watchdog(path, ifname, lock, report, logfile):
    from wgedge.router import daemon, watchdog

    def body(ready):
        try:
            daemon.setup_logging(ifname, daemon.log_level(False), False, logfile)
            wd = watchdog.Watchdog(path, ifname, lock, logfile=logfile)
        except BaseException:
            runlock.release(lock, ifname)
            raise
        try:
            wd.run(ready)  # on failure it has undone everything and removed the lock
        except ManageError as exc:  # named as `up --no-watchdog` names it
            raise ManageError("%s: %s" % (ifname, exc)) from None

    code = daemon.detach(body)
    # This copy of the lock only: the watchdog holds it (and cleaned up if it failed).
    runlock.release(lock)
    if code == 0:
        report.say("%s is up (under the watchdog)" % ifname)
    else:
        report.code = 1


def down_one(name, named, report):
    """`down NAME` (named) or one of the names `down` takes without one."""
    running = runs(name)
    if not running and not own_files(name):
        if socket_answers(name):
            report.fail("wgedge: %s is not run by wgedge (another program, e.g. wireguard-go, "
                        "answers on its control socket): left alone" % name)
        else:
            report.fail("wgedge: %s is not running" % name)
        return
    if not down(name):
        pid = runlock.holder_pid(name)
        report.fail("wgedge: %s: still held by %s: not down" % (
            name, "another wgedge" if pid is None else "pid %d" % pid))
        return
    if running:
        report.say("%s is down" % name)
    elif named:
        report.fail("wgedge: %s was not running; removed what its last run left behind" % name)
    else:
        report.say("%s was not running; removed what its last run left behind" % name)


def reload_target(arg, default_path, report):
    """`reload [FILE|IFNAME]` -> (file, None), or (the file it runs from, IFNAME) for an
    interface `up` brought up; (None, None) once a failure is reported. A word without '/'
    that names such an interface is the interface; anything else is a file."""
    if arg is None:
        return default_path, None
    if "/" in arg:
        return arg, None
    state = read_state(arg)
    if state is not None:
        if not state.get("config"):
            report.fail("wgedge: %s: its state file names no config file: reload the file"
                        % arg)
            return None, None
        return state["config"], arg
    if not os.path.exists(arg):
        if os.path.exists(socket_path(arg)):
            report.fail("wgedge: %s was not brought up by `wgedge up`: nothing records its "
                        "file (reload it with `wg syncconf`)" % arg)
        else:
            report.fail("wgedge: %s is neither a file nor an interface wgedge brought up"
                        % arg)
        return None, None
    return arg, None


def reload(loaded, only, no_watchdog, report, logfile=None):
    """Make what runs from the valid file `loaded` equal to it (ReloadPlan; docs/
    configuration.md, "Reload"): interfaces no longer in it are brought down, then the
    changed ones reloaded, then the new ones brought up, each on its own and all or nothing;
    one that fails is left as it ran (a new one not running) and named."""
    path = loaded.path
    plan = ReloadPlan(loaded, only)
    for name in plan.remove:
        if down(name):
            report.say("%s is down (no longer in %s)" % (name, path))
        else:
            report.fail("wgedge: %s: no longer in %s, but still held by another process: not "
                        "down" % (name, path))
    for iface in plan.change:
        if clear_abandoned(iface.name):
            report.say("%s had stopped (nothing ran it any more): bringing it up again"
                       % iface.name)
            plan.add.append(iface)
            continue
        ok, message = _reload_one(iface, loaded.settings.nice)
        if ok:
            report.say("%s reloaded" % iface.name)
        else:
            report.fail("wgedge: %s: reload failed, the running configuration is unchanged: %s"
                        % (iface.name, message))
    for iface, other in plan.elsewhere:
        report.fail("wgedge: %s runs from %s, left as it is: reload that file, or down it and "
                    "reload this one" % (iface.name, other))
    for iface in plan.add:  # the watchdog re-reads the file from another directory
        up_one(os.path.abspath(path), iface, no_watchdog, report, logfile,
               loaded.settings.nice)


def daemon_pid(ifname):
    """The pid in IFNAME.pid if that process is a wgedge daemon for `ifname` (its command
    line ends in the name), else None: a stale file's pid may now be anything else's."""
    pid = read_pid(pid_path(ifname))
    if pid is None:
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return None
    if args and not args[-1]:
        args.pop()
    if args[-1:] == [ifname.encode()] and any(
            os.path.basename(a) == b"wgedge" for a in args[:-1]):
        return pid
    return None


def _reload_one(iface, nice):
    """-> (ok, message). Under a watchdog the watchdog does it (its copy of the configuration
    must stay the one that runs); otherwise manage.configure and the daemon's nice value, all
    or nothing either way."""
    wd = read_pid(watchdog_pid_path(iface.name))
    if wd is not None:
        running = (read_state(iface.name) or {}).get("config")
        if running and os.path.realpath(running) != os.path.realpath(iface.path):
            return False, ("it runs from %s under its watchdog: reload that file, or down "
                           "and up this one" % running)
        return reload_through_watchdog(iface.name, wd)
    pid = daemon_pid(iface.name)
    try:
        old = priority.current(pid) if pid is not None else None
        priority.change_with(pid, old, nice, lambda: manage.configure(iface, first=False))
    except Exception as exc:  # noqa: BLE001 - reported; neither change stays
        return False, str(exc)
    return True, ""
