"""The QEMU image test (make qemu-test): ARM guests booted from router flash, against a host hub.

For each architecture in WGEDGE_QEMU_ARCHES (make qemu-test sets "arm64 armhf"), one disk (a
qcow2 overlay of the image's disk.img: squashfs slot a, empty slot b, ext4 data partition) goes
through the life of a router, inside a network namespace made for the test, where the host
end (the hub the image's default config names: wgedge on arm64, wireguard-go on armhf) runs:

 1. first boot: the default config is installed, a key is generated and its public key
    printed on the console; the host is enrolled from that line and sees a handshake (the
    boot-to-handshake time is printed); the crypto path, ping, transfers, the watchdog;
    a config change on the device (edit + `wgedge reload`);
 2. reboot: same key, same peers, the change kept, the tunnel up with no action on the device;
    a corrupted and a truncated upgrade file are refused and the system keeps running; an
    upgrade to release 2 (board/common/mkupgrade of a squashfs with another /etc/wgedge-image);
 3. that boot tries slot b once, keeps the key and confirms; an upgrade back to release 1
    whose boot never gets to confirm (the power goes before init) falls back to slot b;
 4. power cuts: QEMU killed at a random moment while the device generates keys (config
    removed and installed again in a loop), reloads an edited config (written atomically, in
    a loop) or writes an upgrade into the other slot; every cut is followed by a boot that
    must bring the tunnel up with an intact config (the next cut happens in that boot);
 5. S50wgedge stop.
WGEDGE_QEMU_POWER_CUTS (default 20 per architecture, 40 in make qemu-test) and
WGEDGE_QEMU_SEED (printed) set the cuts.
"""

import hashlib
import os
import random
import re
import subprocess
import sys
import time

import pytest

from tests.netns import ROOT, genkey, sh
from tests.qemu import build
from tests.qemu.guest import Guest, disk_overlay

ARCHES = os.environ.get("WGEDGE_QEMU_ARCHES", "arm64 armhf").split()
HOST_IMPL = {"arm64": "wgedge", "armhf": "wireguard-go"}
FWD_PORT = 51901  # the namespace's 127.0.0.1:FWD_PORT reaches the guest's listen port
HTTP_PORT = 8000  # the namespace's 127.0.0.1:HTTP_PORT is 10.0.2.2:HTTP_PORT to the guest
HOST_IF = "wgqh0"
BOOT_TIMEOUT = int(os.environ.get("WGEDGE_QEMU_BOOT_TIMEOUT", "300"))
POWER_CUTS = int(os.environ.get("WGEDGE_QEMU_POWER_CUTS", "20"))
SEED = int(os.environ.get("WGEDGE_QEMU_SEED", str(int(time.time()))))
BLOB = 2 * 1024 * 1024
CONFIG = "/etc/config/wgedge"

pytestmark = [pytest.mark.root, pytest.mark.slow]

PEER_SECTION = """
config wireguard_{ifname} '{name}'
	option description 'added on the device'
	option public_key '{public}'
	list allowed_ips '{net}'
"""


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


