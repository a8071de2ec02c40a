"""How `wgedge status` shows what status.status() gathered: text for people (units and ages as
`wg show` writes them), and the Prometheus text exposition format for monitoring.

Nothing here reads anything: it formats the list of dicts that status.status() returns, whose
fields docs/status.md describes one by one. No key material reaches it but public keys.
"""

_UNITS = ("KiB", "MiB", "GiB", "TiB")
_PERIODS = (("year", 365 * 24 * 3600), ("day", 24 * 3600), ("hour", 3600), ("minute", 60),
            ("second", 1))


def human_bytes(n):
    """'512 B', '1.50 KiB', '3.20 GiB' (as `wg show`)."""
    if n < 1024:
        return "%d B" % n
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return "%.2f %s" % (value, unit)
    return "%d B" % n  # not reached


def human_duration(seconds):
    """'1 minute, 3 seconds' (as `wg show`); 'less than a second' for 0."""
    seconds = int(seconds)
    parts = []
    for name, size in _PERIODS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append("%d %s%s" % (count, name, "" if count == 1 else "s"))
    return ", ".join(parts) or "less than a second"


def human_ago(seconds):
    return "just now" if seconds is not None and int(seconds) == 0 else \
        human_duration(seconds) + " ago"


# --- text ------------------------------------------------------------------------------------
def _failure_text(f, with_peer):
    what = "%s: %s [%s]" % (human_ago(f["seconds_ago"]), f["text"], f["reason"])
    if with_peer and f.get("peer"):
        what += ", peer %s" % f["peer"]
    if f.get("endpoint"):
        what += ", from %s" % f["endpoint"]
    return what


def _daemon_text(i):
    if i["daemon_pid"] is None:
        daemon = "no pid file: not started by wgedge" if not i["config"] else "not running"
    else:
        daemon = "pid %d" % i["daemon_pid"]
    if i["watchdog_pid"] is not None:
        daemon += ", under the watchdog (pid %d)" % i["watchdog_pid"]
    return daemon


def text(info):
    """The human view: one block per interface, its peers below it."""
    if not info:
        return "no wgedge interfaces are running\n"
    lines = []
    for i in info:
        if lines:
            lines.append("")
        lines.append("interface: %s" % i["interface"])
        lines.append("  daemon: %s" % _daemon_text(i))
        if i.get("config"):
            lines.append("  config: %s" % i["config"])
        if "error" in i:
            lines.append("  error: %s" % i["error"])
            continue
        lines.append("  public key: %s" % (i.get("public_key") or "(none)"))
        lines.append("  listening port: %d" % i["listen_port"])
        if i["fwmark"]:
            lines.append("  fwmark: 0x%x" % i["fwmark"])
        if i.get("last_handshake_failure"):
            lines.append("  last handshake failure: %s"
                         % _failure_text(i["last_handshake_failure"], True))
        if i.get("drops"):
            lines.append("  dropped: %s" % ", ".join(
                "%s %d" % item for item in sorted(i["drops"].items())))
        for p in i["peers"]:
            lines.append("")
            head = "  peer: %s" % p["public_key"]
            if p.get("description"):
                head += " (%s)" % p["description"]
            lines.append("%s  [%s]" % (head, p["health"]))
            endpoint = p["endpoint"] or "(none)"
            if p.get("endpoint_host"):
                endpoint += " (from %s)" % p["endpoint_host"]
            lines.append("    endpoint: %s" % endpoint)
            lines.append("    allowed ips: %s" % (", ".join(p["allowed_ips"]) or "(none)"))
            age = p["latest_handshake_seconds_ago"]
            lines.append("    latest handshake: %s" % ("never" if age is None else human_ago(age)))
            lines.append("    transfer: %s received, %s sent" % (
                human_bytes(p["rx_bytes"]), human_bytes(p["tx_bytes"])))
            if p["persistent_keepalive"]:
                lines.append("    persistent keepalive: every %s"
                             % human_duration(p["persistent_keepalive"]))
            if p.get("last_handshake_failure"):
                f = p["last_handshake_failure"]
                lines.append("    last handshake failure: %s (%d since the daemon started)"
                             % (_failure_text(f, False), p["handshake_failures"]))
    return "\n".join(lines) + "\n"


