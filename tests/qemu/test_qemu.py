"""The QEMU image test (make qemu-test): ARM guests running wgedge, against a host peer.

For each architecture in WGEDGE_QEMU_ARCHES (make qemu-test sets "arm64 armhf"), a guest boots
the image from tests/qemu/build.py under software emulation inside a network namespace made
for the test. S50wgedge brings the tunnel up from the guest's UCI config; the host end is
wgedge (arm64) or wireguard-go (armhf) in the same namespace. Checked: the CPU features and
crypto path the guest reports (the armhf guest has no NEON; the image's `cryptography` is the
pinned wheel and takes the fast path), a handshake, ping both ways, a
byte-identical transfer each way over HTTP, the stock `wg` inside the guest, the watchdog
restarting the daemon after `kill -9`, and S50wgedge stop taking the link down.
"""

import hashlib
import os
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh
from tests.qemu import build
from tests.qemu.guest import Guest, append_files

ARCHES = os.environ.get("WGEDGE_QEMU_ARCHES", "arm64 armhf").split()
HOST_IMPL = {"arm64": "wgedge", "armhf": "wireguard-go"}
HOST_PORT, FWD_PORT = 51900, 51901
HOST_IP, GUEST_IP = "10.88.0.1", "10.88.0.2"
GUEST_IF, HOST_IF = "wgq0", "wgqh0"
BOOT_TIMEOUT = int(os.environ.get("WGEDGE_QEMU_BOOT_TIMEOUT", "300"))
BLOB = 2 * 1024 * 1024

pytestmark = [pytest.mark.root, pytest.mark.slow]

GUEST_CONFIG = """\
# The QEMU test's guest: one link to the host, which is 10.0.2.2 to QEMU's user networking.
config interface '{ifname}'
	option proto 'wireguard'
	option private_key '{private}'
	option listen_port '51820'
	list addresses '{guest_ip}/24'

config wireguard_{ifname} 'host'
	option description 'the test host'
	option public_key '{host_public}'
	list allowed_ips '{host_ip}/32'
	option endpoint_host '10.0.2.2'
	option endpoint_port '{host_port}'
	option persistent_keepalive '25'
"""


def phase(times, name, t0):
    times.append((name, time.monotonic() - t0))
    print("    %-34s %6.1f s" % (name, times[-1][1]), flush=True)
    return time.monotonic()


def host_fetch(ns, url):
    """sha256 and length of what GET url returns, fetched from inside the namespace."""
    code = ("import hashlib, sys, urllib.request\n"
            "d = urllib.request.urlopen(sys.argv[1], timeout=120).read()\n"
            "print(hashlib.sha256(d).hexdigest(), len(d))\n")
    out = sh(sys.executable, "-c", code, url, ns=ns, timeout=180).stdout.split()
    return out[0], int(out[1])


