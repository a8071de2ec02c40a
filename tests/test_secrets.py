"""Private keys never leave: not in logs, status output or error messages; runtime files are
root-only; a config file or key file with keys readable by others is warned about.

Canaries (key-shaped text) are put in every slot of a UCI and a wg-quick file, one at a time
and all at once: `wgedge check` never repeats them.
"""

import base64
import json
import os
import signal
import socket
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh
from tests.sitelab import SiteLab


def forms(b64key):
    raw = base64.b64decode(b64key)
    return [b64key, raw.hex(), b64key[:20], raw.hex()[:24]]


@pytest.mark.root
def test_keys_not_in_log_status_or_files(nets, tmp_path):
    ns = nets.ns("s")
    ifname = "wgs" + nets.tag[:4]
    log = tmp_path / "daemon.log"
    env = dict(os.environ, PYTHONPATH=ROOT)
    sh(sys.executable, "-m", "wgedge", "-v", "--log", str(log), ifname, ns=ns, env=env)
    nets.ifnames.append((ns, ifname, "wgedge"))
    priv, _ = genkey()
    psk = sh("wg", "genpsk").stdout.strip()
    key = tmp_path / "k"
    key.write_text(priv + "\n")
    pskf = tmp_path / "p"
    pskf.write_text(psk + "\n")
    _, peer_pub = genkey()
    sh("wg", "set", ifname, "private-key", str(key), "peer", peer_pub, "preshared-key",
       str(pskf), "allowed-ips", "10.5.0.2/32", "endpoint", "127.0.0.1:9", ns=ns)
    # A malformed line carrying (a corrupted copy of) the key: the refusal is logged, the
    # key is not.
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect("/var/run/wireguard/%s.sock" % ifname)
    c.sendall(("set=1\nprivate_key=%sz\n\n" % base64.b64decode(priv).hex()[:-1]).encode())
    assert c.recv(100) == b"errno=-22\n\n"
    c.close()
    sh("ping", "-c", "1", "-W", "1", "10.5.0.2", ns=ns, check=False)
    status = sh(sys.executable, "-m", "wgedge", "status", ns=ns, env=env).stdout
    as_json = sh(sys.executable, "-m", "wgedge", "status", "--json", ns=ns, env=env).stdout
    assert any(i["interface"] == ifname for i in json.loads(as_json))
    status += as_json
    text = log.read_text()
    assert "control: refused set" in text  # the log is really being written
    for secret in forms(priv) + forms(psk):
        assert secret not in text, "secret in the daemon log"
        assert secret not in status, "secret in wgedge status"
    for path in ("/var/run/wireguard/%s.sock" % ifname, "/var/run/wgedge/%s.pid" % ifname):
        assert os.stat(path).st_mode & 0o077 == 0, path
    assert os.stat("/var/run/wgedge").st_mode & 0o077 == 0


@pytest.mark.root
def test_config_errors_do_not_echo_keys_and_loose_modes_warned(tmp_path):
    priv, _ = genkey()
    bad = priv[:-3] + "!!="  # a key with a typo: the message must not repeat it
    conf = tmp_path / "wgedge"
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key '%s'\n" % bad)
    conf.chmod(0o644)
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = sh(sys.executable, "-m", "wgedge", "check", str(conf), env=env, check=False)
    assert res.returncode == 1 and "private_key" in res.stderr
    assert bad[:20] not in res.stderr and priv[:20] not in res.stderr
    conf.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                    "\toption private_key '%s'\n" % priv)
    res = sh(sys.executable, "-m", "wgedge", "check", str(conf), env=env)
    assert "readable by group or others" in res.stderr and priv[:20] not in res.stderr
    conf.chmod(0o600)
    res = sh(sys.executable, "-m", "wgedge", "check", str(conf), env=env)
    assert "readable" not in res.stderr


@pytest.mark.root
def test_sigkill_of_watchdog_and_daemon_then_down_cleans_and_up_works():
    lab = SiteLab().build()
    try:
        lab.up("a")
        lab.up("b")
        lab.ping("a", "192.168.20.2")
        for name in ("wgsitea.watchdog.pid", "wgsitea.pid"):
            with open("/var/run/wgedge/" + name) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        time.sleep(0.5)
        lab.wgedge("a", "down", "wgsitea")
        assert "wgsitea" not in sh("ip", "link", ns=lab.router["a"]).stdout
        assert "192.168.20.0/24" not in sh("ip", "route", ns=lab.router["a"]).stdout
        for path in ("/var/run/wireguard/wgsitea.sock", "/var/run/wgedge/wgsitea.pid",
                     "/var/run/wgedge/wgsitea.watchdog.pid",
                     "/var/run/wgedge/wgsitea.state.json"):
            assert not os.path.exists(path), path
        lab.up("a")
        deadline = time.time() + 10
        while lab.ping("a", "192.168.20.2", count=1, check=False).returncode:
            assert time.time() < deadline, "link not back after down + up"
    finally:
        lab.close()


# --- canaries: a key pasted into the wrong place ------------------------------------------------
# A real-looking key (44 base64 characters, canonical), a distinctive base64 blob of another
# length (a truncated or typo'd key), one of letters and digits only (it passes every name
# check: section names, option names, host names), and a key in the hex form `wg` sends over
# the control socket. None of them, nor any CANARY_WINDOW characters of one, may come back.
KEY_CANARY = "L62+p7VeRVaDnGAVWBPjWDURWGgHXQsTYRfpkFhdM2E="
BLOB_CANARY = "YlV/h4ufGOe0egtiUhAUYIXZJYVv"
ALNUM_CANARY = "CanaryQz7Wk2Pq9Xv4Lm"
HEX_CANARY = base64.b64decode(KEY_CANARY).hex()
CANARIES = (KEY_CANARY, BLOB_CANARY, ALNUM_CANARY, HEX_CANARY)
CANARY_WINDOW = 12


def assert_no_secret(text, secrets, where):
    """No CANARY_WINDOW-character piece of any secret appears in `text`."""
    for secret in secrets:
        for i in range(len(secret) - CANARY_WINDOW + 1):
            piece = secret[i:i + CANARY_WINDOW]
            assert piece not in text, "%s: %r (part of a secret) in:\n%s" % (where, piece, text)


# Real keys for the templates (fixed, so the tests need no `wg`).
PRIV = "eA1XK/7RzOp6v8x6L4i4pDZ0cWbqvV3sJ5aT3r0uB3A="
PUB = "og3EZhpFsYGbfYYD0LNPS7PkHNcoB7L35p4UqW+2pSo="
PUB2 = "s+ZbzW6e6IDm1tMR4oW8Td8P6qiCajljerCD/c3Ty0Y="
PSK = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
REAL_SECRETS = (PRIV, PSK, base64.b64decode(PRIV).hex(), base64.b64decode(PSK).hex())

# Every option of the schema, as statements (keyword, words...): each word is a slot a canary
# is put into. The interface wg1 takes its key from a file, peer p2 its preshared key.
UCI_STATEMENTS = [
    ("config", "interface", "wg0"),
    ("option", "proto", "wireguard"),
    ("option", "private_key", PRIV),
    ("option", "listen_port", "51820"),
    ("list", "addresses", "10.9.0.1/24"),
    ("list", "addresses", "fd09::1/64"),
    ("option", "mtu", "1420"),
    ("option", "fwmark", "0x10"),
    ("option", "nohostroute", "0"),
    ("option", "auto", "1"),
    ("option", "disabled", "0"),
    ("option", "zone", "lan"),
    ("config", "wireguard_wg0", "p1"),
    ("option", "description", "laptop"),
    ("option", "public_key", PUB),
    ("option", "preshared_key", PSK),
    ("list", "allowed_ips", "10.9.0.2/32"),
    ("option", "route_allowed_ips", "1"),
    ("option", "endpoint_host", "peer.example.net"),
    ("option", "endpoint_port", "51821"),
    ("option", "persistent_keepalive", "25"),
    ("option", "disabled", "0"),
    ("config", "interface", "wg1"),
    ("option", "proto", "wireguard"),
    ("option", "private_key_file", "wg1.key"),
    ("option", "addresses", "10.8.0.1/24 fd08::1/64"),
    ("config", "wireguard_wg1", "p2"),
    ("option", "public_key", PUB2),
    ("option", "preshared_key_file", "p2.psk"),
    ("option", "allowed_ips", "10.8.0.2/32 fd08::2/128"),
    ("option", "endpoint_host", "10.0.0.2"),
    ("config", "wgedge", "settings"),
    ("option", "check_interval", "10"),
    ("option", "stale_handshake", "150"),
    ("option", "watchdog_interval", "10"),
    ("option", "watchdog_device", "/dev/watchdog"),
]


