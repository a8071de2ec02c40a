"""Private keys never leave: not in logs, status output or error messages; runtime files are
root-only; a config file or key file with keys readable by others is warned about.

Canaries (key-shaped text) are put in every slot of a UCI and a wg-quick file, one at a time
and all at once: `wgedge check` never repeats them. Two routers under their watchdogs, with
canaries in a valid file and then a broken one, never log or print them, nor their keys.
"""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
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
        ifa = lab.ifname["a"]
        for name in (ifa + ".watchdog.pid", ifa + ".pid"):
            with open("/var/run/wgedge/" + name) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        time.sleep(0.5)
        # Nothing ran it any more: `down NAME` says so (exit 1) and removes the leftovers.
        res = lab.wgedge("a", "down", ifa, check=False)
        assert res.returncode == 1 and "was not running" in res.stderr, (res.stdout, res.stderr)
        assert "removed what its last run left behind" in res.stderr
        assert ifa not in sh("ip", "link", ns=lab.router["a"]).stdout
        assert "192.168.20.0/24" not in sh("ip", "route", ns=lab.router["a"]).stdout
        for path in ("/var/run/wireguard/%s.sock", "/var/run/wgedge/%s.pid",
                     "/var/run/wgedge/%s.watchdog.pid", "/var/run/wgedge/%s.state.json"):
            assert not os.path.exists(path % ifa), path % ifa
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


class PrivateMounts:
    """A mount namespace of the test's own, so its wgedge instances see only each other and
    leave the host's alone: /var/run/wireguard and /var/run/wgedge are empty tmpfs and
    /etc/hosts is `hosts`. /dev is a tmpfs holding only the devices wgedge needs, and /dev/log
    leads to a syslog socket this object reads: the daemons and watchdogs log there (and to
    /var/log/wgedge-IFNAME.log, also the test's, if they fall back to a file), so the test
    sees every line they log. `run` executes inside, in a network namespace if given."""

    DEVICES = ("null", "zero", "full", "random", "urandom", "net/tun")

    def __init__(self, tmp_path):
        self.logs = tmp_path / "log"
        self.logs.mkdir()
        (tmp_path / "hostdev").mkdir()
        self.hosts = tmp_path / "hosts"
        self.hosts.write_text("127.0.0.1 localhost\n")
        self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.syslog.bind(str(tmp_path / "syslog.sock"))
        self.lines = []
        threading.Thread(target=self._receive, daemon=True).start()
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                        "sleep", "3600"])
        mine = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 10
        while os.readlink("/proc/%d/ns/mnt" % self.holder.pid) == mine:
            assert time.monotonic() < deadline, "unshare did not make a mount namespace"
            time.sleep(0.01)
        steps = ["mkdir -p /var/run/wireguard /var/run/wgedge",
                 "mount -t tmpfs -o mode=0700 tmpfs /var/run/wireguard",
                 "mount -t tmpfs -o mode=0700 tmpfs /var/run/wgedge",
                 "mount --bind %s /var/log" % self.logs,
                 "mount --bind %s /etc/hosts" % self.hosts,
                 "mount --rbind /dev %s/hostdev" % tmp_path,
                 "mount -t tmpfs -o mode=0755 tmpfs /dev",
                 "mkdir /dev/net /dev/shm",
                 "ln -s /proc/self/fd /dev/fd",
                 "ln -s %s/syslog.sock /dev/log" % tmp_path]
        for dev in self.DEVICES:
            steps += ["touch /dev/%s" % dev, "mount --bind %s/hostdev/%s /dev/%s"
                      % (tmp_path, dev, dev)]
        self.run("sh", "-c", " && ".join(["set -e"] + steps))

    def _receive(self):
        while True:
            try:
                data = self.syslog.recv(65536)
            except OSError:
                return
            self.lines.append(data.decode(errors="replace").rstrip("\0"))

    def run(self, *cmd, ns=None, check=True):
        prefix = ["nsenter", "-t", str(self.holder.pid), "-m", "--"]
        if ns is not None:
            prefix += ["ip", "netns", "exec", ns]
        env = dict(os.environ, PYTHONPATH=ROOT, LOG_LEVEL="debug")
        res = subprocess.run(prefix + list(cmd), capture_output=True, text=True, timeout=120,
                             env=env)
        if check and res.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), res.returncode,
                                                              res.stdout, res.stderr))
        return res

    def wgedge(self, ns, *args, check=True):
        return self.run(sys.executable, "-m", "wgedge", *args, ns=ns, check=check)

    def read(self, path):
        return self.run("cat", path).stdout

    def log(self, ifname):
        """Every line logged for `ifname`: syslog, then the fallback file."""
        text = "".join(line + "\n" for line in list(self.lines) if " %s: " % ifname in line)
        try:
            return text + (self.logs / ("wgedge-%s.log" % ifname)).read_text()
        except OSError:
            return text

    def wait_log(self, ifname, text, seconds=30):
        deadline = time.monotonic() + seconds
        while text not in self.log(ifname):
            assert time.monotonic() < deadline, "no %r in the log of %s:\n%s" % (
                text, ifname, self.log(ifname))
            time.sleep(0.2)

    def close(self):
        self.holder.kill()
        self.holder.wait()
        self.syslog.close()


