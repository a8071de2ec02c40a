"""The one way wgedge writes a file: whole or not at all, also across a power cut.

    stage(path, data, mode)   a temporary file in path's directory, written and fsynced
    Staged.commit()           rename it over path, then fsync the directory
    Staged.discard()          remove it; path is untouched
    write(path, data, mode)   stage + commit
    remove(path)              unlink path and fsync the directory (a marker that must stay gone)
    makedirs(directory, mode) the missing directories, each synced into its parent

Rules kept here (tests/test_atomicfile.py checks each; tests/test_layout.py fails on any
other writer in wgedge/):
- A reader, a crash or a power cut sees the old file or the new one, never a part of either:
  the data reaches the disk (fsync of the file) before the rename makes it the file, and the
  rename reaches the disk (fsync of the directory) before `commit` returns, so what the caller
  does next (start a daemon with a generated key, print it, reboot) never runs ahead of it.
- The temporary file is a hidden name in the same directory (a rename is atomic only within
  one file system): `.NAME.XXXXXXXX.tmp`. A crash can leave one behind; it is never read.
- Mode: `mode` when given, else the mode of the file replaced, else 0600 (wgedge's files
  hold keys or describe what runs as root). When root replaces another user's file, the new
  file keeps that owner. A symbolic link is followed: the file it names is replaced.
"""

import os
import stat

TEMP_SUFFIX = ".tmp"
DEFAULT_MODE = 0o600


class Staged:
    """A complete, synced temporary file beside `path`, waiting for commit() or discard()."""

    def __init__(self, path, temp):
        self.path = path
        self.temp = temp

    def commit(self):
        os.replace(self.temp, self.path)
        self.temp = None
        sync_directory(os.path.dirname(self.path))

    def discard(self):
        if self.temp is not None:
            _unlink_quietly(self.temp)
            self.temp = None


def stage(path, data, mode=None):
    """Write `data` (bytes, or str as UTF-8) to a new temporary file beside `path`, fsync it
    -> Staged. Raises OSError with nothing left behind."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = os.path.realpath(path)
    directory, name = os.path.split(path)
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    if mode is None:
        mode = stat.S_IMODE(old.st_mode) if old is not None else DEFAULT_MODE
    fd, temp = _create_temp(directory, name)
    try:
        os.fchmod(fd, mode)  # the umask does not decide a key file's mode
        if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, old.st_uid, old.st_gid)
            except PermissionError:
                pass
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(temp)
        raise
    os.close(fd)
    return Staged(path, temp)


def write(path, data, mode=None):
    """Replace `path` with `data` atomically and durably (the rules at the top of this file)."""
    staged = stage(path, data, mode)
    try:
        staged.commit()
    finally:
        staged.discard()  # only when the rename itself failed


def remove(path):
    """Unlink `path` (missing is fine) and fsync its directory -> True if it existed."""
    path = os.path.abspath(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    sync_directory(os.path.dirname(path))
    return True


def makedirs(directory, mode=0o755):
    """Create `directory` and its missing parents, fsyncing each parent a new name went into
    (a file later written inside must not vanish with its directory at a power cut)."""
    directory = os.path.abspath(directory)
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(directory)
    makedirs(parent, mode)
    try:
        os.mkdir(directory, mode)
    except FileExistsError:
        return
    sync_directory(parent)


def sync_directory(directory):
    """fsync a directory, so the names created, renamed or removed in it are on the disk."""
    fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(directory, name):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        temp = os.path.join(directory, ".%s.%s%s" % (name, os.urandom(4).hex(), TEMP_SUFFIX))
        try:
            return os.open(temp, flags, 0o600), temp
        except FileExistsError:
            continue
    raise FileExistsError("cannot create a temporary file beside %s" % os.path.join(directory,
                                                                                    name))


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass
