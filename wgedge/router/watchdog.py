"""The watchdog: supervises one interface daemon for as long as the router runs.

Decisions, each logged:
- The daemon runs as a child in the foreground. If it exits or dies, it is restarted after a
  backoff that doubles from 1 s to 60 s (reset once a daemon has stayed up for 60 s); beyond
  MAX_RESTARTS within RESTART_WINDOW, every restart waits the full 60 s. After a restart the
  interface is configured again from the file: keys, peers, addresses, MTU, routes.
- Every check interval it asks the control socket for `get=1`; three failed checks in a row
  and the daemon is killed (and so restarted).
- A peer with a host-name endpoint whose latest handshake is older than `stale_handshake`
  (150 s, or never) has the name resolved again; a changed address becomes its endpoint
  (OpenWrt's wireguard_watchdog behaviour). Literal addresses are left alone. What the
  resolver answers is logged (HostLog): the first result and each new one, a failure at once
  and then at most every DNS_LOG_EVERY while it lasts (with the count of attempts), and the
  recovery; every attempt at debug level.
- With `watchdog_device` set, the hardware watchdog is fed only while all of that is healthy,
  and closed with the magic 'V' on a clean stop, so a stopped service does not reboot the box.
- SIGHUP (to the watchdog, or to its daemon, which passes it on) re-reads the file and
  applies the difference, all or nothing (manage.configure): a bad file, or a change the
  kernel refuses, is logged and leaves everything as it was. Each reload is numbered and its
  outcome written to IFNAME.reload.json, which is how `wgedge reload` (which asks the
  watchdog rather than configuring the interface itself) learns it.
  The watchdog's copy of the configuration changes only with a reload or restart that
  succeeded, so it always describes what runs.
- After a restart the file is applied again; if the kernel now refuses it, the last
  configuration that ran is applied instead.
- The watchdog holds the interface's lock (wgedge/router/runlock.py) from `up` on and shares
  it with each daemon it starts; SIGTERM/SIGINT stop the daemon, undo everything `up` did
  (manage.teardown, the same way back as `down`) and remove the lock, so a later `up` starts
  afresh.
"""

import os
import select
import signal
import subprocess
import sys
import time

from wgedge.config.loader import load
from wgedge.config.schema import peer_label
from wgedge.io import priority
from wgedge.io.logger import DEBUG, INFO, WARNING, log
from wgedge.router import control_client, daemon, manage, runfiles, runlock
from wgedge.router.endpoints import is_literal, resolve


def exit_text(returncode):
    """How a child's end reads in the log: 'exited with status 1', 'was killed by SIGKILL'."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "was killed by %s" % name
    return "exited with status %s" % returncode

MAX_BACKOFF = 60.0
STABLE_AFTER = 60.0
MAX_RESTARTS = 10
RESTART_WINDOW = 600.0
FAILED_CHECKS_BEFORE_KILL = 3
DNS_LOG_EVERY = 300.0  # seconds between warnings about a host name that still fails


class HostLog:
    """What the log says about one peer's host name, given each resolution's result
    ('ip:port' or None) and the time: `lines(result, now)` -> [(level, message)]. A failure
    is logged at once, then at most once per DNS_LOG_EVERY while it lasts (a retry every
    check_interval must not fill the log), with the number of attempts; a recovery and each
    address not logged before at info; everything else at debug."""

    def __init__(self, label, host):
        self.label, self.host = label, host
        self.failures = 0  # attempts in a row that failed
        self.failing_since = self.warned_at = None
        self.logged = None  # the last address logged

    def lines(self, result, now):
        who = "peer %s: %s" % (self.label, self.host)
        if result is None:
            self.failures += 1
            if self.failures == 1:
                self.failing_since = self.warned_at = now
                return [(WARNING, "%s does not resolve; the peer keeps the endpoint "
                         "it has (if any), retrying at each check" % who)]
            if now - self.warned_at >= DNS_LOG_EVERY:
                self.warned_at = now
                return [(WARNING, "%s still does not resolve (%d attempts in %d s)"
                         % (who, self.failures, now - self.failing_since))]
            return [(DEBUG, "%s does not resolve (attempt %d)" % (who, self.failures))]
        out = []
        if self.failures:
            out.append((INFO, "%s resolves again after %d failed attempts: %s"
                        % (who, self.failures, result)))
            self.failures = 0
        elif result != self.logged:
            out.append((INFO, "%s resolves to %s" % (who, result)))
        else:
            out.append((DEBUG, "%s resolves to %s (unchanged)" % (who, result)))
        self.logged = result
        return out


class Watchdog:
    def __init__(self, config_path, ifname, lock=None, logfile=None):
        self.config_path = config_path  # absolute: the watchdog runs from /
        self.logfile = logfile  # `up --log FILE`: each daemon started logs there too
        self.ifname = ifname
        self.lock = lock  # runlock descriptor, handed to each daemon started
        self.reloads_started = self.reloads_done = 0
        self.child = None
        self.child_started = 0.0
        self.backoff = 1.0
        self.restarts = []
        self.failed_checks = 0
        self.hw = None
        self.stopping = False
        self.reload_requested = False
        self.host_logs = {}  # public key -> HostLog of a peer with a host-name endpoint
        self.iface, self.settings = self._load()

    def _load(self):
        loaded = load(self.config_path)
        if loaded.errors:
            raise manage.ManageError("\n".join(str(e) for e in loaded.errors))
        iface = loaded.interface(self.ifname)
        if iface is None:
            raise manage.ManageError("%s has no wireguard interface %s"
                                     % (self.config_path, self.ifname))
        return iface, loaded.settings

    # --- the child daemon ------------------------------------------------------------------
    def _start_child(self, candidates):
        """Start a daemon and configure it with the first of `candidates` ((iface, settings)
        pairs) that the kernel and the daemon accept; that one becomes the watchdog's copy.
        A refused configuration changes nothing (manage.configure), so the next candidate
        goes to the same fresh daemon. Raises the last error; the caller kills the child."""
        self._spawn()
        error = None
        for iface, settings in candidates:
            if error is not None:
                log.error("%s: %s; trying the last configuration that ran", self.ifname, error)
            try:
                manage.configure(iface, first=True)
            except manage.ManageError as exc:
                error = exc
                continue
            self.iface, self.settings = iface, settings
            self.failed_checks = 0
            return
        raise error

    def _spawn(self):
        env = dict(os.environ, WGEDGE_SYSLOG="1", **{daemon.WATCHDOG_ENV: str(os.getpid()),
                                                     priority.ENV: str(self.settings.nice)})
        pass_fds = ()
        if self.lock is not None:
            env[runlock.ENV] = str(self.lock)
            pass_fds = (self.lock,)
        log_args = ["--log", self.logfile] if self.logfile else []
        self.child = subprocess.Popen([sys.executable, "-m", "wgedge", "-f"] + log_args
                                      + [self.ifname],
                                      env=env, stdin=subprocess.DEVNULL, pass_fds=pass_fds,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.child_started = time.monotonic()
        if not manage.wait_socket(self.ifname, 15.0, self.child):
            raise manage.ManageError("daemon for %s did not start" % self.ifname)

    def _restart(self):
        now = time.monotonic()
        if now - self.child_started >= STABLE_AFTER:
            self.backoff = 1.0
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW]
        delay = self.backoff
        if len(self.restarts) >= MAX_RESTARTS:
            delay = MAX_BACKOFF
            log.error("%s: %d restarts within %d s: restarting every %d s from now on",
                      self.ifname, len(self.restarts), RESTART_WINDOW, MAX_BACKOFF)
        log.warning("%s: restarting the daemon in %.0f s", self.ifname, delay)
        if self._sleep(delay):
            return
        self.restarts.append(time.monotonic())
        self.backoff = min(MAX_BACKOFF, self.backoff * 2)
        try:
            candidates = [self._load()]
        except manage.ManageError as exc:
            log.error("%s: config now invalid, restarting with the last good one: %s",
                      self.ifname, exc)
            candidates = []
        candidates.append((self.iface, self.settings))
        try:
            self._start_child(candidates)
            log.warning("%s: daemon restarted (pid %d; restart %d within %d s)", self.ifname,
                        self.child.pid, len(self.restarts), RESTART_WINDOW)
        except Exception as exc:  # noqa: BLE001 - keep supervising
            log.error("%s: restart failed: %s", self.ifname, exc)
            self._kill_child()

    def _kill_child(self):
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait()

    # --- periodic checks ---------------------------------------------------------------------
    def _check(self):
        """One health check; returns True when everything is healthy."""
        try:
            _, peers = control_client.get(self.ifname, timeout=2.0)
        except control_client.ControlClientError as exc:
            self.failed_checks += 1
            log.warning("%s: control socket check failed (%d): %s", self.ifname,
                        self.failed_checks, exc)
            if self.failed_checks >= FAILED_CHECKS_BEFORE_KILL:
                log.error("%s: daemon not answering, killing it", self.ifname)
                self._kill_child()
            return False
        self.failed_checks = 0
        self._reresolve(peers)
        return True

    def _reresolve(self, peers):
        now = time.time()
        running = {p["public_key"]: p for p in peers}
        from wgedge.core.uapi import key_to_hex

        named = {p.public_key for p in self.iface.peers if p.endpoint_host is not None}
        for key in [k for k in self.host_logs if k not in named]:
            del self.host_logs[key]
        for peer in self.iface.peers:
            if peer.endpoint_host is None or is_literal(peer.endpoint_host):
                continue
            cur = running.get(key_to_hex(peer.public_key))
            if cur is None:
                continue
            hs = int(cur.get("last_handshake_time_sec", "0"))
            if hs and now - hs <= self.settings.stale_handshake:
                continue
            fresh = resolve(peer.endpoint_host, peer.endpoint_port)
            self._log_resolution(peer, fresh)
            if fresh is None or fresh == cur.get("endpoint"):
                continue
            log.info("%s: peer %s: %s now resolves to %s (was %s), updating the endpoint",
                     self.ifname, peer_label(peer), peer.endpoint_host,
                     fresh, cur.get("endpoint"))
            try:
                control_client.request(self.ifname, "set=1\npublic_key=%s\nupdate_only=true\n"
                                       "endpoint=%s" % (key_to_hex(peer.public_key), fresh))
            except control_client.ControlClientError as exc:
                log.error("%s: cannot update endpoint: %s", self.ifname, exc)

    def _log_resolution(self, peer, result):
        entry = self.host_logs.get(peer.public_key)
        if entry is None or (entry.host, entry.label) != (peer.endpoint_host,
                                                          peer_label(peer)):
            entry = self.host_logs[peer.public_key] = HostLog(peer_label(peer),
                                                              peer.endpoint_host)
        for level, message in entry.lines(result, time.monotonic()):
            log.log(level, "%s: %s", self.ifname, message)

    def _feed(self, healthy):
        if self.hw is not None and healthy:
            try:
                self.hw.write(b"\0")
            except OSError as exc:
                log.error("hardware watchdog: %s", exc)

    def _reload(self):
        """Apply the file again, all or nothing, and record the outcome for `wgedge reload`."""
        self.reload_requested = False
        self.reloads_started += 1
        self._record_reload(False, "")
        ok, message = self._apply_file()
        self.reloads_done = self.reloads_started
        self._record_reload(ok, message)

    def _apply_file(self):
        try:
            iface, settings = self._load()
        except manage.ManageError as exc:
            log.error("%s: reload refused, keeping the running configuration:\n%s",
                      self.ifname, exc)
            return False, str(exc)
        pid = self.child.pid if self.child is not None else None
        try:
            priority.change_with(pid, self.settings.nice, settings.nice,
                                 lambda: manage.configure(iface, first=False))
        except Exception as exc:  # noqa: BLE001 - reported; neither change stays
            log.error("%s: reload failed, the running configuration is unchanged: %s",
                      self.ifname, exc)
            return False, str(exc)
        if settings.nice != self.settings.nice:
            log.info("%s: daemon now at nice %d", self.ifname, settings.nice)
        self.iface, self.settings = iface, settings
        log.info("%s: configuration reloaded", self.ifname)
        return True, ""

    def _record_reload(self, ok, message):
        try:
            runfiles.write_reload_result(self.ifname, {
                "watchdog_pid": os.getpid(), "started": self.reloads_started,
                "done": self.reloads_done, "ok": ok, "message": message})
        except OSError as exc:
            log.error("%s: cannot record the reload's outcome: %s", self.ifname, exc)

    # --- main loop ---------------------------------------------------------------------------
    def _sleep(self, seconds, wake_on_signal=False):
        """Sleep; True when asked to stop. With `wake_on_signal`, any signal (a child exiting,
        SIGHUP) ends the sleep early so the main loop reacts at once."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                ready, _, _ = select.select([self._wake_r], [], [], left)
            except InterruptedError:
                ready = [self._wake_r]
            self._drain()
            if ready and wake_on_signal:
                return self.stopping
        return True

    def _drain(self):
        try:
            while os.read(self._wake_r, 64):
                pass
        except BlockingIOError:
            pass

    def run(self, ready=None):
        """Supervise until stopped; everything made is undone on the way out, also when the
        start itself fails (then the exception reaches `up`)."""
        if self.lock is not None:
            runlock.claim(self.lock)
        self._wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        try:
            runfiles.write_pid_file(runfiles.watchdog_pid_path(self.ifname))
            if self.settings.watchdog_device:
                try:
                    self.hw = open(self.settings.watchdog_device, "wb", buffering=0)
                except OSError as exc:  # its text would quote the path: the rule in config/uci.py
                    raise manage.ManageError("cannot open watchdog_device: %s" % exc.strerror)
                log.info("feeding hardware watchdog %s", self.settings.watchdog_device)
            self._start_child([(self.iface, self.settings)])
            log.info("%s: up under the watchdog (daemon pid %d)", self.ifname, self.child.pid)
            if ready is not None:
                ready()
            tick = min(self.settings.check_interval, self.settings.watchdog_interval)
            while not self.stopping:
                if self.child.poll() is not None:
                    log.error("%s: daemon (pid %d) %s", self.ifname, self.child.pid,
                              exit_text(self.child.returncode))
                    self._restart()
                    continue
                if self.reload_requested:
                    self._reload()
                self._feed(self._check() and self.child.poll() is None)
                self._sleep(tick, wake_on_signal=True)
        finally:
            self._shutdown()

    def _on_stop(self, *_):
        self.stopping = True

    def _on_hup(self, *_):
        self.reload_requested = True

    def _shutdown(self):
        log.info("%s: stopping", self.ifname)
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        manage.teardown(self.ifname)  # its daemon has exited: the one way back
        if self.hw is not None:
            try:
                self.hw.write(b"V")  # magic close: a clean stop must not reboot the router
                self.hw.close()
            except OSError:
                pass
        if self.lock is not None:
            runlock.release(self.lock, self.ifname)  # our daemon has exited: no one shares it
            self.lock = None