def render_uci(statements):
    lines = []
    for words in statements:
        indent = "" if words[0] == "config" else "\t"
        lines.append(indent + words[0] + "".join(" '%s'" % w for w in words[1:]))
    return "\n".join(lines) + "\n"


def section_line(statements, index):
    """The line of the `config` statement that `statements[index]` belongs to."""
    while statements[index][0] != "config":
        index -= 1
    return index + 1


def with_canary(statements, index, slot, canary, appended):
    out = [list(w) for w in statements]
    out[index][slot] = out[index][slot] + " " + canary if appended else canary
    return out


def write_key_files(directory):
    for name, key in (("wg1.key", PRIV), ("p2.psk", PSK)):
        path = directory / name
        path.write_text(key + "\n")
        path.chmod(0o600)


def check(path, capsys):
    """`wgedge check PATH` in this process: exit code, stdout + stderr."""
    from wgedge import cli

    code = cli.main(["check", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_uci_template_is_valid(tmp_path, capsys):
    write_key_files(tmp_path)
    conf = tmp_path / "wgedge"
    conf.write_text(render_uci(UCI_STATEMENTS))
    conf.chmod(0o600)
    code, out = check(conf, capsys)
    assert code == 0 and "OK (wireguard interfaces: wg0, wg1)" in out, out
    assert_no_secret(out, REAL_SECRETS, "check of a valid file")


@pytest.mark.parametrize("canary", CANARIES, ids=["key", "blob", "alnum", "hex"])
def test_canary_in_every_uci_slot_never_echoed(tmp_path, capsys, canary):
    """One slot at a time (keyword, section type and name, option name, value, list value),
    the canary replacing the word or added to it: `wgedge check` never repeats it, and a
    refusal still names the file and the line (of the option or of its section)."""
    write_key_files(tmp_path)
    conf = tmp_path / "wgedge"
    tried = 0
    for index, words in enumerate(UCI_STATEMENTS):
        for slot in range(len(words)):
            for appended in (False, True):
                if appended and slot == 0:
                    continue
                statements = with_canary(UCI_STATEMENTS, index, slot, canary, appended)
                conf.write_text(render_uci(statements))
                conf.chmod(0o600)
                code, out = check(conf, capsys)
                where = "line %d %r slot %d%s" % (index + 1, words, slot,
                                                  " (appended)" if appended else "")
                assert_no_secret(out, (canary,) + REAL_SECRETS, where)
                assert "Traceback" not in out, where
                if code:
                    lines = (index + 1, section_line(statements, index))
                    assert any("%s:%d:" % (conf, n) in out for n in lines), (where, out)
                    if slot == 2 and words[0] != "config" and words[1] != "proto":
                        assert "option '%s'" % words[1] in out, (where, out)
                tried += 1
    assert tried > 100


@pytest.mark.parametrize("canary", CANARIES, ids=["key", "blob", "alnum", "hex"])
def test_canary_in_every_uci_slot_at_once(tmp_path, canary):
    """Every word of the file is the canary: the real command, stdout and stderr."""
    statements = [[words[0]] + [canary] * (len(words) - 1) for words in UCI_STATEMENTS]
    statements += [[canary, canary, canary]]
    conf = tmp_path / "wgedge"
    conf.write_text(render_uci(statements))
    conf.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = sh(sys.executable, "-m", "wgedge", "check", str(conf), env=env, check=False)
    assert res.returncode == 1 and "%s:1:" % conf in res.stderr, res.stderr
    assert_no_secret(res.stdout + res.stderr, (canary,), "every slot")
    assert "Traceback" not in res.stderr


WGQUICK_LINES = [
    "[Interface]",
    "PrivateKey = " + PRIV,
    "Address = 10.9.0.1/24, fd09::1/64",
    "ListenPort = 51820",
    "MTU = 1420",
    "FwMark = 0x10",
    "DNS = 10.9.0.53",
    "Table = off",
    "PostUp = true",
    "SaveConfig = false",
    "[Peer]",
    "PublicKey = " + PUB,
    "PresharedKey = " + PSK,
    "AllowedIPs = 10.9.0.2/32, fd09::2/128",
    "Endpoint = peer.example.net:51821",
    "PersistentKeepalive = 25",
    "[Peer]",
    "PublicKey = " + PUB2,
    "AllowedIPs = 10.9.0.3/32",
    "Endpoint = [fd00::3]:51822",
]


def wgquick_variants(canary):
    """(line index, description, lines) with the canary in one place: a section's name, a
    key, a value, each item of a comma list (replacing or added), or a line of its own."""
    for i, line in enumerate(WGQUICK_LINES):
        out = list(WGQUICK_LINES)
        if line.startswith("["):
            for text in (canary, line[1:-1] + canary, line[1:-1] + " " + canary):
                yield i, "section", out[:i] + ["[%s]" % text] + out[i + 1:]
        else:
            key, value = line.split(" = ", 1)
            yield i, "key", out[:i] + ["%s = %s" % (canary, value)] + out[i + 1:]
            yield i, "key+", out[:i] + ["%s%s = %s" % (key, canary, value)] + out[i + 1:]
            items = value.split(", ")
            for n in range(len(items)):
                for text in (canary, items[n] + canary, items[n] + " " + canary):
                    changed = items[:n] + [text] + items[n + 1:]
                    yield i, "item %d" % n, out[:i] + ["%s = %s" % (key, ", ".join(changed))] \
                        + out[i + 1:]
            yield i, "item +", out[:i] + ["%s = %s, %s" % (key, value, canary)] + out[i + 1:]
        yield i, "own line", out[:i + 1] + [canary] + out[i + 1:]
        yield i, "own line =", out[:i + 1] + [canary + " = 1"] + out[i + 1:]


@pytest.mark.parametrize("canary", CANARIES, ids=["key", "blob", "alnum", "hex"])
def test_canary_in_every_wgquick_slot_never_echoed(tmp_path, capsys, canary):
    conf = tmp_path / "wg0.conf"
    conf.write_text("\n".join(WGQUICK_LINES) + "\n")
    conf.chmod(0o600)
    code, out = check(conf, capsys)
    assert code == 0, out
    tried = 0
    for index, what, lines in wgquick_variants(canary):
        conf.write_text("\n".join(lines) + "\n")
        code, out = check(conf, capsys)
        where = "%s at line %d: %r" % (what, index + 1, WGQUICK_LINES[index])
        assert_no_secret(out, (canary,) + REAL_SECRETS, where)
        assert "Traceback" not in out, where
        if code and what != "own line" and what != "own line =":
            assert "%s:%d:" % (conf, index + 1) in out, (where, out)
        tried += 1
    # every slot at once
    conf.write_text("[Interface]\n%s = %s, %s\n[%s]\n%s = %s\n%s\n" % ((canary,) * 7))
    code, out = check(conf, capsys)
    assert code == 1
    assert_no_secret(out, (canary,), "every slot")
    assert tried > 100


def test_key_files_readable_by_others_are_warned_about(tmp_path, capsys):
    write_key_files(tmp_path)
    conf = tmp_path / "wgedge"
    conf.write_text(render_uci(UCI_STATEMENTS))
    conf.chmod(0o600)
    code, out = check(conf, capsys)
    assert code == 0 and "readable by group" not in out, out
    key_line = UCI_STATEMENTS.index(("option", "private_key_file", "wg1.key")) + 1
    psk_line = UCI_STATEMENTS.index(("option", "preshared_key_file", "p2.psk")) + 1
    for mode in (0o640, 0o604, 0o644):
        (tmp_path / "wg1.key").chmod(mode)
        code, out = check(conf, capsys)
        assert code == 0, out
        assert ("%s:%d: option 'private_key_file': " % (conf, key_line)) in out, out
        assert "readable by group or others" in out and "%o" % mode in out, out
        assert "preshared_key_file" not in out, out
    (tmp_path / "wg1.key").chmod(0o600)
    (tmp_path / "p2.psk").chmod(0o644)
    code, out = check(conf, capsys)
    assert ("%s:%d: option 'preshared_key_file': " % (conf, psk_line)) in out, out
    assert "private_key_file" not in out, out
    assert_no_secret(out, REAL_SECRETS, "warnings")
