"""`wgedge [-f] IFNAME`: run one interface, as a drop-in for `wireguard-go IFNAME`.

Without -f (and without WG_PROCESS_FOREGROUND=1) the process detaches, and the command
returns only once the TUN device exists and the control socket accepts connections, so
`wg-quick` can configure the interface right after it returns. A start-up failure is reported
on stderr by the command that started it, with a non-zero exit code.

Before it creates anything the daemon takes the interface's lock (wgedge/router/runlock.py), or
adopts the one its watchdog or `wgedge up --no-watchdog` hands down: a second daemon for the
same name fails with "in use" instead of racing the first for the TUN device and the control
socket.

SIGHUP never stops the daemon: from its watchdog's child it is passed on to the watchdog,
which reloads the interface from its file (`kill -HUP` of the pid in IFNAME.pid is what an
admin tries first); a daemon without a watchdog logs that it ignores it. Either way the
tunnel and its sessions stay as they are. SIGTERM, SIGINT or the link's removal stop it.

The daemon runs under SCHED_BATCH at nice -10, or at the value WGEDGE_NICE gives
(wgedge/io/priority.py).
"""

import gc
import os
import signal
import sys

from wgedge.io import priority
from wgedge.io.logger import CRITICAL, DEBUG, ERROR, INFO, FileSink, StreamSink, log
from wgedge.router.runfiles import pid_path, write_pid_file
from wgedge.router.sysinfo import describe_lines

SYSLOG_SOCKET = "/dev/log"
FALLBACK_LOG = "/var/log/wgedge-%s.log"  # when no syslog daemon listens on SYSLOG_SOCKET
WATCHDOG_ENV = "WGEDGE_WATCHDOG_PID"  # set by the watchdog for the daemon it starts
GC_YOUNG_THRESHOLD = 10000  # CPython's default is 700 allocations
# glibc's heap: a block this large is mmapped, and the heap keeps up to twice this free at its
# top (see keep_heap below). Under 512 KiB, the most that 32-bit glibc raises its threshold to
# (with 512 KiB less 256 bytes nothing changed in the armhf guest; 64-bit allows 32 MiB).
HEAP_KEEP = 448 * 1024
LEVELS = {"error": ERROR, "silent": CRITICAL + 1, "info": INFO, "verbose": DEBUG,
          "debug": DEBUG}
# The lines of each destination (wgedge/io/logger.py has the fields).
FILE_FORMAT = "%(asctime)s wgedge[%(process)d] %(ifname)s: %(levelname)s: %(message)s"
STDERR_FORMAT = "%(levelname)s: (%(ifname)s) %(message)s"
SYSLOG_FORMAT = "wgedge[%(process)d]: %(ifname)s: %(message)s"


def log_level(verbose):
    if verbose:
        return DEBUG
    name = os.environ.get("LOG_LEVEL", "info").strip().lower()
    if name not in LEVELS:
        raise ValueError("LOG_LEVEL must be one of %s, not %r" % (", ".join(LEVELS), name))
    return LEVELS[name]


def setup_logging(ifname, level, foreground, logfile):
    """Where this process logs (the daemon's or its watchdog's): --log FILE; stderr in the
    foreground (unless WGEDGE_SYSLOG is set); else syslog, or FALLBACK_LOG without one."""
    if logfile:
        sink = FileSink(logfile, FILE_FORMAT, ifname)
    elif foreground and not os.environ.get("WGEDGE_SYSLOG"):
        sink = StreamSink(sys.stderr, STDERR_FORMAT, ifname)
    elif _syslog_listening(SYSLOG_SOCKET):
        from wgedge.io.syslog import SyslogSink

        sink = SyslogSink(SYSLOG_SOCKET, SYSLOG_FORMAT, ifname)
    else:  # no syslog daemon: keep every message in a file instead
        sink = FileSink(FALLBACK_LOG % ifname, FILE_FORMAT, ifname)
    log.configure(level, [sink])