def site_configs(tmp_path, a, b, keys):
    """Router A: keys inline, the canaries where a valid file may hold anything (an ignored
    option, a peer's section name, descriptions); a peer `ghost` that never answers, named by
    a host name, so the watchdog re-resolves it. Router B: keys in files, its private key file
    readable by its group."""
    conf_a = tmp_path / "a.uci"
    conf_a.write_text(
        "config interface '%(a)s'\n\toption proto 'wireguard'\n"
        "\toption private_key '%(priv_a)s'\n\toption listen_port '51820'\n"
        "\tlist addresses '10.9.0.1/24'\n\toption zone '%(alnum)s'\n"
        "config wireguard_%(a)s '%(alnum)s'\n\toption description '%(blob)s'\n"
        "\toption public_key '%(pub_b)s'\n\toption preshared_key '%(psk)s'\n"
        "\tlist allowed_ips '10.9.0.2/32'\n\toption endpoint_host 'peer-b.test'\n"
        "\toption endpoint_port '51820'\n"
        "config wireguard_%(a)s\n\toption description '%(key)s'\n"
        "\toption public_key '%(pub_ghost)s'\n\tlist allowed_ips '10.9.0.3/32'\n"
        "\toption endpoint_host 'ghost.test'\n"
        "config wgedge 'settings'\n\toption check_interval '1'\n"
        "\toption stale_handshake '30'\n"
        % dict(keys, a=a, alnum=ALNUM_CANARY, blob=BLOB_CANARY, key=KEY_CANARY))
    conf_a.chmod(0o600)
    (tmp_path / "b.key").write_text(keys["priv_b"] + "\n")
    (tmp_path / "b.key").chmod(0o640)
    (tmp_path / "b.psk").write_text(keys["psk"] + "\n")
    (tmp_path / "b.psk").chmod(0o600)
    conf_b = tmp_path / "b.uci"
    conf_b.write_text(
        "config interface '%(b)s'\n\toption proto 'wireguard'\n"
        "\toption private_key_file 'b.key'\n\toption listen_port '51820'\n"
        "\tlist addresses '10.9.0.2/24'\n"
        "config wireguard_%(b)s\n\toption public_key '%(pub_a)s'\n"
        "\toption preshared_key_file 'b.psk'\n\tlist allowed_ips '10.9.0.1/32'\n"
        "\toption endpoint_host '10.77.0.1'\n\toption endpoint_port '51820'\n"
        % dict(keys, b=b))
    conf_b.chmod(0o600)
    return conf_a, conf_b


