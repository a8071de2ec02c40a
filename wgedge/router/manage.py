"""What `wgedge up/down/reload/status` do, and what the watchdog repeats after a restart.

The interface daemon is configured only through its control socket, with the same text
protocol `wg` speaks; addresses and routes go through netsetup (pyroute2). Everything `up`
did is recorded in /var/run/wgedge/IFNAME.state.json so `down` and `reload` can undo or
adjust exactly that.

Rules kept here:
- `configure` applies a configuration completely or not at all. The steps that can fail come
  first and are taken back if a later one fails: network additions (netsetup.apply), the
  state file written aside, then the WireGuard settings in one `set` request (the daemon
  validates and applies a request whole); only then are unwanted addresses and routes removed
  and the state file moved into place. A failure raises ManageError, and the daemon, the link
  and the state file are as they were.
- One configurator at a time: `configure` holds a flock on /var/run/wgedge itself. An
  interface under a watchdog is configured only by its watchdog; `wgedge reload` asks it
  (SIGHUP) and waits for the answer it writes to IFNAME.reload.json, so the watchdog's own
  copy of the configuration is always the one that runs.
- `reload FILE` makes what runs from FILE (the interfaces whose state file names it) equal
  to FILE (ReloadPlan): removed interfaces go down, changed ones get the difference, new ones
  come up; each on its own and all or nothing, so a failure leaves that one as it ran.
- One owner per interface (wgedge/router/runlock.py): `down` stops the watchdog and the daemon and
  reports success only once it could take the interface's lock, i.e. nothing runs it any more.
- `down` touches only what wgedge runs. The interface's lock says whether wgedge runs it (its
  holder wrote the pid files); a name whose lock nobody holds gets no signal and keeps its
  link, whatever pid files say, and only the files of its last run and the host routes `up`
  added are removed. A control socket is removed only when nothing answers on it: after
  wgedge's daemon exited, a live one belongs to another program (wireguard-go). Without a
  name, `down` takes the names `up` brought up (a state or watchdog pid file here), never
  the sockets in /var/run/wireguard.
"""

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time

from wgedge.config import model
from wgedge.core.ipaddr import format_cidr, parse_ip
from wgedge.core.uapi import EADDRINUSE, key_to_hex
from wgedge.io.control import socket_path
from wgedge.io.events import FAILURE_TEXT, STATUS_OP
from wgedge.router import control_client, netsetup, runlock
from wgedge.router.daemon import RUN_DIR, pid_path


class ManageError(Exception):
    pass


def state_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".state.json")


def watchdog_pid_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".watchdog.pid")


def reload_result_path(ifname):
    return os.path.join(RUN_DIR, ifname + ".reload.json")


CONFIG_LOCK_WAIT = 60.0  # seconds configure waits for another configurator
RELOAD_WAIT = 120.0  # a watchdog may first sit out a restart backoff (60 s at most)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_state(ifname):
    return _read_json(state_path(ifname))


def _write_aside(path, record):
    """Write `record` as JSON next to `path` (0600) -> the temporary name to os.replace."""
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def write_pid_file(path):
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % os.getpid())
    os.replace(tmp, path)


def write_state(ifname, state):
    os.replace(_write_aside(state_path(ifname), state), state_path(ifname))


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


read_pid = runlock.live_pid


# --- endpoints --------------------------------------------------------------------------------
def is_literal(host):
    try:
        parse_ip(host)
        return True
    except ValueError:
        return False


