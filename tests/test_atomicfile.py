"""wgedge/router/atomicfile.py: the old file or the new one, never a part, and on the disk.

Crashes are injected at every step of a write, as an exception in this process and as a
SIGKILL of a child process; fsync calls are watched through a spy on os.fsync."""

import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from tests.netns import ROOT
from wgedge.router import atomicfile

OLD = b"old contents\n" * 1000
NEW = b"new contents, longer than the old ones\n" * 3000


def temps(directory):
    return [n for n in os.listdir(directory) if n.endswith(atomicfile.TEMP_SUFFIX)]


class Spy:
    """Records os.fsync (what kind of file, which inode), os.replace and os.unlink in order."""

    def __init__(self, monkeypatch):
        self.events = []
        real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

        def fsync(fd):
            st = os.fstat(fd)
            self.events.append(("fsync", "dir" if stat.S_ISDIR(st.st_mode) else "file",
                                st.st_ino))
            return real_fsync(fd)

        def replace(a, b):
            self.events.append(("replace", os.stat(a).st_ino, b))
            return real_replace(a, b)

        def unlink(p):
            self.events.append(("unlink", p))
            return real_unlink(p)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "unlink", unlink)


def test_write_makes_the_file_with_its_contents_and_mode(tmp_path):
    path = tmp_path / "f"
    old_umask = os.umask(0o077)
    try:
        atomicfile.write(str(path), "text\n", 0o644)
    finally:
        os.umask(old_umask)
    assert path.read_bytes() == b"text\n" and stat.S_IMODE(path.stat().st_mode) == 0o644
    atomicfile.write(str(path), NEW)  # no mode: the replaced file's
    assert path.read_bytes() == NEW and stat.S_IMODE(path.stat().st_mode) == 0o644
    atomicfile.write(str(tmp_path / "g"), b"")  # a new file, no mode: 0600
    assert stat.S_IMODE((tmp_path / "g").stat().st_mode) == 0o600
    assert temps(tmp_path) == []


def test_a_symlink_is_followed_and_kept(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "wgedge"
    target.write_bytes(OLD)
    link = tmp_path / "wgedge"
    link.symlink_to(target)
    atomicfile.write(str(link), NEW)
    assert link.is_symlink() and target.read_bytes() == NEW
    assert temps(tmp_path / "data") == [] and temps(tmp_path) == []


def test_another_users_file_keeps_its_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to own a file as another user")
    path = tmp_path / "f"
    path.write_bytes(OLD)
    os.chown(path, 1234, 5678)
    atomicfile.write(str(path), NEW)
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678) and path.read_bytes() == NEW


def test_the_data_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(OLD)
    spy = Spy(monkeypatch)
    atomicfile.write(str(path), NEW)
    ino = path.stat().st_ino
    assert spy.events == [("fsync", "file", ino), ("replace", ino, str(path)),
                          ("fsync", "dir", tmp_path.stat().st_ino)]