def _syslog_listening(address):
    """True when a syslog daemon takes datagrams at `address`. Asked here because since
    Python 3.11 SysLogHandler swallows a failed connect and then drops every message."""
    import socket

    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        probe = socket.socket(socket.AF_UNIX, kind)
        try:
            probe.connect(address)
            return True
        except OSError:
            continue
        finally:
            probe.close()
    return False


def _remove_pid(ifname):
    try:
        with open(pid_path(ifname)) as f:
            if f.read().strip() == str(os.getpid()):
                os.unlink(pid_path(ifname))
    except (OSError, ValueError):
        pass


def _take_lock(ifname):
    """-> (descriptor, removes the file at exit). The lock a starting watchdog or `up` hands
    down in WGEDGE_LOCK_FD, or our own; a second daemon for the name stops here, before it
    touches the TUN device or the control socket (wgedge/router/runlock.py)."""
    from wgedge.router import runlock

    inherited = os.environ.pop(runlock.ENV, None)
    if inherited is not None:
        return runlock.adopt(ifname, inherited), False
    try:
        return runlock.acquire(ifname), True
    except runlock.LockBusy as exc:
        raise runlock.LockError("interface %s is in use by %s" % (ifname, exc.holder())) \
            from None


def _handle_sighup(ifname):
    """SIGHUP: to the watchdog that started us, if it still does (the pid it named in
    WATCHDOG_ENV is our parent); otherwise logged and ignored."""
    text = os.environ.pop(WATCHDOG_ENV, "")
    watchdog = int(text) if text.isdigit() else None

    def on_hup(*_):
        if watchdog is not None and os.getppid() == watchdog:
            try:
                os.kill(watchdog, signal.SIGHUP)
                log.info("SIGHUP: asked the watchdog (pid %d) to reload %s from its file",
                         watchdog, ifname)
                return
            except OSError as exc:
                log.warning("SIGHUP: cannot pass it on to the watchdog (pid %d): %s",
                            watchdog, exc.strerror)
        log.warning("SIGHUP ignored: %s runs without a watchdog, nothing changed (use "
                    "`wgedge reload %s` or `wg syncconf`)", ifname, ifname)

    signal.signal(signal.SIGHUP, on_hup)


def keep_heap():
    """Stop glibc from giving the data path's heap back to the kernel after every batch.

    A batch allocates and frees several hundred kB (64 KiB UDP receive buffers, merged TUN
    writes, the datagrams of a send). glibc returns free memory at the top of its heap once
    more than M_TRIM_THRESHOLD (128 KiB at start) is free, so each batch grew the heap, took
    fresh zeroed pages in by page faults, and gave them back: 400-1100 faults a second in the
    receiving daemon of the arm64 and armhf benchmark guests. On a board that is a system
    call and a page fault every few packets; under QEMU's multi-threaded TCG each range given
    back is a broadcast TLB invalidation that stops every vCPU, and single-stream TCP fell by
    a quarter or more.

    glibc raises both thresholds itself when a block it had to mmap is freed (mallopt(3),
    "dynamic mmap threshold"): the mmap threshold to that block's size, the trim threshold to
    twice it. bytes(n) asks calloc for the block, and calloc leaves a fresh mapping untouched,
    so this costs no memory. Other C libraries ignore it. The peak stays what it was; the heap
    keeps up to 2 * HEAP_KEEP free between batches instead of returning it.
    """
    bytes(HEAP_KEEP)


def set_priority(nice):
    """Run under SCHED_BATCH at nice value `nice` (wgedge/io/priority.py); a failure is
    logged, and the daemon runs on at the priority it has."""
    try:
        priority.apply(0, nice)
        log.info("priority: nice %d, SCHED_BATCH", nice)
    except OSError as exc:
        log.warning("priority: cannot set nice %d (%s); running at nice %d", nice,
                    exc.strerror, priority.current())


