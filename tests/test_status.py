"""`wgedge status`: its fields, units, filter by name, --json as documented in docs/status.md
and --prometheus as the Prometheus text format reads it (prometheus_client's parser)."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.netns import ROOT, genkey, sh
from tests.private_run import PrivateRun
from wgedge.router import statusview as V


@pytest.mark.parametrize("n,text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.00 KiB"),
                                    (1536, "1.50 KiB"), (5 << 20, "5.00 MiB"),
                                    (int(2.25 * (1 << 30)), "2.25 GiB"), (3 << 40, "3.00 TiB"),
                                    (5 << 50, "5120.00 TiB")])
def test_bytes_in_human_units(n, text):
    assert V.human_bytes(n) == text


@pytest.mark.parametrize("seconds,text", [
    (0, "just now"), (1, "1 second ago"), (63, "1 minute, 3 seconds ago"),
    (3600, "1 hour ago"), (2 * 86400 + 3 * 3600 + 61, "2 days, 3 hours, 1 minute, 1 second ago"),
    (366 * 86400, "1 year, 1 day ago")])
def test_ages_as_wg_writes_them(seconds, text):
    assert V.human_ago(seconds) == text


def _synthetic():
    peer = {"public_key": "A" * 43 + "=", "description": 'say "hi"\\ there\n',
            "endpoint": "192.0.2.7:51820", "endpoint_host": "vpn.example.org",
            "latest_handshake": 1700000000, "latest_handshake_seconds_ago": 63,
            "rx_bytes": 1536, "tx_bytes": 3 << 20, "allowed_ips": ["10.0.0.2/32"],
            "persistent_keepalive": 25, "health": "ok", "handshake_failures": 2,
            "last_handshake_failure": {"time": 1699999990.5, "seconds_ago": 73,
                                       "reason": "bad-handshake", "text": "decryption failed"}}
    return [{"interface": "wg0", "daemon_pid": 12, "watchdog_pid": None, "config": "/c",
             "peers": [peer], "listen_port": 51820, "fwmark": 0x42,
             "public_key": "B" * 43 + "=", "drops": {"unknown-peer": 3, "decrypt-failed": 1},
             "last_handshake_failure": None},
            {"interface": "wg1", "daemon_pid": None, "watchdog_pid": None, "config": None,
             "peers": [], "error": "control socket: refused"}]


def test_text_view_of_synthetic_status():
    out = V.text(_synthetic())
    for want in ("interface: wg0\n", "daemon: pid 12\n", "fwmark: 0x42\n",
                 "transfer: 1.50 KiB received, 3.00 MiB sent",
                 "latest handshake: 1 minute, 3 seconds ago",
                 "endpoint: 192.0.2.7:51820 (from vpn.example.org)",
                 "persistent keepalive: every 25 seconds",
                 "last handshake failure: 1 minute, 13 seconds ago: decryption failed "
                 "[bad-handshake] (2 since the daemon started)",
                 "dropped: decrypt-failed 1, unknown-peer 3",
                 "interface: wg1\n  daemon: no pid file: not started by wgedge\n"):
        assert want in out, out
    assert "None" not in out


def prometheus_families(text):
    """Parse with prometheus_client, which refuses what the text format does not allow;
    -> {family name: {(sample name, labels as sorted tuple): value}}."""
    fams = {}
    for fam in text_string_to_metric_families(text):
        got = fams.setdefault(fam.name, {})
        for s in fam.samples:
            got[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return fams


def test_prometheus_text_parses_and_escapes_labels():
    text = V.prometheus(_synthetic())
    fams = prometheus_families(text)
    peer = (("interface", "wg0"), ("peer", "A" * 43 + "="))
    assert fams["wgedge_peer_receive_bytes"][("wgedge_peer_receive_bytes_total", peer)] == 1536
    info = fams["wgedge_peer_info"]
    (name, labels), = info
    assert dict(labels)["description"] == 'say "hi"\\ there\n'
    assert fams["wgedge_up"] == {("wgedge_up", (("interface", "wg0"),)): 1,
                                 ("wgedge_up", (("interface", "wg1"),)): 0}
    assert fams["wgedge_dropped"][("wgedge_dropped_total", (("interface", "wg0"),
                                                            ("reason", "unknown-peer")))] == 3
    # every family: HELP then TYPE then its samples, names wgedge_*, counters end in _total
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert all(n.startswith("wgedge_") for n in types)
    assert all(n.endswith("_total") == (t == "counter") for n, t in types.items())


# --- in a namespace: a real interface under wgedge up, and one more beside it (root) ------------
def _initiations(ns, pub, port, count, private=None, copies=1):
    args = [pub, "127.0.0.1", str(port), str(count)] + ([private, str(copies)] if private else [])
    env = dict(os.environ, PYTHONPATH=ROOT)
    return sh(sys.executable, "-m", "tests.initiations", *args, ns=ns, env=env).stdout.strip()


def _documented_fields():
    """The field names docs/status.md lists: `| `name` |` rows of its two tables."""
    with open(os.path.join(ROOT, "docs", "status.md")) as f:
        text = f.read()
    iface = text.split("## Interface fields", 1)[1].split("## Peer fields", 1)[0]
    peer = text.split("## Peer fields", 1)[1].split("\n## ", 1)[0]
    pick = re.compile(r"^\| `([a-z_.]+)` ", re.M)
    return set(pick.findall(iface)), set(pick.findall(peer))


def _fields(record, prefix=""):
    names = set()
    for k, v in record.items():
        if k == "peers":
            continue
        names.add(prefix + k)
        if isinstance(v, dict) and k.startswith("last_handshake_failure"):
            names |= _fields(v, prefix + k + ".")
    return names


@pytest.mark.root
def test_status_of_a_running_interface(nets, tmp_path):
    run = PrivateRun()
    try:
        _status_checks(nets, run, tmp_path)
    finally:
        run.close()


def _status_checks(nets, run, tmp_path):
    ns = nets.ns("s")
    ifa, ifb = "wga" + nets.tag, "wgb" + nets.tag
    priv_a, pub_a = genkey()
    priv_b, pub_b = genkey()
    priv_c, pub_c = genkey()
    conf = tmp_path / "wg.uci"
    conf.write_text(
        "config interface '%s'\n\toption proto 'wireguard'\n\toption private_key '%s'\n"
        "\toption listen_port '40021'\n\toption fwmark '0x42'\n"
        "\tlist addresses '10.99.0.1/24'\n\n"
        "config wireguard_%s 'b'\n\toption public_key '%s'\n\toption description 'office'\n"
        "\toption endpoint_host 'localhost'\n\toption endpoint_port '40022'\n"
        "\toption persistent_keepalive '25'\n\tlist allowed_ips '10.99.0.2/32'\n\n"
        "config wireguard_%s 'c'\n\toption public_key '%s'\n\tlist allowed_ips '10.99.0.3/32'\n"
        % (ifa, priv_a, ifa, pub_b, ifa, pub_c))
    conf.chmod(0o600)
    # b: a plain daemon beside it, configured with wg, that knows a
    run.wgedge(ifb, ns=ns)
    key_b = tmp_path / "kb"
    key_b.write_text(priv_b + "\n")
    run.sh("wg", "set", ifb, "private-key", str(key_b), "listen-port", "40022", "peer", pub_a,
           "allowed-ips", "10.99.0.1/32", ns=ns)
    run.wgedge("up", str(conf), ns=ns)
    deadline = time.time() + 20
    while time.time() < deadline:
        info = json.loads(run.wgedge("status", ifa, "--json", ns=ns).stdout)
        if info[0]["peers"][0]["latest_handshake"]:
            break
        time.sleep(0.2)
    stranger = _initiations(ns, pub_a, 40021, 1)  # unknown-peer
    _initiations(ns, pub_a, 40021, 1, priv_c, copies=2)  # c's, then the same again: a replay
    time.sleep(0.5)

    [a] = json.loads(run.wgedge("status", ifa, "--json", ns=ns).stdout)
    b_peer, c_peer = a["peers"]
    assert a["interface"] == ifa and a["fwmark"] == 0x42 and a["listen_port"] == 40021
    assert a["daemon_pid"] > 0 and a["watchdog_pid"] > 0 and a["public_key"] == pub_a
    assert a["config"] == str(conf)
    assert a["drops"]["unknown-peer"] == 1 and a["drops"]["replayed-timestamp"] == 1
    last = a["last_handshake_failure"]
    assert last["reason"] == "replayed-timestamp" and last["peer"] == pub_c[:8]
    assert last["endpoint"].startswith("127.0.0.1:") and 0 <= last["seconds_ago"] < 60
    assert b_peer["public_key"] == pub_b and b_peer["description"] == "office"
    assert b_peer["endpoint_host"] == "localhost" and b_peer["persistent_keepalive"] == 25
    assert b_peer["latest_handshake"] and b_peer["health"] == "ok", b_peer
    assert b_peer["handshake_failures"] == 0 and b_peer["last_handshake_failure"] is None
    assert c_peer["public_key"] == pub_c and c_peer["handshake_failures"] == 1
    assert c_peer["last_handshake_failure"]["reason"] == "replayed-timestamp"
    assert c_peer["endpoint_host"] is None and c_peer["description"] is None

    # every field documented in docs/status.md, and nothing documented that is not there
    iface_doc, peer_doc = _documented_fields()
    assert _fields(a) | {"error", "last_handshake_failure.peer",
                         "last_handshake_failure.endpoint"} >= iface_doc - {"peers"}
    assert _fields(a) <= iface_doc
    assert _fields(b_peer) | _fields(c_peer) == peer_doc

    text = run.wgedge("status", ifa, ns=ns).stdout
    for want in ("interface: %s\n" % ifa, "daemon: pid %d, under the watchdog (pid %d)"
                 % (a["daemon_pid"], a["watchdog_pid"]), "fwmark: 0x42",
                 "peer: %s (office)  [ok]" % pub_b, "(from localhost)",
                 "persistent keepalive: every 25 seconds", "latest handshake: ",
                 "replayed-timestamp 1", "unknown-peer 1",
                 "last handshake failure: ", "stale or replayed timestamp [replayed-timestamp]"):
        assert want in text, text
    assert ifb not in text and "None" not in text
    for secret in (priv_a, priv_b, priv_c, stranger):
        assert secret not in text
    # a wireguard-go interface beside them: shown from get=1 alone (it refuses wgedge-status=1)
    ifg = "wgg" + nets.tag
    with open(tmp_path / "wireguard-go.log", "w") as log:  # it keeps its stdout: not a pipe
        subprocess.run(run.cmd(["wireguard-go", ifg], ns), stdout=log, stderr=log, timeout=30,
                       check=True, env=dict(os.environ, LOG_LEVEL="error",
                                            WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1"))
    everything = run.wgedge("status", ns=ns).stdout
    assert "interface: %s\n" % ifb in everything and "interface: %s\n" % ifa in everything
    assert "interface: %s\n  daemon: no pid file: not started by wgedge\n" % ifg in everything
    assert "None" not in everything
    [g] = json.loads(run.wgedge("status", ifg, "--json", ns=ns).stdout)
    assert g["drops"] is None and g["daemon_pid"] is None and "error" not in g
    missing = run.wgedge("status", "wgnone" + nets.tag, ns=ns, check=False)
    assert missing.returncode == 1 and "is not running" in missing.stderr

    fams = prometheus_families(run.wgedge("status", "--prometheus", ns=ns).stdout)
    peer_b = (("interface", ifa), ("peer", pub_b))
    rx = fams["wgedge_peer_receive_bytes"][("wgedge_peer_receive_bytes_total", peer_b)]
    assert rx >= b_peer["rx_bytes"] > 0
    assert fams["wgedge_dropped"][("wgedge_dropped_total", (("interface", ifa),
                                                            ("reason", "unknown-peer")))] == 1
    assert fams["wgedge_up"][("wgedge_up", (("interface", ifb),))] == 1
    assert fams["wgedge_peer_handshake_failures"][
        ("wgedge_peer_handshake_failures_total", (("interface", ifa), ("peer", pub_c)))] == 1
    run.wgedge("down", ifa, ns=ns)