class Rig:
    """One architecture: the host hub in a namespace, one disk, the guest booted from it."""

    def __init__(self, arch, image_dir, nets, tmp_path):
        self.arch, self.image_dir, self.tmp = arch, image_dir, tmp_path
        self.info = build.read_info(image_dir)
        self.ifname, self.guest_ip = self.info["guest_if"], self.info["guest_ip"]
        self.ns = nets.ns("q" + arch)
        self.disk = disk_overlay(os.path.join(image_dir, "disk.img"),
                                 str(tmp_path / "disk.qcow2"))
        self.log_path = os.path.join(ROOT, ".cache", "qemu", "console-%s.log" % arch)
        self.guest = None
        self.guest_key = None  # the public key the host has enrolled
        self.boots = 0
        self.server = None
        self.done = False  # set when the test got to its end
        # The hub: its key is the one the image's default config names.
        nets.start(HOST_IMPL[arch], self.ns, HOST_IF)
        sh("wg", "set", HOST_IF, "listen-port", self.info["hub_port"], "private-key",
           os.path.join(image_dir, "hub.key"), ns=self.ns)
        sh("ip", "address", "add", self.info["hub_ip"] + "/24", "dev", HOST_IF, ns=self.ns)
        sh("ip", "link", "set", HOST_IF, "up", ns=self.ns)

    # ---- boots ----

    def boot(self):
        """Start QEMU on the disk -> the preinit's "booting slot X" line (as text)."""
        assert self.guest is None
        if self.guest_key:  # a fresh peer on the host: a handshake seen is this boot's
            self._set_host_peer(self.guest_key)
        self.boots += 1
        self.guest = Guest(self.arch, self.image_dir, None, self.log_path, self.ns, FWD_PORT,
                           disk=self.disk, guest_port=int(self.info["listen_port"]))
        self.guest.start("wb" if self.boots == 1 else "ab")
        self.guest.log.write(b"\n==== boot %d ====\n" % self.boots)
        m = self.guest.wait_for(r"wgedge-preinit: booting slot ([ab]) \((\S+)\)", BOOT_TIMEOUT)
        return self.guest.buf[:m.end()].decode(errors="replace")

    def come_up(self):
        """After boot(): enroll the key the console shows, wait for S50wgedge and a handshake
        -> seconds from QEMU start to the first handshake the host saw."""
        g = self.guest
        g.wait_for(r"Starting wgedge: ", BOOT_TIMEOUT)
        m = g.wait_for(r"wgedge: %s public key ([A-Za-z0-9+/]{43}=)" % self.ifname,
                       BOOT_TIMEOUT)
        key = m.group(1).decode()
        if key != self.guest_key:
            if self.guest_key:
                sh("wg", "set", HOST_IF, "peer", self.guest_key, "remove", ns=self.ns)
            self._set_host_peer(key)
            self.guest_key = key
        m = g.wait_for(r"(?m)^(OK|FAIL)\b", BOOT_TIMEOUT)  # S50wgedge's verdict
        assert m.group(1) == b"OK", g.tail()
        hs = until("the first handshake at the host", lambda: self._handshake_since(g.started),
                   BOOT_TIMEOUT, 0.25)
        g.wait_for(r"# ", 60)
        g.run("stty -echo 2>/dev/null; export PS1=''", check=False)
        return hs - g.started

    def _set_host_peer(self, key):
        sh("wg", "set", HOST_IF, "peer", key, "remove", ns=self.ns, check=False)
        sh("wg", "set", HOST_IF, "peer", key, "allowed-ips", self.guest_ip + "/32",
           "endpoint", "127.0.0.1:%d" % FWD_PORT, ns=self.ns)

    def _handshake_since(self, t):
        out = sh("wg", "show", HOST_IF, "latest-handshakes", ns=self.ns).stdout.split()
        if len(out) == 2 and int(out[1]) >= int(t):
            return max(int(out[1]), t)
        return None

    def reboot(self):
        """`reboot` on the console: init stops the services, syncs and unmounts; QEMU exits
        (-no-reboot)."""
        self.guest.send("reboot\n")
        self.guest.wait_exit(180)
        self.guest.close()
        self.guest = None

    def cut(self):
        """The power goes: QEMU is killed; what the guest had not written is lost."""
        self.guest.close()
        self.guest = None

    def run(self, command, timeout=120, check=True):
        return self.guest.run(command, timeout=timeout, check=check)

    def append(self, path, text):
        """Append `text` to a file on the guest (a here-document: the text is not quoted)."""
        assert "\nEOF\n" not in text
        self.run("cat >> %s <<'EOF'\n%s\nEOF\ntrue" % (path, text.rstrip("\n")))

    def background(self, command):
        """Start `command` in the guest's background, its output discarded."""
        self.run("{ ( %s ) >/dev/null 2>&1 & }" % command)

    # ---- what the device has ----

    def boot_state(self):
        _, out = self.run("cat /run/wgedge-boot")
        return dict(line.split("=", 1) for line in out.split())

    def release(self):
        return self.run("cat /etc/wgedge-image")[1].strip()

    def config_digest(self):
        return self.run("sha256sum %s" % CONFIG)[1].split()[0]

    def check_config(self):
        """The config is whole: `wgedge check` passes, the key is a key, the hub is there."""
        self.run("wgedge check %s" % CONFIG)
        _, text = self.run("cat %s" % CONFIG)
        assert re.search(r"^\s*option private_key '[A-Za-z0-9+/]{43}='$", text, re.M), text
        assert not re.search(r"^\s*option private_key 'generate'", text, re.M), text
        assert self.info["hub_public"] in text, text
        _, mode = self.run("stat -c %%a %s" % CONFIG)
        assert mode.strip() == "600", mode
        _, pub = self.run("wg show %s public-key" % self.ifname)
        assert pub.strip() == self.guest_key

    def ping_both_ways(self):
        until("ping host -> guest", lambda: sh("ping", "-c", "1", "-W", "3", self.guest_ip,
                                              ns=self.ns, check=False).returncode == 0, 90, 0.5)
        res = sh("ping", "-c", "3", "-i", "0.2", "-W", "5", self.guest_ip, ns=self.ns)
        assert " 0% packet loss" in res.stdout, res.stdout
        _, out = self.run("ping -c 2 -W 5 %s" % self.info["hub_ip"], timeout=60)
        assert " 0% packet loss" in out, out

    def serve(self, directory):
        """An HTTP server for `directory` on the namespace's loopback, once it answers."""
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "http.server", "--bind",
             "127.0.0.1", "--directory", str(directory), str(HTTP_PORT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = ("import socket, sys; socket.create_connection(('127.0.0.1', %d), 1)"
                 % HTTP_PORT)
        until("the host's HTTP server", lambda: sh(sys.executable, "-c", probe, ns=self.ns,
                                                   check=False).returncode == 0, 30, 0.2)

    def download(self, name):
        """An upgrade file from the host to the guest's /tmp (10.0.2.2 is the host)."""
        self.run("wget -q -O /tmp/%s http://10.0.2.2:%d/%s" % (name, HTTP_PORT, name),
                 timeout=300)
        return "/tmp/" + name

    def close(self):
        if self.guest is not None:
            self.guest.close()
        if self.server is not None:
            self.server.kill()
            self.server.wait()


def phase(times, name, t0):
    times.append((name, time.monotonic() - t0))
    print("    %-44s %6.1f s" % (name, times[-1][1]), flush=True)
    return time.monotonic()


@pytest.fixture
def image(request):
    arch = request.param
    d = build.image_dir(arch)
    for name in ("vmlinuz", "preinit.cpio.gz", "disk.img", "image.txt", "rootfs.upgrade",
                 "rootfs2.upgrade"):
        if not os.path.exists(os.path.join(d, name)):
            pytest.fail("no %s in the QEMU image for %s: run make qemu-image ARCH=%s"
                        % (name, arch, arch))
    return arch, d


@pytest.fixture
def rig(image, nets, tmp_path):
    arch, image_dir = image
    r = Rig(arch, image_dir, nets, tmp_path)
    try:
        yield r
    finally:
        if r.guest is not None and not r.done:
            print("--- guest console (%s), last lines:\n%s" % (r.log_path, r.guest.tail(4000)))
        r.close()


def upgrade_files(rig, directory):
    """The image's two upgrade files, and two broken copies of release 2's."""
    os.makedirs(directory, exist_ok=True)
    for name in ("rootfs.upgrade", "rootfs2.upgrade"):
        os.link(os.path.join(rig.image_dir, name), os.path.join(directory, name))
    with open(os.path.join(rig.image_dir, "rootfs2.upgrade"), "rb") as f:
        good = f.read()
    bad = bytearray(good)
    bad[len(bad) // 3] ^= 0x40  # one bit of the squashfs payload
    with open(os.path.join(directory, "corrupt.upgrade"), "wb") as f:
        f.write(bad)
    with open(os.path.join(directory, "truncated.upgrade"), "wb") as f:
        f.write(good[:len(good) // 2])


@pytest.mark.parametrize("image", ARCHES, indirect=True)
def test_router_life(rig, tmp_path):
    times = []
    handshakes = []
    t = t_start = time.monotonic()
    arch = rig.arch
    print("\n    %s: %s, power cuts %d, seed %d" % (arch, rig.info["board"], POWER_CUTS, SEED))

    # 1. First boot.
    rig.boot()
    hs = rig.come_up()
    handshakes.append(hs)
    print("    boot to handshake (first boot, key generated)  %5.1f s" % hs, flush=True)
    log = rig.guest.buf.decode(errors="replace")
    assert "wgedge-preinit: e2fsck /dev/vda3: clean" in log, log[-3000:]
    assert rig.boot_state() == {"slot": "a", "device": "/dev/vda1", "trying": "0"}
    _, mounts = rig.run("grep -E ' /(data|etc/config) ' /proc/mounts")
    assert "/dev/vda3 /data ext4" in mounts and "/dev/vda3 /etc/config ext4" in mounts, mounts
    rig.check_config()
    _, status = rig.run("wgedge status")
    assert rig.guest_key in status, status
    t = phase(times, "first boot: key on the console, handshake", t)
    check_software(rig)
    t = phase(times, "crypto path, ping, 2 MiB each way, watchdog", t)

    # A change made on the device: a peer added by editing the file, then `wgedge reload`.
    _, spare_pub = genkey()
    rig.append(CONFIG, PEER_SECTION.format(ifname=rig.ifname, name="spare", public=spare_pub,
                                           net="10.77.1.0/24"))
    rig.run("wgedge reload %s" % CONFIG)
    _, peers = rig.run("wg show %s peers" % rig.ifname)
    assert spare_pub in peers, peers
    edited = rig.config_digest()
    key = rig.guest_key
    rig.reboot()
    t = phase(times, "config change + reboot", t)

    # 2. Reboot: the same key, the peers and the change, with no action on the device.
    rig.boot()
    hs = rig.come_up()
    handshakes.append(hs)
    assert rig.guest_key == key, "a new key after a reboot"
    assert rig.config_digest() == edited
    _, peers = rig.run("wg show %s peers" % rig.ifname)
    assert spare_pub in peers and rig.info["hub_public"] in peers, peers
    rig.ping_both_ways()
    t = phase(times, "reboot keeps key, peers, change", t)

    # Broken upgrade files are refused before anything is written.
    files = tmp_path / "www"
    upgrade_files(rig, str(files))
    rig.serve(files)
    for name in ("corrupt.upgrade", "truncated.upgrade"):
        path = rig.download(name)
        rc, out = rig.run("wgedge-upgrade %s 2>&1" % path, check=False, timeout=300)
        assert rc == 1 and out.strip() and "Traceback" not in out, (name, rc, out)
        assert len(out.strip().splitlines()) == 1, out
        print("    %s refused: %s" % (name, out.strip()), flush=True)
        rig.run("rm -f %s" % path)
        rc, _ = rig.run("ls /data/boot/try", check=False)
        assert rc != 0, "a refused upgrade left a try marker"
    rig.ping_both_ways()
    t = phase(times, "corrupt and truncated upgrades refused", t)

    # An upgrade to release 2: written into slot b, booted once, confirmed.
    assert rig.release().endswith("release 1")
    path = rig.download("rootfs2.upgrade")
    rig.guest.send("wgedge-upgrade %s\n" % path)
    rig.guest.wait_exit(600)
    rig.guest.close()
    rig.guest = None
    t = phase(times, "upgrade written, rebooting", t)
    log = rig.boot()
    assert "trying slot b once" in log, log[-2000:]
    hs = rig.come_up()
    handshakes.append(hs)
    assert rig.guest_key == key and rig.config_digest() == edited
    assert rig.release().endswith("release 2")
    assert rig.boot_state() == {"slot": "b", "device": "/dev/vda2", "trying": "1"}
    until("S99wgedge-confirm", lambda: rig.run("cat /data/boot/slot", check=False)[1].strip()
          == "b", 120)
    rc, _ = rig.run("ls /data/boot/trying", check=False)
    assert rc != 0
    rig.ping_both_ways()
    t = phase(times, "upgrade: slot b tried, same key, confirmed", t)

    # An upgrade whose new system never confirms: the power goes before init runs.
    path = rig.download("rootfs.upgrade")
    rig.run("wgedge-upgrade --no-reboot %s" % path, timeout=600)
    rig.reboot()
    log = rig.boot()
    assert "trying slot a once" in log, log[-2000:]
    rig.cut()
    log = rig.boot()
    assert "slot a did not confirm, booting slot b" in log, log[-2000:]
    hs = rig.come_up()
    handshakes.append(hs)
    assert rig.release().endswith("release 2") and rig.guest_key == key
    assert rig.boot_state()["slot"] == "b"
    rig.ping_both_ways()
    t = phase(times, "unconfirmed upgrade falls back to slot b", t)

    # 4. Power cuts.
    rng = random.Random(SEED + ARCHES.index(arch))
    kinds = ["keygen", "reload", "upgrade"]
    for n in range(POWER_CUTS):
        kind = kinds[n % len(kinds)]
        expect = power_cut(rig, kind, rng, tmp_path)
        log = rig.boot()
        hs = rig.come_up()
        handshakes.append(hs)
        rig.check_config()
        digest = rig.config_digest()
        if expect is not None:
            assert digest in expect, "config after a cut is neither old nor new"
        if kind != "keygen":
            assert rig.guest_key == key, "the key changed after a %s cut" % kind
        # What the cut left, for the record: the preinit's check, which version, which slot.
        fsck = re.search(r"e2fsck /dev/vda3: ([^\r\n]*)", log)
        if kind == "keygen":
            found = "same key" if rig.guest_key == key else "new key"
        elif kind == "reload":
            found = "version " + "AB"[expect.index(digest)]
        else:
            found = "slot %s%s" % (rig.boot_state()["slot"],
                                   " (a try)" if "trying slot" in log else "")
        print("      e2fsck: %s; %s" % (fsck.group(1) if fsck else "?", found), flush=True)
        key = rig.guest_key
        t = phase(times, "power cut %d (%s) -> tunnel up, config whole" % (n + 1, kind), t)

    # 5. The init script's stop takes the link down and leaves no daemon behind.
    _, out = rig.run("/etc/init.d/S50wgedge stop", timeout=120)
    assert "OK" in out, out
    rc, _ = rig.run("ip link show %s" % rig.ifname, check=False)
    assert rc != 0
    phase(times, "S50wgedge stop", t)
    hs_sorted = sorted(handshakes)
    print("    boot to handshake, %s: first boot %.1f s; %d boots: median %.1f s, %.1f-%.1f s"
          % (arch, handshakes[0], len(handshakes), hs_sorted[len(hs_sorted) // 2],
             hs_sorted[0], hs_sorted[-1]))
    print("    %-44s %6.1f s (%d boots)" % ("total (%s guest)" % arch,
                                           time.monotonic() - t_start, rig.boots))
    rig.done = True


def power_cut(rig, kind, rng, tmp_path):
    """Start writes of `kind` in a loop on the guest, cut the power at a random moment
    -> the config digests the next boot may find (None: any whole config; for a reload cut
    the old version, A, then the new, B)."""
    if kind == "keygen":
        # Key generation again and again: the config removed, the default installed, a key
        # generated and written, the interface started.
        loop = ("wgedge down >/dev/null 2>&1; rm -f {c}; /etc/init.d/S50wgedge start"
                .format(c=CONFIG))
        expect, delay = None, rng.uniform(0.5, 10.0)
    elif kind == "reload":
        # An edited file written atomically (the way our tools write: temporary file, sync,
        # rename, sync), then `wgedge reload`, alternating between two versions.
        _, pub = genkey()
        rig.run("cp %s /tmp/A && cp /tmp/A /tmp/B" % CONFIG)
        rig.append("/tmp/B", PEER_SECTION.format(ifname=rig.ifname, name="cut", public=pub,
                                                 net="10.77.2.0/24"))
        _, digests = rig.run("sha256sum /tmp/A /tmp/B")
        expect = [line.split()[0] for line in digests.splitlines() if line.strip()]  # A, B
        loop = ("for f in /tmp/B /tmp/A; do cp $f /etc/config/.wgedge.edit && sync && "
                "mv /etc/config/.wgedge.edit {c} && sync && wgedge reload {c}; done"
                .format(c=CONFIG))
        delay = rng.uniform(0.5, 8.0)
    else:
        # An upgrade written into the other slot (and its try marker), again and again.
        path = rig.download("rootfs2.upgrade")
        expect = [rig.config_digest()]
        loop = "wgedge-upgrade --no-reboot %s" % path
        delay = rng.uniform(0.5, 15.0)
    rig.background("while :; do %s; done" % loop)
    time.sleep(delay)
    print("    cut %-8s after %4.1f s" % (kind, delay), flush=True)
    rig.cut()
    return expect


def check_software(rig):
    """What the guest found and chose (crypto path, CPU), traffic, the watchdog."""
    arch = rig.arch
    _, info = rig.run("wgedge info", timeout=120)
    _, cpuinfo = rig.run("grep -m1 -i features /proc/cpuinfo")
    pinned = build.pinned_version(arch, "cryptography")
    assert "crypto: fast (cryptography %s " % pinned in info, info
    assert "AEAD fast path" in info and "slow path" not in info, info
    if arch == "armhf":
        assert "neon" not in cpuinfo.split(), cpuinfo
        assert "NEON/ASIMD no" in info, info
    else:
        assert "NEON/ASIMD yes" in info, info
    _, logged = rig.run("grep -E 'wgedge.*(crypto|cpu): ' /var/log/messages")
    assert "crypto: fast (cryptography %s " % pinned in logged and "cpu: " in logged, logged
    rc, _ = rig.run("grep -q 'slow path' /var/log/messages", check=False)
    assert rc == 1, "the daemon warned about a slow cryptography"

    rig.ping_both_ways()
    _, out = rig.run("wg show %s" % rig.ifname)
    assert rig.info["hub_public"] in out and "latest handshake" in out, out
    first_handshake = rig._handshake_since(0)

    # Byte-identical transfers, host -> guest and guest -> host.
    hub_ip, ns = rig.info["hub_ip"], rig.ns
    blob = os.urandom(BLOB)
    www = rig.tmp / "blob"
    www.mkdir()
    (www / "blob").write_bytes(blob)
    server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server",
                               "--bind", hub_ip, "--directory", str(www), "8080"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        rig.run("wget -q -O /tmp/blob http://%s:8080/blob" % hub_ip, timeout=300)
        _, out = rig.run("sha256sum /tmp/blob")
        assert out.split()[0] == hashlib.sha256(blob).hexdigest()
        rig.run("rm /tmp/blob; mkdir -p /tmp/www && head -c %d /dev/urandom > /tmp/www/up && "
                "httpd -p %s:8081 -h /tmp/www" % (BLOB, rig.guest_ip))
        _, out = rig.run("sha256sum /tmp/www/up")
        digest, size = host_fetch(ns, "http://%s:8081/up" % rig.guest_ip)
        assert (digest, size) == (out.split()[0], BLOB)
    finally:
        server.kill()
        server.wait()
    rig.run("killall httpd; rm -rf /tmp/www", check=False)
    _, mem = rig.run("grep -E 'VmHWM|VmRSS|RssAnon' /proc/$(cat /var/run/wgedge/%s.pid)/status"
                     % rig.ifname)
    print("    daemon memory after the transfers: %s" % " ".join(mem.split()), flush=True)

    # kill -9 the daemon: its watchdog starts a new one, which configures itself again.
    _, pid = rig.run("cat /var/run/wgedge/%s.pid" % rig.ifname)
    pid = pid.strip()
    rig.run("kill -9 %s" % pid)

    def restarted():
        rc, out = rig.run("cat /var/run/wgedge/%s.pid && wg show %s listen-port"
                          % (rig.ifname, rig.ifname), check=False)
        lines = out.split()
        return rc == 0 and lines[0] != pid and lines[-1] == rig.info["listen_port"]

    until("the watchdog to restart the daemon", restarted, 90, 1.0)
    until("ping guest -> host after the restart",
          lambda: rig.run("ping -c 1 -W 3 %s" % hub_ip, check=False)[0] == 0, 90, 0.5)
    until("a newer handshake at the host",
          lambda: (rig._handshake_since(0) or 0) > first_handshake, 60, 0.5)

