"""Configure one interface all or nothing, and take back what configuring made: the two
steps `up`, `reload` and the watchdog share (wgedge/router/lifecycle.py runs the commands).

The interface daemon is configured only through its control socket, with the same text
protocol `wg` speaks; addresses and routes go through netsetup (pyroute2, imported only
where a step needs it). What `configure` did is recorded in /var/run/wgedge/IFNAME.state.json
(wgedge/router/runfiles.py) so `teardown` and a later reload undo or adjust exactly that.

Rules kept here:
- `configure` applies a configuration completely or not at all. The steps that can fail come
  first and are taken back if a later one fails: network additions (netsetup.apply), the
  state file written aside, then the WireGuard settings in one `set` request (the daemon
  validates and applies a request whole); only then are unwanted addresses and routes removed
  and the state file moved into place. A failure raises ManageError, and the daemon, the link
  and the state file are as they were.
- One configurator at a time: `configure` holds a flock on /var/run/wgedge itself.
- `teardown` is the one way back, for `down` and for a watchdog that stops: the addresses,
  routes and link the state file records, then the interface's files, and its control socket
  only when nothing answers on it (a live one belongs to another program, e.g. wireguard-go).
"""

import contextlib
import fcntl
import os
import signal
import time

from wgedge.core.endpoint import split_endpoint
from wgedge.core.ipaddr import format_cidr
from wgedge.core.uapi import EADDRINUSE, key_to_hex
from wgedge.router import control_client
from wgedge.router.endpoints import endpoint_text
from wgedge.router.runfiles import (
    RUN_DIR,
    read_state,
    remove_files,
    state_path,
    write_aside,
    write_state,
)


class ManageError(Exception):
    pass


CONFIG_LOCK_WAIT = 60.0  # seconds configure waits for another configurator


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
    ips = [split_endpoint(e)[0] for e in endpoints.values() if e]
    from wgedge.router import netsetup  # pyroute2: only where the network changes

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
        staged = None
        try:
            staged = write_aside(path, {"config": os.path.abspath(iface.path),
                                         "net": change.state})
            if text:
                control_client.request(iface.name, text)
        except (OSError, control_client.ControlClientError) as exc:
            if staged is not None:
                staged.discard()
            left = change.rollback()
            if left != dict(netsetup.EMPTY, **(previous or {})):
                _keep_record(iface.name, previous_state or {"config": os.path.abspath(iface.path)},
                             left)
            if isinstance(exc, control_client.ControlClientError):
                raise ManageError(_refusal_text(iface, exc)) from None
            raise ManageError("cannot write %s: %s" % (path, exc.strerror or exc)) from None
        net = change.commit()
        try:
            staged.commit()  # a rename within one directory: nothing left to refuse it
        except OSError as exc:
            staged.discard()
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


# --- reload through the watchdog -------------------------------------------------------------


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


def teardown(ifname, daemon_pid=None, link=True):
    """Take back what running `ifname` made (the rule at the top of this file). With `link`,
    the addresses, routes and the link itself (deleting the link ends a daemon that has no
    watchdog), then `daemon_pid` is given 5 s to exit before SIGKILL; without, only the host
    routes `up` added on other links: a crashed run's link went with its daemon, and a link
    of that name now is someone else's. Never raises: it is the way out."""
    net = (read_state(ifname) or {}).get("net", {})
    if not link:
        net = {"host_routes": net.get("host_routes", [])}
    if link or net["host_routes"]:
        try:
            from wgedge.router import netsetup

            netsetup.undo(ifname, net, link=link)
        except Exception:  # noqa: BLE001 - tearing down: go on with the rest
            pass
    if daemon_pid is not None and not wait_exit(daemon_pid, 5):
        try:
            os.kill(daemon_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_exit(daemon_pid, 5)
    remove_files(ifname)