def resolve(host, port):
    """'ip:port' / '[ip6]:port' for the first address the resolver gives, or None."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return None
    for family, _, _, _, addr in infos:
        if family == socket.AF_INET:
            return "%s:%d" % (addr[0], port)
        if family == socket.AF_INET6:
            return "[%s]:%d" % (addr[0], port)
    return None


def unresolved_warnings(loaded):
    """A warning (ConfigError) for each peer whose endpoint host name does not resolve now:
    not an error, since a watchdog resolves it again while the peer has no handshake."""
    from wgedge.config.uci import ConfigError, shown

    out, answers = [], {}
    for iface in loaded.interfaces:
        for peer in iface.peers:
            host = peer.endpoint_host
            if host is None or is_literal(host):
                continue
            if (host, peer.endpoint_port) not in answers:
                answers[host, peer.endpoint_port] = resolve(host, peer.endpoint_port)
            if answers[host, peer.endpoint_port] is None:
                out.append(ConfigError(loaded.path, peer.line, "peer %s of %s: host %s does "
                                       "not resolve now; the peer gets its endpoint once it "
                                       "does (the watchdog retries)" % (
                                           model.peer_label(peer), iface.name, shown(host)),
                                       "Endpoint" if loaded.path.endswith(".conf")
                                       else "endpoint_host"))
    return out


def endpoint_text(peer):
    if peer.endpoint_host is None:
        return None
    if is_literal(peer.endpoint_host):
        ip = peer.endpoint_host
        return ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, peer.endpoint_port)
    return resolve(peer.endpoint_host, peer.endpoint_port)


# --- the userspace API text ----------------------------------------------------------------------
def peer_lines(peer, endpoint):
    lines = ["public_key=" + key_to_hex(peer.public_key),
             "preshared_key=" + key_to_hex(peer.preshared_key or bytes(32))]
    if endpoint:
        lines.append("endpoint=" + endpoint)
    lines.append("persistent_keepalive_interval=%d" % peer.persistent_keepalive)
    lines.append("replace_allowed_ips=true")
    lines += ["allowed_ip=" + format_cidr(a, b) for a, b in peer.allowed_ips]
    return lines


def full_config(iface, endpoints):
    lines = ["private_key=" + key_to_hex(iface.private_key),
             "listen_port=%d" % iface.listen_port, "fwmark=%d" % iface.fwmark,
             "replace_peers=true"]
    for peer in iface.peers:
        lines += peer_lines(peer, endpoints.get(peer.public_key))
    return "set=1\n" + "\n".join(lines)


def diff_config(iface, endpoints, current_iface, current_peers):
    """Only what differs from the running interface, as `wg syncconf` sends it: unchanged
    peers are not mentioned at all, so their sessions stay exactly as they are."""
    lines = []
    if current_iface.get("private_key") != key_to_hex(iface.private_key):
        lines.append("private_key=" + key_to_hex(iface.private_key))
    if iface.listen_port and current_iface.get("listen_port") != str(iface.listen_port):
        lines.append("listen_port=%d" % iface.listen_port)
    if current_iface.get("fwmark", "0") != str(iface.fwmark):
        lines.append("fwmark=%d" % iface.fwmark)
    running = {p["public_key"]: p for p in current_peers}
    wanted = set()
    for peer in iface.peers:
        hexkey = key_to_hex(peer.public_key)
        wanted.add(hexkey)
        cur = running.get(hexkey)
        endpoint = endpoints.get(peer.public_key)
        want_ips = sorted(format_cidr(a, b) for a, b in peer.allowed_ips)
        if cur is not None and (
                cur.get("preshared_key") == key_to_hex(peer.preshared_key or bytes(32))
                and (endpoint is None or cur.get("endpoint") == endpoint)
                and cur.get("persistent_keepalive_interval") == str(peer.persistent_keepalive)
                and sorted(cur["allowed_ip"]) == want_ips):
            continue
        lines += peer_lines(peer, endpoint)
    for hexkey in running:
        if hexkey not in wanted:
            lines += ["public_key=" + hexkey, "remove=true"]
    return "set=1\n" + "\n".join(lines) if lines else None


# --- steps ---------------------------------------------------------------------------------------
def generate_keys(loaded):
    """`private_key 'generate'`: make a key and write it into the file in place of 'generate'
    (as OpenWrt does), keeping every other byte of the file and its permissions."""
    from wgedge.config.model import encode_key
    from wgedge.core.noise import clamp

    targets = [i for i in loaded.interfaces if i.generate_line and i.private_key is None]
    if not targets:
        return
    with open(loaded.path) as f:
        lines = f.read().split("\n")
    for iface in targets:
        iface.private_key = clamp(os.urandom(32))
        i = iface.generate_line - 1
        lines[i] = lines[i].replace("'generate'", "'%s'" % encode_key(iface.private_key), 1) \
            if "'generate'" in lines[i] else lines[i].replace("generate",
                                                               encode_key(iface.private_key), 1)
    mode = os.stat(loaded.path).st_mode & 0o777
    tmp = loaded.path + ".wgedge-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode & 0o700)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, loaded.path)


def wait_socket(ifname, seconds=10.0, proc=None):
    """True once the control socket answers; False after `seconds`, or as soon as `proc`
    (the daemon that should answer) has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            control_client.request(ifname, "get=1", timeout=1.0)
            return True
        except control_client.ControlClientError:
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def config_lock(seconds=CONFIG_LOCK_WAIT):
    """One configurator at a time, whichever interface (a flock on the run directory)."""
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    fd = os.open(RUN_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ManageError("another wgedge has been changing interfaces for %d s: "
                                      "nothing changed, try again" % seconds) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def configure(iface, first=True):
    """Apply `iface` completely or not at all (see the top of this file): the keys and peers
    through the control socket, addresses, MTU and routes through netsetup. `first` replaces
    all peers (a fresh daemon); otherwise only the difference is sent, so untouched peers keep
    their sessions. Returns the network state recorded; raises ManageError with nothing
    changed."""
    endpoints = {p.public_key: endpoint_text(p) for p in iface.peers}  # DNS, before the lock
    ips = [e.rsplit(":", 1)[0].strip("[]") for e in endpoints.values() if e]
    with config_lock():
        previous_state = None if first else read_state(iface.name)
        previous = (previous_state or {}).get("net")
        try:
            if first:
                text = full_config(iface, endpoints)
            else:
                cur_iface, cur_peers = control_client.get(iface.name)
                text = diff_config(iface, endpoints, cur_iface, cur_peers)
            change = netsetup.apply(iface, previous, ips)
        except (netsetup.NetError, control_client.ControlClientError) as exc:
            raise ManageError(str(exc)) from None
        path = state_path(iface.name)
        tmp = None
        try:
            tmp = _write_aside(path, {"config": os.path.abspath(iface.path),
                                      "net": change.state})
            if text:
                control_client.request(iface.name, text)
        except (OSError, control_client.ControlClientError) as exc:
            if tmp is not None:
                _unlink(tmp)
            left = change.rollback()
            if left != dict(netsetup.EMPTY, **(previous or {})):
                _keep_record(iface.name, previous_state or {"config": os.path.abspath(iface.path)},
                             left)
            if isinstance(exc, control_client.ControlClientError):
                raise ManageError(_refusal_text(iface, exc)) from None
            raise ManageError("cannot write %s: %s" % (path, exc.strerror or exc)) from None
        net = change.commit()
        try:
            os.replace(tmp, path)  # a rename within one directory: nothing left to refuse it
        except OSError as exc:
            raise ManageError("applied, but %s could not be updated: %s" % (path, exc)) from None
        return net


def _refusal_text(iface, exc):
    """The daemon's refusal in words an operator can act on, where its errno tells."""
    if exc.errno == EADDRINUSE and iface.listen_port:
        return ("listen_port %d is already in use (another program or interface listens on "
                "it): choose another port, or stop that one" % iface.listen_port)
    return str(exc)


def _keep_record(ifname, previous_state, net):
    """A rollback the kernel refused in part: record what is left, so `down` removes it."""
    try:
        write_state(ifname, dict(previous_state, net=net))
    except OSError:
        pass


def start_daemon(ifname, lock=None, logfile=None):
    """Start the interface daemon detached (as `wgedge IFNAME` does) and wait for it. `lock`
    (runlock) is handed down to it, so the daemon holds the interface for as long as it runs.
    `logfile`: its --log."""
    env = None
    pass_fds = ()
    if lock is not None:
        env = dict(os.environ, **{runlock.ENV: str(lock)})
        pass_fds = (lock,)
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


def _remove_dead_socket(ifname):
    if not socket_answers(ifname):
        _unlink(socket_path(ifname))


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
            _remove_leftovers(ifname)
            runlock.release(lock, ifname)
            return True
    wd = read_pid(watchdog_pid_path(ifname))
    if wd is not None:
        os.kill(wd, signal.SIGTERM)
        if not wait_exit(wd, 20):
            os.kill(wd, signal.SIGKILL)
            wait_exit(wd, 5)
    state = read_state(ifname) or {}
    try:
        netsetup.undo(ifname, state.get("net", {}))
    except Exception:  # noqa: BLE001 - tearing down: go on with the rest
        pass
    pid = read_pid(pid_path(ifname))
    if pid is not None and not wait_exit(pid, 5):
        os.kill(pid, signal.SIGKILL)
        wait_exit(pid, 5)
    for path in (state_path(ifname), watchdog_pid_path(ifname), pid_path(ifname),
                 reload_result_path(ifname)):
        _unlink(path)
    _remove_dead_socket(ifname)
    if lock is None:
        lock = runlock.wait_acquire(ifname, 5.0)  # a process that is exiting may hold it
        if lock is None:
            return False
    runlock.release(lock, ifname)
    return True


def _remove_leftovers(ifname):
    """What a crashed run left. Its link went with its daemon (a TUN device lives as long
    as its descriptor): a link of this name now is someone else's, so only the host routes
    `up` added on other links are taken back."""
    net = (read_state(ifname) or {}).get("net", {})
    if net.get("host_routes"):
        try:
            netsetup.undo(ifname, {"host_routes": net["host_routes"]}, link=False)
        except Exception:  # noqa: BLE001 - tearing down: go on with the rest
            pass
    for path in (state_path(ifname), watchdog_pid_path(ifname), pid_path(ifname),
                 reload_result_path(ifname)):
        _unlink(path)
    _remove_dead_socket(ifname)


# --- reload through the watchdog -------------------------------------------------------------
def read_reload_result(ifname):
    return _read_json(reload_result_path(ifname))


def write_reload_result(ifname, record):
    os.replace(_write_aside(reload_result_path(ifname), record), reload_result_path(ifname))


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


def wait_exit(pid, seconds):
    """True once process `pid` has exited, False if it still runs after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


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


def _extended_status(ifname):
    """What the daemon's `wgedge-status=1` answer adds to `get` (io/events.py): (interface
    dict with its "drops", {public key hex: dict}), or None when it does not answer it (not a
    wgedge daemon: wireguard-go, say)."""
    try:
        lines = control_client.request(ifname, STATUS_OP, timeout=2.0)
    except control_client.ControlClientError:
        return None
    iface, peers, cur = {"drops": {}}, {}, None
    for line in lines:
        key, _, value = line.partition("=")
        if key == "public_key":
            cur = peers[value] = {}
        elif cur is not None:
            cur[key] = value
        elif key == "drop":
            reason, _, count = value.rpartition(":")
            iface["drops"][reason] = int(count)
        else:
            iface[key] = value
    return iface, peers


def _failure(record, now_wall):
    """A last handshake failure as status shows it, from the daemon's lines, or None."""
    if not record or "last_failure_time" not in record:
        return None
    when = float(record["last_failure_time"])
    reason = record.get("last_failure_reason", "")
    f = {"time": when, "seconds_ago": max(0, int(now_wall - when)), "reason": reason,
         "text": FAILURE_TEXT.get(reason, (0, reason))[1]}
    if "last_failure_peer" in record:
        f["peer"] = record["last_failure_peer"] or None
        f["endpoint"] = record.get("last_failure_endpoint") or None
    return f


