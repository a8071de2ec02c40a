"""What `wgedge status` reports (docs/status.md): for each running interface, what its daemon
answers on the control socket (`get=1`, and `wgedge-status=1` where it is wgedge's), joined
with what its state file and config file say (descriptions, endpoint host names).

Rules: status only reads (never a signal, never a file written); an interface run by
another program (wireguard-go) is shown from `get=1` alone; key material never appears,
only public keys in base64.
"""

import os
import time

from wgedge.config import loader, schema, uci
from wgedge.io.control import socket_path
from wgedge.io.events import FAILURE_TEXT, STATUS_OP
from wgedge.router import control_client
from wgedge.router.endpoints import is_literal
from wgedge.router.manage import ManageError
from wgedge.router.runfiles import pid_path, read_state, running_interfaces, watchdog_pid_path
from wgedge.router.runlock import live_pid as read_pid


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
        loaded = loader.load(path)
    except Exception:  # noqa: BLE001 - status shows what it can
        return path, None
    for iface in loaded.interfaces:
        if iface.name == ifname:
            return path, iface
    return path, None


def _shown(text):
    """A description, unless it could be a pasted key (the rule in config/uci.py)."""
    return text if text and not uci.key_like(text) else None


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
        entry["public_key"] = schema.encode_key(pub)
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
            "public_key": schema.encode_key(bytes.fromhex(p["public_key"])),
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