def test_stage_then_commit_or_discard(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(OLD)
    staged = atomicfile.stage(str(path), NEW)
    assert path.read_bytes() == OLD and len(temps(tmp_path)) == 1
    staged.discard()
    assert path.read_bytes() == OLD and temps(tmp_path) == []
    spy = Spy(monkeypatch)
    staged = atomicfile.stage(str(path), NEW)
    staged.commit()
    assert path.read_bytes() == NEW and temps(tmp_path) == []
    assert [e[0] for e in spy.events] == ["fsync", "replace", "fsync"]


def test_remove_syncs_the_directory(tmp_path, monkeypatch):
    path = tmp_path / "marker"
    path.write_text("b\n")
    spy = Spy(monkeypatch)
    assert atomicfile.remove(str(path)) is True
    assert not path.exists()
    assert spy.events == [("unlink", str(path)), ("fsync", "dir", tmp_path.stat().st_ino)]
    assert atomicfile.remove(str(path)) is False


# --- a crash at each step ------------------------------------------------------------------------
class Crash(Exception):
    pass


def _crash_at(monkeypatch, step):
    """Make the write fail at `step`: an exception where that call would be (os.write writes
    half of what it is given, then fails, as a process cut in the middle of a write)."""
    counts = {"fsync": 0}
    real = {name: getattr(os, name) for name in ("open", "fchmod", "write", "fsync", "replace")}

    def open_(path, flags, *a):
        if step == "create" and flags & os.O_CREAT:
            raise Crash(step)
        return real["open"](path, flags, *a)

    def fchmod(fd, mode):
        if step == "fchmod":
            raise Crash(step)
        return real["fchmod"](fd, mode)

    def write(fd, data):
        if step == "write":
            real["write"](fd, bytes(data[:len(data) // 2]))
            raise Crash(step)
        return real["write"](fd, data)

    def fsync(fd):
        counts["fsync"] += 1
        if (step, counts["fsync"]) in (("fsync-file", 1), ("fsync-dir", 2)):
            raise Crash(step)
        return real["fsync"](fd)

    def replace(a, b):
        if step == "replace":
            raise Crash(step)
        return real["replace"](a, b)

    for name, fn in (("open", open_), ("fchmod", fchmod), ("write", write), ("fsync", fsync),
                     ("replace", replace)):
        monkeypatch.setattr(os, name, fn)


STEPS_BEFORE_RENAME = ("create", "fchmod", "write", "fsync-file", "replace")


@pytest.mark.parametrize("step", STEPS_BEFORE_RENAME + ("fsync-dir",))
def test_an_exception_at_any_step_leaves_the_old_file_or_the_new(tmp_path, monkeypatch, step):
    path = tmp_path / "f"
    path.write_bytes(OLD)
    with monkeypatch.context() as m:
        _crash_at(m, step)
        with pytest.raises(Crash):
            atomicfile.write(str(path), NEW)
    assert path.read_bytes() == (OLD if step in STEPS_BEFORE_RENAME else NEW)
    assert temps(tmp_path) == []  # an exception cleans up after itself


CHILD = textwrap.dedent("""
    import os, signal, sys
    from wgedge.router import atomicfile
    path, step = sys.argv[1], sys.argv[2]
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
    real = {n: getattr(os, n) for n in ("write", "fsync", "replace")}
    fsyncs = []
    def write(fd, data):
        if step == "write":
            real["write"](fd, bytes(data[:len(data) // 2]))
            kill()
        return real["write"](fd, data)
    def fsync(fd):
        fsyncs.append(fd)
        if (step, len(fsyncs)) in (("fsync-file", 1), ("fsync-dir", 2)):
            kill()
        return real["fsync"](fd)
    def replace(a, b):
        if step == "replace":
            kill()
        real["replace"](a, b)
        if step == "after-replace":
            kill()
    os.write, os.fsync, os.replace = write, fsync, replace
    atomicfile.write(path, open(sys.argv[3], "rb").read())
    print("finished")
""")


@pytest.mark.parametrize("step, survivor", [
    ("write", OLD), ("fsync-file", OLD), ("replace", OLD), ("after-replace", NEW),
    ("fsync-dir", NEW)])
def test_sigkill_at_any_step_leaves_the_old_file_or_the_new(tmp_path, step, survivor):
    path, new = tmp_path / "f", tmp_path / "new-contents"
    path.write_bytes(OLD)
    new.write_bytes(NEW)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), step, str(new)],
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert path.read_bytes() == survivor


WRITER = textwrap.dedent("""
    import sys
    from wgedge.router import atomicfile
    a, b = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
    print("ready", flush=True)
    while True:
        atomicfile.write(sys.argv[1], a)
        atomicfile.write(sys.argv[1], b)
""")


def test_sigkill_at_random_moments_never_leaves_a_part(tmp_path):
    """20 kills of a process that rewrites a 1 MB file as fast as it can: each time, the file
    is one of the two versions, whole."""
    path, a, b = tmp_path / "f", tmp_path / "a", tmp_path / "b"
    a.write_bytes(os.urandom(1 << 20))
    b.write_bytes(os.urandom((1 << 20) + 12345))
    versions = {a.read_bytes(), b.read_bytes()}
    path.write_bytes(a.read_bytes())
    rng = random.Random(16)
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(a), str(b)],
                                env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert path.read_bytes() in versions


def test_makedirs_syncs_each_parent_a_new_directory_went_into(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    spy = Spy(monkeypatch)
    atomicfile.makedirs(str(tmp_path / "data" / "etc" / "config"))
    assert (tmp_path / "data" / "etc" / "config").is_dir()
    assert spy.events == [("fsync", "dir", (tmp_path / "data").stat().st_ino),
                          ("fsync", "dir", (tmp_path / "data" / "etc").stat().st_ino)]
    atomicfile.makedirs(str(tmp_path / "data" / "etc" / "config"))  # there: nothing to do
    assert len(spy.events) == 2