def _configured(ifname):
    """(config path, its InterfaceConfig or None) of what `up` started, from the state file:
    descriptions and endpoint host names live only in the file. A file that no longer loads
    gives None: status then shows what runs without them."""
    path = (read_state(ifname) or {}).get("config")
    if not path:
        return None, None
    try:
        loaded = model.load(path)
    except Exception:  # noqa: BLE001 - status shows what it can
        return path, None
    for iface in loaded.interfaces:
        if iface.name == ifname:
            return path, iface
    return path, None


def _shown(text):
    """A description, unless it could be a pasted key (the rule in config/uci.py)."""
    return text if text and not model.key_like(text) else None


def status(ifname=None, now_wall=None):
    """What runs, interface by interface (all that run, or only `ifname`): the fields that
    docs/status.md lists. Raises ManageError when `ifname` is given and does not run."""
    now_wall = now_wall or time.time()
    names = running_interfaces()
    if ifname is not None:
        if ifname not in names and not os.path.exists(socket_path(ifname)):
            raise ManageError("%s is not running" % ifname)
        names = [ifname]
    return [_interface_status(name, now_wall) for name in names]


def _interface_status(ifname, now_wall):
    config_path, conf = _configured(ifname)
    entry = {"interface": ifname, "daemon_pid": read_pid(pid_path(ifname)),
             "watchdog_pid": read_pid(watchdog_pid_path(ifname)), "config": config_path,
             "peers": []}
    try:
        iface, peers = control_client.get(ifname, timeout=2.0)
    except control_client.ControlClientError as exc:
        entry["error"] = str(exc)
        return entry
    extended = _extended_status(ifname)
    ext_iface, ext_peers = extended if extended is not None else ({}, {})
    entry["listen_port"] = int(iface.get("listen_port", 0))
    entry["fwmark"] = int(iface.get("fwmark", 0))
    entry["public_key"] = None
    if "private_key" in iface:
        from wgedge.crypto import load as load_crypto

        pub = load_crypto().x25519_public(bytes.fromhex(iface["private_key"]))
        entry["public_key"] = model.encode_key(pub)
    entry["drops"] = ext_iface.get("drops") if extended is not None else None
    entry["last_handshake_failure"] = _failure(ext_iface, now_wall)
    configured = {p.public_key.hex(): p for p in (conf.peers if conf else [])
                  if p.public_key is not None}
    for p in peers:
        hs = int(p.get("last_handshake_time_sec", "0"))
        age = None if hs == 0 else max(0, int(now_wall - hs))
        if age is None:
            health = "never"
        elif age < 180:
            health = "ok"
        else:
            health = "stale"
        pc = configured.get(p["public_key"])
        host = pc.endpoint_host if pc is not None else None
        ext = ext_peers.get(p["public_key"], {})
        entry["peers"].append({
            "public_key": model.encode_key(bytes.fromhex(p["public_key"])),
            "description": _shown(pc.description) if pc is not None else None,
            "endpoint": p.get("endpoint"),
            "endpoint_host": host if host and not is_literal(host) else None,
            "latest_handshake": hs or None, "latest_handshake_seconds_ago": age,
            "rx_bytes": int(p.get("rx_bytes", 0)), "tx_bytes": int(p.get("tx_bytes", 0)),
            "allowed_ips": p["allowed_ip"],
            "persistent_keepalive": int(p.get("persistent_keepalive_interval", 0)),
            "health": health,
            "handshake_failures": int(ext.get("handshake_failures", 0)),
            "last_handshake_failure": _failure(ext, now_wall)})
    return entry
