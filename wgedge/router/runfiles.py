"""The files of an interface wgedge runs, in RUN_DIR (/var/run/wgedge): what `up` did and
who runs it, so `down`, `reload` and `status` see exactly that.

    IFNAME.pid            the daemon's pid (written by the daemon itself)
    IFNAME.watchdog.pid   its watchdog's pid
    IFNAME.state.json     {"config": the file it runs from, "net": what netsetup added}
    IFNAME.reload.json    the outcome of the last reload its watchdog did
    IFNAME.lock           its lock (wgedge/router/runlock.py)

Rules: every file is written through wgedge/router/atomicfile.py (aside, fsynced, renamed into
place: a reader never sees half of one), mode 0600 in a 0700 directory; a file that is missing
or unreadable reads as None.
"""

import os
import socket

from wgedge.io.control import socket_path
from wgedge.router import atomicfile

RUN_DIR = "/var/run/wgedge"


def pid_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".pid")


def state_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".state.json")


def watchdog_pid_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".watchdog.pid")


def reload_result_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".reload.json")


def read_json(path):
    import json  # here: the interface daemon imports this module and never reads JSON

    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_state(ifname):
    return read_json(state_path(ifname))


def write_aside(path, record):
    """`record` as JSON in a synced temporary file beside `path` (0600) -> atomicfile.Staged:
    commit() puts it in place, discard() drops it."""
    import json
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    return atomicfile.stage(path, json.dumps(record), 0o600)


def write_pid_file(path):
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    atomicfile.write(path, "%d\n" % os.getpid(), 0o600)


def write_json(path, record):
    """`record` as JSON in place of `path` (0600), atomically and durably."""
    import json
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    atomicfile.write(path, json.dumps(record), 0o600)


def write_state(ifname, state):
    write_json(state_path(ifname), state)


def unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def read_reload_result(ifname):
    return read_json(reload_result_path(ifname))


def write_reload_result(ifname, record):
    write_json(reload_result_path(ifname), record)


def running_interfaces():
    names = set()
    for directory, suffix in ((RUN_DIR, ".state.json"), ("/var/run/wireguard", ".sock")):
        try:
            for f in os.listdir(directory):
                if f.endswith(suffix):
                    names.add(f[:-len(suffix)])
        except OSError:
            pass
    return sorted(names)


def running_from(path):
    """The interfaces `up` brought up from the file at `path` that still run, as their state
    files record it (sorted). Others, whatever runs them, are not the file's to change."""
    real = os.path.realpath(path)
    names = []
    for name in running_interfaces():
        config = (read_state(name) or {}).get("config")
        if config and os.path.realpath(config) == real:
            names.append(name)
    return names


def brought_up():
    """The interfaces `up` brought up (or whose last run left its record): a state file or a
    watchdog pid file in RUN_DIR. What `down` without a name takes down."""
    names = set()
    try:
        files = os.listdir(RUN_DIR)
    except FileNotFoundError:
        return []
    for f in files:
        for suffix in (".state.json", ".watchdog.pid"):
            if f.endswith(suffix):
                names.add(f[:-len(suffix)])
    return sorted(names)


def socket_answers(ifname):
    """True when a process listens on `ifname`'s control socket (whichever program it is)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(socket_path(ifname))
        return True
    except OSError:
        return False
    finally:
        s.close()


def remove_dead_socket(ifname):
    """The control socket file, only when nothing answers on it: a live one belongs to a
    running daemon, perhaps another program's (wireguard-go)."""
    if not socket_answers(ifname):
        unlink(socket_path(ifname))


def remove_files(ifname):
    """The pid, state and reload files of `ifname`, and its control socket if dead."""
    for path in (state_path(ifname), watchdog_pid_path(ifname), pid_path(ifname),
                 reload_result_path(ifname)):
        unlink(path)
    remove_dead_socket(ifname)