def serve(ifname, crypto, ready=None, nice=priority.DEFAULT):
    """Take the interface's lock, create the interface and run its loop until stopped."""
    from wgedge.router import runlock

    _handle_sighup(ifname)
    # SIGTERM or SIGINT during start-up (an init script stopping the daemon as soon as its
    # pid file appears) must stop it as one in the loop does, cleaning up, not kill it.
    early = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: early.append(True))
    lock, owned = _take_lock(ifname)
    try:
        _serve(ifname, crypto, ready, nice, early)
    finally:
        runlock.release(lock, ifname if owned else None)


def _serve(ifname, crypto, ready, nice, early=()):
    from wgedge.io.loop import Interface

    iface = Interface(ifname, crypto)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, iface.stop)
    if early:
        iface.stop()
    write_pid_file(pid_path(ifname))
    set_priority(nice)  # before the privileges go: a nice value below 0 needs CAP_SYS_NICE
    if os.environ.get("WGEDGE_KEEP_PRIVILEGES") != "1":
        from wgedge.router import privileges

        privileges.drop()
    for line in describe_lines(crypto):
        log.info("%s", line)
    for text in crypto.warnings():  # e.g. a cryptography on the slow path
        log.warning("%s", text)
    log.info("interface %s is up; control socket %s", ifname, iface.control.path)
    # What exists now (modules, configuration, the engine) lives as long as the daemon: keep
    # it out of the cyclic collector's passes, and collect the young generation less often.
    # The hot path's short-lived tuples and views are freed by reference counting anyway;
    # measured: 2.6% fewer instructions per packet through the engine.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    keep_heap()
    try:
        iface.run(ready)
    finally:
        _remove_pid(ifname)
        log.info("interface %s stopped", ifname)


def run(ifname, foreground, verbose=False, logfile=None):
    """The daemon entry point; returns the process exit code."""
    from wgedge import crypto as crypto_mod
    from wgedge.io.tun import TunError, validate_ifname

    try:
        validate_ifname(ifname)
        level = log_level(verbose)
        nice = priority.from_env()
        crypto = crypto_mod.load()
    except (TunError, ValueError) as exc:
        print("wgedge: %s" % exc, file=sys.stderr)
        return 1
    if foreground:
        try:
            setup_logging(ifname, level, True, logfile)
        except OSError as exc:  # --log FILE cannot be opened: said as the background says it
            print("wgedge: %s" % exc, file=sys.stderr)
            return 1
        try:
            serve(ifname, crypto, nice=nice)
        except Exception as exc:  # noqa: BLE001 - a start-up failure the operator must see
            print("wgedge: %s" % exc, file=sys.stderr)
            return 1
        return 0
    return _daemonize(ifname, crypto, level, logfile, nice)


def _daemonize(ifname, crypto, level, logfile, nice):
    def body(ready):
        setup_logging(ifname, level, False, logfile)
        serve(ifname, crypto, ready, nice)

    return detach(body)


def detach(body):
    """Run `body(ready)` in a detached grandchild; return 0 once it calls ready(), or 1 with
    its error printed on stderr if it fails first. (The wireguard-go start-up contract.)"""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as r:
            status = r.read()
        os.waitpid(pid, 0)
        if status == b"ok":
            return 0
        msg = status.decode(errors="replace") or "the background process exited during start-up"
        print("wgedge: %s" % msg, file=sys.stderr)
        return 1
    # First child: new session, then fork again so the daemon is not a session leader.
    os.close(read_fd)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")
    pipe = [write_fd]

    def ready():
        if pipe[0] >= 0:
            os.write(pipe[0], b"ok")
            os.close(pipe[0])
            pipe[0] = -1

    code = 0
    try:
        body(ready)
    except Exception as exc:  # noqa: BLE001 - reported to the starting command
        log.error("%s", exc)
        if pipe[0] >= 0:
            os.write(pipe[0], str(exc).encode())
        code = 1
    finally:
        if pipe[0] >= 0:
            os.close(pipe[0])
    os._exit(code)
