"""wgedge/router/runlock.py: one owner per interface, shared down to children, removed safely.

No root needed: the lock directory is a temporary one.
"""

import os
import subprocess
import sys

import pytest

from tests.netns import ROOT
from wgedge.router import runlock


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "RUN_DIR", str(tmp_path))
    return tmp_path


def test_one_owner_and_the_second_is_told_who(run_dir):
    fd = runlock.acquire("wg0")
    with pytest.raises(runlock.LockBusy) as exc:
        runlock.acquire("wg0")  # another open file, even in the same process: refused
    assert exc.value.pid == os.getpid()
    assert "pid %d" % os.getpid() in exc.value.holder()
    other = runlock.acquire("wg1")  # per interface
    runlock.release(other, "wg1")
    runlock.release(fd, "wg0")
    assert not (run_dir / "wg0.lock").exists()
    runlock.release(runlock.acquire("wg0"), "wg0")


def test_a_child_handed_the_lock_keeps_it_after_the_parent_lets_go(run_dir):
    fd = runlock.acquire("wg0")
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys\nfrom wgedge.router import runlock\nrunlock.RUN_DIR = sys.argv[1]\n"
         "runlock.adopt('wg0', os.environ[runlock.ENV])\nprint('held', flush=True)\n"
         "sys.stdin.read()\n", str(run_dir)],
        env=dict(os.environ, PYTHONPATH=ROOT, **{runlock.ENV: str(fd)}), pass_fds=(fd,),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        runlock.release(fd)  # the parent's copy only, the file stays
        with pytest.raises(runlock.LockBusy):
            runlock.acquire("wg0")
    finally:
        child.stdin.close()
        child.wait(10)
    runlock.release(runlock.acquire("wg0"), "wg0")  # free once the child has gone


def test_adopt_refuses_what_is_not_the_lock(run_dir, tmp_path):
    with pytest.raises(runlock.LockError):
        runlock.adopt("wg0", "not-a-number")
    other = os.open(str(tmp_path / "other"), os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(runlock.LockError):
            runlock.adopt("wg0", str(other))
    finally:
        os.close(other)


def test_a_file_removed_between_open_and_flock_is_not_taken(run_dir, monkeypatch):
    # A taker opened the file just before its last holder removed it: the flock then
    # succeeds on a file no one else will ever see, so the taker must notice and take the
    # file now at the path instead (else two processes could both believe they own wg0).
    first = runlock.acquire("wg0")
    stale = os.open(runlock.lock_path("wg0"), os.O_RDWR)
    runlock.release(first, "wg0")
    real_open, opened = os.open, []

    def open_stale_first(path, flags, mode=0o777):
        opened.append(path)
        return stale if len(opened) == 1 else real_open(path, flags, mode)

    monkeypatch.setattr(runlock.os, "open", open_stale_first)
    fd = runlock.acquire("wg0")
    monkeypatch.setattr(runlock.os, "open", real_open)
    assert len(opened) == 2  # the removed file was let go, the one at the path taken
    assert os.fstat(fd).st_ino == os.stat(runlock.lock_path("wg0")).st_ino
    runlock.release(fd, "wg0")