# --- Prometheus text exposition format (version 0.0.4) ----------------------------------------
def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs):
    return "{%s}" % ",".join('%s="%s"' % (k, _escape(v)) for k, v in pairs)


# name -> (type, help). Families appear in this order, each with its samples together.
METRICS = (
    ("wgedge_up", "gauge", "1 when the interface's daemon answered on its control socket, "
     "else 0."),
    ("wgedge_listen_port", "gauge", "UDP port the interface listens on."),
    ("wgedge_peers", "gauge", "Peers configured on the interface."),
    ("wgedge_dropped_total", "counter", "Datagrams and packets the engine refused, by reason, "
     "since the daemon started."),
    ("wgedge_last_handshake_failure_seconds", "gauge", "Unix time of the interface's last "
     "refused or failed handshake (0: none since the daemon started)."),
    ("wgedge_peer_info", "gauge", "Always 1; labels: the peer's description and endpoint host "
     "name from the configuration."),
    ("wgedge_peer_receive_bytes_total", "counter", "Bytes received from the peer (whole "
     "WireGuard datagrams)."),
    ("wgedge_peer_transmit_bytes_total", "counter", "Bytes sent to the peer (whole WireGuard "
     "datagrams)."),
    ("wgedge_peer_latest_handshake_seconds", "gauge", "Unix time of the peer's latest "
     "handshake (0: never)."),
    ("wgedge_peer_handshake_failures_total", "counter", "Handshakes with the peer that failed "
     "or were refused, since the daemon started."),
    ("wgedge_peer_persistent_keepalive_seconds", "gauge", "Persistent keepalive interval "
     "(0: off)."),
)


def _samples(info):
    """-> {metric name: [(labels, value)]}"""
    s = {name: [] for name, _, _ in METRICS}
    for i in info:
        ifl = [("interface", i["interface"])]
        up = "error" not in i
        s["wgedge_up"].append((ifl, 1 if up else 0))
        if not up:
            continue
        s["wgedge_listen_port"].append((ifl, i["listen_port"]))
        s["wgedge_peers"].append((ifl, len(i["peers"])))
        for reason, count in sorted((i.get("drops") or {}).items()):
            s["wgedge_dropped_total"].append((ifl + [("reason", reason)], count))
        if i.get("drops") is not None:
            last = i.get("last_handshake_failure")
            s["wgedge_last_handshake_failure_seconds"].append(
                (ifl, last["time"] if last else 0))
        for p in i["peers"]:
            pl = ifl + [("peer", p["public_key"])]
            s["wgedge_peer_info"].append((pl + [("description", p.get("description") or ""),
                                                ("endpoint_host", p.get("endpoint_host") or "")],
                                          1))
            s["wgedge_peer_receive_bytes_total"].append((pl, p["rx_bytes"]))
            s["wgedge_peer_transmit_bytes_total"].append((pl, p["tx_bytes"]))
            s["wgedge_peer_latest_handshake_seconds"].append((pl, p["latest_handshake"] or 0))
            if i.get("drops") is not None:
                s["wgedge_peer_handshake_failures_total"].append((pl, p["handshake_failures"]))
            s["wgedge_peer_persistent_keepalive_seconds"].append((pl, p["persistent_keepalive"]))
    return s


def _number(v):
    if isinstance(v, float):
        return repr(v)
    return "%d" % v


def prometheus(info):
    """The Prometheus text exposition format: HELP and TYPE before each family's samples."""
    samples = _samples(info)
    out = []
    for name, kind, help_text in METRICS:
        if not samples[name]:
            continue
        out.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\")))
        out.append("# TYPE %s %s" % (name, kind))
        for labels, value in samples[name]:
            out.append("%s%s %s" % (name, _labels(labels), _number(value)))
    return "\n".join(out) + "\n" if out else ""
