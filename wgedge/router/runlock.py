"""One owner per interface: an exclusive flock on /var/run/wgedge/IFNAME.lock.

Rules kept here:
- Whatever starts an interface takes its lock first, without waiting: `wgedge up` before it
  checks or creates anything, `wgedge IFNAME` before the TUN device and the control socket.
  A second starter fails at once with a clear message and changes nothing, so checking the
  control socket and then creating it is no longer a race (check-then-act).
- The lock is held for as long as anything runs the interface. A flock belongs to the open
  file, not to a process: `up` hands its descriptor to the watchdog it forks, the watchdog
  (and `up --no-watchdog`) to the daemon it starts, naming it in WGEDGE_LOCK_FD; they then
  share one lock. A daemon orphaned by a killed watchdog still holds it, so no second one
  can start beside it until `down` has stopped it.
- The file is removed only by a holder whose helpers sharing the lock are gone: a
  standalone daemon at exit, the watchdog after its daemon exited, `down` once it could take
  the lock itself. So a taker checks, once it holds the flock, that the file it locked is
  still the one at the path (it may have been removed in between) and tries again if not.
"""

import fcntl
import os

from wgedge.router.runfiles import RUN_DIR

ENV = "WGEDGE_LOCK_FD"


class LockBusy(Exception):
    def __init__(self, ifname, pid):
        Exception.__init__(self, ifname, pid)
        self.ifname = ifname
        self.pid = pid  # the holder as it wrote itself into the file, or None

    def holder(self):
        return "another wgedge" + ("" if self.pid is None else " (pid %d)" % self.pid)


class LockError(Exception):
    pass


def lock_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".lock")


def _is_current(fd, path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def live_pid(path):
    """The pid written in the file at `path`, if that process still lives, else None."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def holder_pid(ifname):
    """The pid the holder wrote into the lock file, if that process still lives (a daemon
    orphaned by a killed watchdog holds the lock under the watchdog's pid)."""
    return live_pid(lock_path(ifname))


def is_held(ifname):
    """True while something holds the interface's lock, i.e. wgedge runs it (a watchdog, a
    daemon, an `up` under way). Asks without taking the lock or creating the file."""
    try:
        fd = os.open(lock_path(ifname), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def acquire(ifname):
    """Take the lock without waiting -> its descriptor (close-on-exec). Raises LockBusy."""
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    path = lock_path(ifname)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockBusy(ifname, holder_pid(ifname)) from None
        except OSError:
            os.close(fd)
            raise
        if _is_current(fd, path):
            claim(fd)
            return fd
        os.close(fd)  # removed by its last holder after we opened it: take the new file


def claim(fd):
    """Write this process into the lock file, as the one to name to a second starter."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, b"%d\n" % os.getpid(), 0)


def adopt(ifname, fd_text):
    """The lock handed down by the process that started this one (WGEDGE_LOCK_FD)."""
    try:
        fd = int(fd_text)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the same open file: already ours
    except (ValueError, OSError):
        raise LockError("%s=%r is not a held lock for %s" % (ENV, fd_text, ifname)) from None
    if not _is_current(fd, lock_path(ifname)):
        raise LockError("%s=%r is not the lock of %s" % (ENV, fd_text, ifname))
    os.set_inheritable(fd, False)
    return fd


def release(fd, ifname=None):
    """Give up this descriptor; with `ifname`, remove the file first (only when no other
    process shares the lock any more)."""
    if ifname is not None and _is_current(fd, lock_path(ifname)):
        try:
            os.unlink(lock_path(ifname))
        except OSError:
            pass
    os.close(fd)


def wait_acquire(ifname, seconds):
    """acquire(), retried for up to `seconds` -> descriptor, or None while still held."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            return acquire(ifname)
        except LockBusy:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