@pytest.mark.root
def test_canaries_and_keys_stay_out_of_logs_status_and_json(nets, tmp_path):
    """Two routers under their watchdogs, logging at debug level, in a mount namespace of the
    test's own. Every path that logs or prints config text is driven: `up` (with a key file
    warning), traffic, a re-resolved host name (the log names the peer), a broken file with the
    canaries in addresses, ports, names and option names (`reload`, then SIGHUP, then a
    daemon killed while the file is broken), `status`, `status --json`, `down`, a hardware
    watchdog that cannot be opened. No canary and no private or preshared key (base64 or hex)
    appears in any output or log line."""

    ns_a, ns_b = nets.ns("ka"), nets.ns("kb")
    nets.link(ns_a, ns_b, "10.77.0.1", "10.77.0.2")
    a, b, c = "wka" + nets.tag, "wkb" + nets.tag, "wkc" + nets.tag
    keys = {}
    keys["priv_a"], keys["pub_a"] = genkey()
    keys["priv_b"], keys["pub_b"] = genkey()
    keys["pub_ghost"] = genkey()[1]
    keys["psk"] = sh("wg", "genpsk").stdout.strip()
    secrets = CANARIES + tuple(
        v for k in ("priv_a", "priv_b", "psk")
        for v in (keys[k], base64.b64decode(keys[k]).hex()))
    conf_a, conf_b = site_configs(tmp_path, a, b, keys)
    run = PrivateMounts(tmp_path)
    printed = []
    try:
        run.hosts.write_text("127.0.0.1 localhost\n10.77.0.2 peer-b.test\n"
                             "10.77.0.9 ghost.test\n")
        res = run.wgedge(ns_b, "up", str(conf_b))
        nets.ifnames.append((ns_b, b, "wgedge"))
        printed.append(res.stdout + res.stderr)
        assert "b.uci:3: option 'private_key_file': the key file is readable by group or " \
               "others (mode 640)" in res.stderr
        res = run.wgedge(ns_a, "up", str(conf_a))
        nets.ifnames.append((ns_a, a, "wgedge"))
        printed.append(res.stdout + res.stderr)
        run.run("ping", "-c", "5", "-i", "0.2", "-W", "2", "10.9.0.2", ns=ns_a)

        run.hosts.write_text("127.0.0.1 localhost\n10.77.0.2 peer-b.test\n"
                             "10.77.0.10 ghost.test\n")
        run.wait_log(a, "now resolves to 10.77.0.10:51820")

        broken = conf_a.read_text().replace(
            "listen_port '51820'", "listen_port '%s'" % KEY_CANARY).replace(
            "list addresses '10.9.0.1/24'", "list addresses '%s'\n\toption %s '1'"
            % (BLOB_CANARY, ALNUM_CANARY)).replace(
            "config wgedge 'settings'", "config wireguard_%s '%s'\nconfig wgedge 'settings'"
            % (HEX_CANARY, KEY_CANARY))
        conf_a.write_text(broken)
        res = run.wgedge(ns_a, "reload", str(conf_a), check=False)
        printed.append(res.stdout + res.stderr)
        assert res.returncode == 1 and "a.uci:4: option 'listen_port'" in res.stderr
        watchdog = int(run.read("/var/run/wgedge/%s.watchdog.pid" % a))
        os.kill(watchdog, signal.SIGHUP)
        run.wait_log(a, "reload refused")
        os.kill(int(run.read("/var/run/wgedge/%s.pid" % a)), signal.SIGKILL)
        run.wait_log(a, "config now invalid")
        run.wait_log(a, "daemon restarted")

        res = run.wgedge(ns_a, "status")
        printed.append(res.stdout + res.stderr)
        assert keys["pub_a"] in res.stdout and keys["pub_b"] in res.stdout
        res = run.wgedge(ns_a, "status", "--json")
        printed.append(res.stdout + res.stderr)
        assert {i["interface"] for i in json.loads(res.stdout)} == {a, b}
        for ifname, ns in ((a, ns_a), (b, ns_b)):
            res = run.wgedge(ns, "down", ifname)
            printed.append(res.stdout + res.stderr)

        # A path is never quoted either: a watchdog_device that cannot be opened.
        conf_c = tmp_path / "c.uci"
        conf_c.write_text("config interface '%s'\n\toption proto 'wireguard'\n"
                          "\toption private_key '%s'\nconfig wgedge\n"
                          "\toption watchdog_device '/nonexistent/%s'\n"
                          % (c, keys["priv_a"], BLOB_CANARY))
        conf_c.chmod(0o600)
        res = run.wgedge(ns_a, "up", str(conf_c), check=False)
        printed.append(res.stdout + res.stderr)
        assert res.returncode == 1
        assert "cannot open watchdog_device: No such file or directory" in res.stderr
    finally:
        logs = {ifname: run.log(ifname) for ifname in (a, b, c)}
        for ifname, ns in ((a, ns_a), (b, ns_b)):
            run.wgedge(ns, "down", ifname, check=False)
        run.close()
    assert "up under the watchdog" in logs[a] and "up under the watchdog" in logs[b]
    for ifname, text in logs.items():
        assert_no_secret(text, secrets, "the log of %s" % ifname)
    for text in printed:
        assert_no_secret(text, secrets, "wgedge output")
    assert "peer at line 14: ghost.test now resolves to 10.77.0.10:51820" in logs[a], logs[a]