def until(what, fn, timeout, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(interval)


def latest_handshake(ns):
    out = sh("wg", "show", HOST_IF, "latest-handshakes", ns=ns).stdout.split()
    return int(out[1]) if len(out) == 2 else 0


@pytest.fixture
def image(request):
    arch = request.param
    d = build.image_dir(arch)
    for name in ("vmlinuz", "initrd.gz"):
        if not os.path.exists(os.path.join(d, name)):
            pytest.fail("no QEMU image for %s: run make qemu-image ARCH=%s" % (arch, arch))
    return arch, d


@pytest.mark.parametrize("image", ARCHES, indirect=True)
def test_guest_tunnel(image, nets, tmp_path):
    arch, image_dir = image
    times = []
    t = t_start = time.monotonic()
    ns = nets.ns("q" + arch)
    host_priv, host_pub = genkey()
    guest_priv, guest_pub = genkey()
    config = GUEST_CONFIG.format(ifname=GUEST_IF, private=guest_priv, host_public=host_pub,
                                 guest_ip=GUEST_IP, host_ip=HOST_IP, host_port=HOST_PORT)
    initrd = str(tmp_path / "initrd.gz")
    append_files(os.path.join(image_dir, "initrd.gz"), initrd,
                 {"/etc/config/wgedge": (config.encode(), 0o600)})

    # The host end, in the namespace QEMU's user networking reaches as 10.0.2.2.
    nets.start(HOST_IMPL[arch], ns, HOST_IF)
    keyfile = tmp_path / "host.key"
    keyfile.write_text(host_priv + "\n")
    sh("wg", "set", HOST_IF, "listen-port", str(HOST_PORT), "private-key", str(keyfile),
       "peer", guest_pub, "allowed-ips", GUEST_IP + "/32",
       "endpoint", "127.0.0.1:%d" % FWD_PORT, ns=ns)
    sh("ip", "address", "add", HOST_IP + "/24", "dev", HOST_IF, ns=ns)
    sh("ip", "link", "set", HOST_IF, "up", ns=ns)

    log_path = os.path.join(ROOT, ".cache", "qemu", "console-%s.log" % arch)
    guest = Guest(arch, image_dir, initrd, log_path, ns, FWD_PORT)
    server = None
    try:
        guest.start()
        m = guest.wait_for(r"(?s)Starting wgedge: .*?\b(OK|FAIL)\r?\n", BOOT_TIMEOUT)
        assert m.group(1) == b"OK", guest.tail()
        t = phase(times, "boot to tunnel up (S50wgedge)", t)
        guest.wait_for(r"# ", 60)
        guest.run("stty -echo 2>/dev/null; export PS1=''", check=False)

        # What the guest found and chose, in `wgedge info` and in the daemon's start-up log.
        _, info = guest.run("wgedge info", timeout=120)
        _, cpuinfo = guest.run("grep -m1 -i features /proc/cpuinfo")
        # The image's cryptography is the pinned wheel (the firmware's), on the fast path.
        pinned = build.pinned_version(arch, "cryptography")
        assert "crypto: fast (cryptography %s " % pinned in info, info
        assert "AEAD fast path" in info and "slow path" not in info, info
        if arch == "armhf":
            assert "neon" not in cpuinfo.split(), cpuinfo
            assert "NEON/ASIMD no" in info, info
        else:
            assert "NEON/ASIMD yes" in info, info
        _, logged = guest.run("grep -E 'wgedge.*(crypto|cpu): ' /var/log/messages")
        assert "crypto: fast (cryptography %s " % pinned in logged and "cpu: " in logged, logged
        assert "AEAD fast path" in logged, logged
        rc, _ = guest.run("grep -q 'slow path' /var/log/messages", check=False)
        assert rc == 1, "the daemon warned about a slow cryptography"
        t = phase(times, "wgedge info + start-up log", t)

        # Handshake and ping, both ways.
        until("ping host -> guest", lambda: sh("ping", "-c", "1", "-W", "3", GUEST_IP, ns=ns,
                                              check=False).returncode == 0, 90, 0.5)
        first_handshake = latest_handshake(ns)
        assert first_handshake > 0
        res = sh("ping", "-c", "5", "-i", "0.2", "-W", "5", GUEST_IP, ns=ns)
        assert " 0% packet loss" in res.stdout, res.stdout
        _, out = guest.run("ping -c 3 -W 5 %s" % HOST_IP, timeout=60)
        assert " 0% packet loss" in out, out
        _, out = guest.run("wg show %s" % GUEST_IF)
        assert host_pub in out and "latest handshake" in out, out
        t = phase(times, "handshake + ping both ways", t)

        # Byte-identical transfers, host -> guest and guest -> host.
        blob = os.urandom(BLOB)
        www = tmp_path / "www"
        www.mkdir()
        (www / "blob").write_bytes(blob)
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m",
                                   "http.server", "--bind", HOST_IP, "--directory", str(www),
                                   "8080"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        guest.run("wget -q -O /tmp/blob http://%s:8080/blob" % HOST_IP, timeout=300)
        _, out = guest.run("sha256sum /tmp/blob")
        assert out.split()[0] == hashlib.sha256(blob).hexdigest()
        guest.run("mkdir -p /tmp/www && head -c %d /dev/urandom > /tmp/www/up && "
                  "httpd -p %s:8081 -h /tmp/www" % (BLOB, GUEST_IP))
        _, out = guest.run("sha256sum /tmp/www/up")
        digest, size = host_fetch(ns, "http://%s:8081/up" % GUEST_IP)
        assert (digest, size) == (out.split()[0], BLOB)
        t = phase(times, "2 MiB each way, sha256 equal", t)
        _, mem = guest.run("grep -E 'VmHWM|VmRSS|RssAnon' /proc/$(cat /var/run/wgedge/%s.pid)"
                           "/status" % GUEST_IF)
        print("    daemon memory after the transfers: %s" % " ".join(mem.split()), flush=True)

        # kill -9 the daemon: its watchdog starts a new one, which configures itself again
        # and the tunnel carries traffic again.
        _, pid = guest.run("cat /var/run/wgedge/%s.pid" % GUEST_IF)
        pid = pid.strip()
        guest.run("kill -9 %s" % pid)

        def restarted():
            rc, out = guest.run("cat /var/run/wgedge/%s.pid && wg show %s listen-port"
                                % (GUEST_IF, GUEST_IF), check=False)
            lines = out.split()
            return rc == 0 and lines[0] != pid and lines[-1] == "51820"

        until("the watchdog to restart the daemon", restarted, 90, 1.0)
        t = phase(times, "kill -9 -> watchdog restart", t)
        until("ping guest -> host after the restart",
              lambda: guest.run("ping -c 1 -W 3 %s" % HOST_IP, check=False)[0] == 0, 90, 0.5)
        res = sh("ping", "-c", "3", "-W", "5", GUEST_IP, ns=ns)
        assert " 0% packet loss" in res.stdout, res.stdout
        assert latest_handshake(ns) > first_handshake
        t = phase(times, "tunnel back after restart", t)

        # The init script's stop takes the link down and leaves no daemon behind.
        _, out = guest.run("/etc/init.d/S50wgedge stop", timeout=120)
        assert "OK" in out, out
        rc, _ = guest.run("ip link show %s" % GUEST_IF, check=False)
        assert rc != 0
        _, out = guest.run("ls /var/run/wgedge/ 2>/dev/null; echo end")
        assert out.split() == ["end"], out
        phase(times, "S50wgedge stop", t)
        print("    %-34s %6.1f s" % ("total (%s guest)" % arch, time.monotonic() - t_start))
    except Exception:
        print("--- guest console (%s), last lines:\n%s" % (log_path, guest.tail(4000)))
        raise
    finally:
        if server is not None:
            server.kill()
            server.wait()
        guest.close()
