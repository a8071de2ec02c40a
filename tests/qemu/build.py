"""Build the offline QEMU test image for ARM from Debian's packages, laid out like router flash.

    python -m tests.qemu.build arm64|armhf      (make qemu-image ARCH=...)

writes .cache/qemu/ARCH/: vmlinuz (Debian's kernel), preinit.cpio.gz (board/common/mkpreinit:
the preinit script, BusyBox, e2fsck and the kernel modules it loads), disk.img (genimage with
board/qemu/genimage.cfg: a squashfs root in slot a, an empty slot b, an empty ext4 data
partition), rootfs.squashfs and rootfs2.squashfs (release 1 and 2, differing in
/etc/wgedge-image) with their upgrade files (board/common/mkupgrade), hub.key (the test host's
key, named as the hub in the image's default config) and image.txt.

The root holds Debian's python3, python3-pyroute2, busybox-static, iproute2, wireguard-tools and
e2fsprogs, the `cryptography` the firmware image ships (PyPI wheels for the guest's
architecture, pinned with their SHA-256 in tests/qemu/wheels-ARCH.txt, in place of Debian 12's
python3-cryptography 38, which takes wgedge's slow path), the wgedge package from this checkout,
the repository's rootfs_overlay/, board/common/rootfs_overlay/, the QEMU board's overlay
(/etc/wgedge-board) and tests/qemu/overlay/ (BusyBox init scripts, as a Buildroot image has
them). build(..., disk=False) packs the same root into one initramfs instead (initrd.gz, with
tests/qemu/overlay/init as PID 1): the benchmark guest (tests/bench/arm) boots that.

Nothing runs inside the target tree (mmdebstrap --variant=extract), so no emulation is needed
to build it. Downloaded packages are kept in .cache/qemu/debs-ARCH and wheels in
.cache/qemu/wheels-ARCH, and reused; a wheel is unpacked only when its SHA-256 is the pinned one.
The guest's Python tree is byte-compiled here, by this host's Python when it is the guest's
version."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

from tests.qemu import cpio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".cache", "qemu")
OVERLAY = os.path.join(ROOT, "tests", "qemu", "overlay")
SUITE = os.environ.get("WGEDGE_QEMU_SUITE", "bookworm")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = ["python3", "python3-pyroute2", "busybox-static", "iproute2", "wireguard-tools",
            "e2fsprogs"]
# PyPI has no armv7l wheel of cffi: there Debian's _cffi_backend serves cryptography's wheel.
ARCH_PACKAGES = {"arm64": [], "armhf": ["python3-cffi-backend"]}
KERNELS = {"arm64": "linux-image-arm64", "armhf": "linux-image-armmp"}
# The Buildroot board each test image stands in for: its board/qemu/DIR/rootfs_overlay gives
# /etc/wgedge-board, and its genimage.cfg the disk layout.
QEMU_BOARDS = {"arm64": "aarch64-virt", "armhf": "arm-virt"}
COMMON_OVERLAY = os.path.join(ROOT, "board", "common", "rootfs_overlay")
GENIMAGE_CFG = os.path.join(ROOT, "board", "qemu", "genimage.cfg")
PREINIT = os.path.join(ROOT, "board", "common", "preinit", "init")
MKPREINIT = os.path.join(ROOT, "board", "common", "mkpreinit")
MKUPGRADE = os.path.join(ROOT, "board", "common", "mkupgrade")
# Wheels: tests/qemu/wheels-ARCH.txt, `name==version --hash=sha256:HEX` per line. The guest's
# glibc (Debian 12: 2.36) runs any manylinux_2_X wheel with X <= 36.
WHEEL_PINS = os.path.join(ROOT, "tests", "qemu", "wheels-%s.txt")
WHEEL_MACHINES = {"arm64": "aarch64", "armhf": "armv7l"}
GUEST_GLIBC_MINOR = 36
# Built as modules by Debian's kernels; loaded by the preinit (or the initramfs image's /init)
# in this order, dependencies first. ext4 wants crc32c through the crypto API (a soft
# dependency, not in its depends= list): crc32c_generic is named before it.
MODULES = ["virtio_mmio", "virtio_blk", "squashfs", "crc32c_generic", "ext4", "virtio-rng",
           "virtio_net", "tun"]
# Parts of the Debian tree a router image does not carry (the image is an initramfs in RAM).
PRUNE = ["boot", "usr/share", "var/cache", "var/lib/apt", "usr/lib/firmware", "lib/firmware"]
PRUNE_GLOBS = [re.compile(r"usr/lib/python3\.\d+/(test|idlelib|tkinter|turtledemo|ensurepip|"
                          r"lib2to3|pydoc_data)$"),
               re.compile(r"usr/lib/[^/]+-linux-gnu[^/]*/gconv$"),
               re.compile(r"usr/lib/[^/]+-linux-gnu[^/]*/perl(-base)?$")]


class BuildError(Exception):
    pass


def step(n, total, text):
    print("[%d/%d] %s" % (n, total, text), flush=True)


def image_dir(arch):
    return os.path.join(CACHE, arch)


def debootstrap(arch, tree, extra_packages=()):
    debs = os.path.join(CACHE, "debs-" + arch)
    os.makedirs(debs, exist_ok=True)
    cached = len([f for f in os.listdir(debs) if f.endswith(".deb")])
    print("    %s %s from %s (%d packages already cached in %s)"
          % (SUITE, arch, MIRROR, cached, os.path.relpath(debs, ROOT)), flush=True)
    cmd = ["mmdebstrap", "--variant=extract", "--architectures=" + arch,
           "--include=" + ",".join(PACKAGES + ARCH_PACKAGES[arch] + list(extra_packages)
                                   + [KERNELS[arch]]),
           "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
           "--setup-hook=sync-in %s /var/cache/apt/archives/" % debs,
           # Extract mode runs no customize hooks: save the .debs right after extracting.
           "--extract-hook=sync-out /var/cache/apt/archives %s" % debs,
           SUITE, tree, MIRROR]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise BuildError("mmdebstrap failed (%d):\n%s" % (res.returncode, res.stdout[-3000:]))
    for line in res.stdout.splitlines():
        if line.startswith("I: ") and ("success" in line or "downloading" in line):
            print("    " + line, flush=True)


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)\s+--hash=sha256:([0-9a-f]{64})$")


def read_pins(path):
    """[(name, version, sha256)] from a wheels-ARCH.txt; BuildError on any other line."""
    pins = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = _PIN.match(line)
            if m is None:
                raise BuildError("%s:%d: expected 'name==version --hash=sha256:<64 hex>', "
                                 "got %r" % (os.path.relpath(path, ROOT), n, line))
            pins.append(m.groups())
    if not pins:
        raise BuildError("%s pins no wheel" % os.path.relpath(path, ROOT))
    return pins


def pinned_version(arch, name):
    """The version tests/qemu/wheels-ARCH.txt pins for `name`, or None."""
    for pin_name, version, _ in read_pins(WHEEL_PINS % arch):
        if pin_name == name:
            return version
    return None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _wheel_prefix(name, version):
    # A wheel's file name starts with its name normalized this way (PEP 427/491).
    return "%s-%s-" % (re.sub(r"[-_.]+", "_", name).lower(), version)


def find_wheel(directory, name, version):
    """The one wheel for name==version in `directory`, or None. BuildError if several."""
    prefix = _wheel_prefix(name, version)
    found = [f for f in sorted(os.listdir(directory))
             if f.endswith(".whl") and f.lower().startswith(prefix)]
    if len(found) > 1:
        raise BuildError("several wheels for %s==%s in %s: %s"
                         % (name, version, os.path.relpath(directory, ROOT), ", ".join(found)))
    return os.path.join(directory, found[0]) if found else None


def check_wheel(path, sha256):
    """Refuse a wheel whose SHA-256 is not the pinned one (a changed or damaged download)."""
    got = sha256_file(path)
    if got != sha256:
        raise BuildError("%s has SHA-256 %s, but the pin is %s: refusing it (delete it to "
                         "download again, or correct the pin)" % (path, got, sha256))


def fetch_wheels(arch, python, pins_path=None, directory=None):
    """The pinned wheels for `arch`, downloaded with pip once (pip itself checks the hashes
    with --require-hashes), then checked here again on every build -> [path]."""
    pins_path = pins_path or WHEEL_PINS % arch
    directory = directory or os.path.join(CACHE, "wheels-" + arch)
    pins = read_pins(pins_path)
    os.makedirs(directory, exist_ok=True)
    missing = [p for p in pins if find_wheel(directory, p[0], p[1]) is None]
    if missing:
        machine = WHEEL_MACHINES[arch]
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--require-hashes", "--dest", directory,
               "--python-version", python, "--implementation", "cp",
               "--abi", "cp" + python.replace(".", ""), "--abi", "abi3", "--abi", "none"]
        for minor in range(GUEST_GLIBC_MINOR, 16, -1):
            cmd += ["--platform", "manylinux_2_%d_%s" % (minor, machine)]
        req = os.path.join(directory, "requirements.txt")
        with open(req, "w") as f:
            f.write("".join("%s==%s --hash=sha256:%s\n" % p for p in missing))
        cmd += ["-r", req]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            raise BuildError("pip download of %s failed (%d):\n%s" % (
                ", ".join("%s==%s" % p[:2] for p in missing), res.returncode,
                res.stdout[-3000:]))
    paths = []
    for name, version, sha256 in pins:
        path = find_wheel(directory, name, version)
        if path is None:
            raise BuildError("pip left no wheel for %s==%s in %s" % (name, version, directory))
        check_wheel(path, sha256)
        paths.append(path)
    return paths


def install_wheels(tree, wheels):
    """Unpack wheels into the guest's dist-packages, as pip would for a pure or platlib wheel.
    A wheel with a .data directory (scripts, headers) or paths leaving the target is refused:
    none of the pinned ones has them."""
    import zipfile

    site = os.path.join(tree, "usr", "lib", "python3", "dist-packages")
    for path in wheels:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                top = name.split("/", 1)[0]
                if name.startswith("/") or ".." in name.split("/") or top.endswith(".data"):
                    raise BuildError("%s: unexpected entry %r" % (os.path.basename(path), name))
            for top in {n.split("/", 1)[0] for n in z.namelist()}:
                old = os.path.join(site, top)
                if os.path.isdir(old):
                    shutil.rmtree(old)
            z.extractall(site)
            for info in z.infolist():  # zipfile drops the mode bits: .so files need x
                mode = info.external_attr >> 16
                if mode & 0o777:
                    os.chmod(os.path.join(site, info.filename), mode & 0o777)


def module_depends(path):
    """The `depends=` list from a kernel module's .modinfo section."""
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    if m is None:
        return []
    return [d for d in m.group(1).decode().split(",") if d]


def install_modules(tree, out, modules=MODULES):
    """Keep only the modules /init loads, in dependency order; return the kernel version."""
    moddir = os.path.join(tree, "lib", "modules")
    versions = os.listdir(moddir)
    if len(versions) != 1:
        raise BuildError("expected one kernel in %s, found %s" % (moddir, versions))
    kver = versions[0]
    found = {}
    for dirpath, _, files in os.walk(os.path.join(moddir, kver)):
        for f in files:
            if f.endswith(".ko"):
                found[f[:-3].replace("-", "_")] = os.path.join(dirpath, f)
    order = []

    def visit(name):
        key = name.replace("-", "_")
        if key in order:
            return
        if key not in found:
            raise BuildError("kernel %s has no module %s (built in?)" % (kver, name))
        for dep in module_depends(found[key]):
            visit(dep)
        order.append(key)

    for name in modules:
        visit(name)
    dest = os.path.join(tree, "lib", "modules", "wgedge-test")
    os.makedirs(dest)
    names = []
    for key in order:
        base = os.path.basename(found[key])
        shutil.copy2(found[key], os.path.join(dest, base))
        names.append(base)
    with open(os.path.join(dest, "load.list"), "w") as f:
        f.write("\n".join(names) + "\n")
    shutil.rmtree(os.path.join(moddir, kver))
    kernel = [f for f in os.listdir(os.path.join(tree, "boot")) if f.startswith("vmlinuz-")]
    shutil.copy2(os.path.join(tree, "boot", kernel[0]), os.path.join(out, "vmlinuz"))
    return kver, names


def prune(tree):
    for rel in PRUNE:
        path = os.path.join(tree, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
    for dirpath, dirnames, _ in os.walk(tree):
        for d in list(dirnames):
            rel = os.path.relpath(os.path.join(dirpath, d), tree)
            if any(p.match(rel) for p in PRUNE_GLOBS):
                shutil.rmtree(os.path.join(dirpath, d))
                dirnames.remove(d)


def guest_python(tree):
    for d in sorted(os.listdir(os.path.join(tree, "usr", "lib"))):
        m = re.match(r"python3\.(\d+)$", d)
        if m:
            return "3." + m.group(1)
    raise BuildError("no python3.X in the target tree")


def check_no_debian_cryptography(tree):
    """Before the wheels go in: a package that pulled in Debian's python3-cryptography again
    would leave the slow 38.0.4 beside (or under) the pinned wheel."""
    site = os.path.join(tree, "usr", "lib", "python3", "dist-packages")
    found = [f for f in os.listdir(site) if f == "cryptography" or f.startswith("cryptography-")]
    if found:
        raise BuildError("Debian's python3-cryptography is in the tree (%s): some package in "
                         "PACKAGES depends on it" % ", ".join(sorted(found)))


def install_wgedge(tree):
    site = os.path.join(tree, "usr", "lib", "python3", "dist-packages", "wgedge")
    shutil.copytree(os.path.join(ROOT, "wgedge"), site,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    script = os.path.join(tree, "usr", "bin", "wgedge")
    with open(script, "w") as f:
        f.write("#!/usr/bin/python3\nimport sys\n\nfrom wgedge.cli import main\n\n"
                "sys.exit(main())\n")
    os.chmod(script, 0o755)


def copy_overlay(src, tree):
    """Like Buildroot's BR2_ROOTFS_OVERLAY: files replace what the packages put there."""
    for dirpath, _, files in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        os.makedirs(os.path.join(tree, rel), exist_ok=True)
        for f in files:
            dst = os.path.join(tree, rel, f)
            if os.path.lexists(dst):
                os.unlink(dst)
            shutil.copy2(os.path.join(dirpath, f), dst)


def skeleton(tree):
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "var/log", "etc/init.d"):
        os.makedirs(os.path.join(tree, d), exist_ok=True)
    os.chmod(os.path.join(tree, "tmp"), 0o1777)
    var_run = os.path.join(tree, "var", "run")
    if os.path.isdir(var_run) and not os.path.islink(var_run):
        shutil.rmtree(var_run)
    if not os.path.lexists(var_run):
        os.symlink("../run", var_run)
    for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
                       ("etc/group", "root:x:0:\n"),
                       ("etc/hosts", "127.0.0.1\tlocalhost\n")):
        path = os.path.join(tree, name)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(text)


def byte_compile(tree, version):
    if "%d.%d" % sys.version_info[:2] != version:
        print("    skipped: this host runs Python %d.%d, the guest %s (imports in the guest "
              "will compile on the fly)" % (sys.version_info[:2] + (version,)), flush=True)
        return
    dirs = [os.path.join(tree, "usr", "lib", "python" + version),
            os.path.join(tree, "usr", "lib", "python3", "dist-packages")]
    res = subprocess.run([sys.executable, "-m", "compileall", "-q", "-j0",
                          "--invalidation-mode", "unchecked-hash", "-s", tree, "-p", "/"]
                         + dirs, capture_output=True, text=True)
    # A few files of the stdlib are Python 2 examples or need optional modules: compileall
    # reports them and goes on; anything it did compile is used.
    if res.returncode not in (0, 1):
        raise BuildError("compileall failed:\n" + res.stdout + res.stderr)


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def pack(tree, out):
    initrd = os.path.join(out, "initrd.gz")
    tmp = initrd + ".tmp"
    arc = cpio.Archive(tmp)
    arc.add_tree(tree)
    arc.add_chardev("dev/console", 5, 1)
    arc.add_chardev("dev/null", 1, 3, 0o666)
    arc.close()
    os.replace(tmp, initrd)
    return initrd, arc.count


def busybox_applets(path):
    """The applet names compiled into a BusyBox binary: its `applet_names` table is one run of
    NUL-terminated names from "[" and "[[" on, ended by an empty name. Read from the file
    because the target's BusyBox cannot run on the build host."""
    with open(path, "rb") as f:
        data = f.read()
    start = data.find(b"\0[\0[[\0")
    if start < 0:
        raise BuildError("no applet table in %s" % path)
    names = data[start + 1:data.index(b"\0\0", start + 1)].decode().split("\0")
    if "sh" not in names or "init" not in names or "switch_root" not in names:
        raise BuildError("%s: applet table without sh, init or switch_root" % path)
    return names


def busybox_links(tree):
    """What `busybox --install -s` does at boot, done here: the root is a read-only squashfs.
    Each applet gets a link beside the BusyBox binary unless a package ships that command
    (coreutils' cat, iproute2's ip, e2fsprogs' tools, ...); /sbin/init is BusyBox init."""
    bindir = os.path.join(tree, "bin")
    names = busybox_applets(os.path.join(bindir, "busybox"))
    made = 0
    for name in names:
        if any(os.path.lexists(os.path.join(tree, d, name))
               for d in ("usr/bin", "usr/sbin", "bin", "sbin")):
            continue
        os.symlink("busybox", os.path.join(bindir, name))
        made += 1
    init = os.path.join(tree, "sbin", "init")
    if os.path.lexists(init):
        os.unlink(init)
    os.symlink("../bin/busybox", init)
    return made


def hub_key(out):
    """The test host's key pair, made once per image directory: the image's default config
    names its public key as the hub (the host end every test guest connects to)."""
    path = os.path.join(out, "hub.key")
    if not os.path.exists(path):
        priv = subprocess.run(["wg", "genkey"], capture_output=True, text=True,
                              check=True).stdout.strip()
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(priv + "\n")
        os.replace(path + ".tmp", path)
    with open(path) as f:
        priv = f.read().strip()
    pub = subprocess.run(["wg", "pubkey"], input=priv + "\n", capture_output=True, text=True,
                         check=True).stdout.strip()
    return pub


DEFAULT_CONFIG = os.path.join("usr", "share", "wgedge", "default-config")
HUB_SECTION = """
# Added by the QEMU test image build (tests/qemu/build.py): the test host as this device's
# hub, so that a device booted from this image reaches it with no action on the device.
config wireguard_{ifname} 'hub'
	option description 'the QEMU test host'
	option public_key '{hub_public}'
	list allowed_ips '{hub_ip}/32'
	option endpoint_host '10.0.2.2'
	option endpoint_port '{hub_port}'
	option persistent_keepalive '25'
"""
HUB_PORT = 51900


def test_default_config(tree, out):
    """The image's default config (the one rootfs_overlay/ ships) plus the test host as a peer.
    -> {guest_if, guest_ip, listen_port, hub_ip, hub_port} for image.txt."""
    path = os.path.join(tree, DEFAULT_CONFIG)
    if not os.path.exists(path):
        raise BuildError("the image has no /%s (rootfs_overlay/ ships it)" % DEFAULT_CONFIG)
    with open(path) as f:
        text = f.read()
    ifname = re.search(r"^config interface '(\w+)'", text, re.M)
    address = re.search(r"^\s*list addresses '(\d+\.\d+\.\d+)\.(\d+)/\d+'", text, re.M)
    port = re.search(r"^\s*option listen_port '(\d+)'", text, re.M)
    if not (ifname and address and port) or "'generate'" not in text:
        raise BuildError("/%s: expected an interface with private_key 'generate', a "
                         "listen_port and an IPv4 address" % DEFAULT_CONFIG)
    guest_ip = "%s.%s" % address.groups()
    hub_ip = "%s.%d" % (address.group(1), 2 if address.group(2) != "2" else 1)
    hub_public = hub_key(out)
    with open(path, "a") as f:
        f.write(HUB_SECTION.format(ifname=ifname.group(1), hub_public=hub_public,
                                   hub_ip=hub_ip, hub_port=HUB_PORT))
    return {"guest_if": ifname.group(1), "guest_ip": guest_ip, "listen_port": port.group(1),
            "hub_ip": hub_ip, "hub_port": HUB_PORT, "hub_public": hub_public}


def read_only_root(tree):
    """Mount points and links a squashfs root needs: /data and an empty /etc/config (the
    preinit mounts the data partition and binds its etc/config there), /var/log in the /tmp
    tmpfs as on Buildroot, and no /init (the preinit is the initramfs)."""
    os.makedirs(os.path.join(tree, "data"), exist_ok=True)
    config = os.path.join(tree, "etc", "config")
    if os.path.isdir(config):
        shutil.rmtree(config)
    os.makedirs(config)
    log = os.path.join(tree, "var", "log")
    if os.path.isdir(log) and not os.path.islink(log):
        shutil.rmtree(log)
    if not os.path.lexists(log):
        os.symlink("../tmp", log)
    if os.path.exists(os.path.join(tree, "init")):
        os.unlink(os.path.join(tree, "init"))


def squashfs(tree, path):
    """mksquashfs with the compression the Buildroot defconfigs choose (zstd: quick to
    unpack on a slow CPU), every file owned by root."""
    res = subprocess.run(["mksquashfs", tree, path + ".tmp", "-noappend", "-all-root",
                          "-comp", "zstd", "-no-progress", "-quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise BuildError("mksquashfs failed (%d):\n%s" % (res.returncode, res.stdout[-2000:]))
    os.replace(path + ".tmp", path)


def genimage(out):
    """The disk image from board/qemu/genimage.cfg (the QEMU boards' own), with this build's
    rootfs.squashfs in slot a -> the path of disk.img."""
    tmp = os.path.join(out, "genimage.tmp")
    empty_root = os.path.join(out, "genimage.root")
    for d in (tmp, empty_root):
        if os.path.exists(d):
            shutil.rmtree(d)
    os.makedirs(empty_root)
    res = subprocess.run(["genimage", "--config", GENIMAGE_CFG, "--inputpath", out,
                          "--outputpath", out, "--rootpath", empty_root, "--tmppath", tmp],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    shutil.rmtree(empty_root)
    shutil.rmtree(tmp, ignore_errors=True)
    if res.returncode != 0:
        raise BuildError("genimage failed (%d):\n%s" % (res.returncode, res.stdout[-3000:]))
    return os.path.join(out, "disk.img")


def mkupgrade(board, squashfs_path, out_path):
    if not os.path.exists(MKUPGRADE):
        print("    no %s yet: no upgrade file" % os.path.relpath(MKUPGRADE, ROOT), flush=True)
        return
    res = subprocess.run([sys.executable, MKUPGRADE, "--board", board, squashfs_path,
                          out_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    if res.returncode != 0:
        raise BuildError("mkupgrade failed (%d):\n%s" % (res.returncode, res.stdout[-2000:]))


def write_info(out, info):
    with open(os.path.join(out, "image.txt"), "w") as f:
        f.write("".join("%s=%s\n" % kv for kv in info.items()))


def read_info(out):
    """image.txt of a built image -> {key: value}."""
    with open(os.path.join(out, "image.txt")) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def build(arch, out=None, extra_packages=(), extra_modules=(), disk=True):
    """-> the output directory (image_dir(arch) unless `out`). `disk`: the router-flash disk
    image (disk.img, preinit.cpio.gz, two upgrade files); otherwise one initramfs holding the
    whole system (initrd.gz), which the benchmark guest boots (tests/bench/arm adds
    wireguard-go, iperf3 and veth through the extras)."""
    if arch not in KERNELS:
        raise BuildError("ARCH must be one of %s, not %r" % (", ".join(KERNELS), arch))
    needed = ["mmdebstrap"] + (["mksquashfs", "genimage", "wg"] if disk else [])
    for tool in needed:
        if shutil.which(tool) is None:
            raise BuildError("%s is not installed (make qemu-apt installs it)" % tool)
    out = out or image_dir(arch)
    tree = os.path.join(out, "rootfs")
    if os.path.exists(tree):
        shutil.rmtree(tree)
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    total = 9 if disk else 7
    step(1, total, "Debian packages for %s (mmdebstrap --variant=extract)" % arch)
    debootstrap(arch, tree, extra_packages)
    version = guest_python(tree)
    step(2, total, "pinned wheels for %s, Python %s (%s)"
         % (arch, version, os.path.relpath(WHEEL_PINS % arch, ROOT)))
    wheels = fetch_wheels(arch, version)
    check_no_debian_cryptography(tree)
    install_wheels(tree, wheels)
    print("    " + " ".join(os.path.basename(w) for w in wheels), flush=True)
    step(3, total, "kernel and modules")
    kver, mods = install_modules(tree, out, MODULES + list(extra_modules))
    print("    kernel %s; modules %s" % (kver, " ".join(mods)), flush=True)
    step(4, total, "prune what the image does not need")
    before = du(tree)
    prune(tree)
    print("    %.0f MB -> %.0f MB" % (before / 1e6, du(tree) / 1e6), flush=True)
    step(5, total, "wgedge, rootfs_overlay/, board overlays and tests/qemu/overlay/")
    install_wgedge(tree)
    skeleton(tree)
    for overlay in (os.path.join(ROOT, "rootfs_overlay"), COMMON_OVERLAY,
                    os.path.join(ROOT, "board", "qemu", QEMU_BOARDS[arch], "rootfs_overlay"),
                    OVERLAY):
        copy_overlay(overlay, tree)
    subprocess.run(["sh", os.path.join(ROOT, "board", "common", "post-build.sh"), tree],
                   check=True)
    with open(os.path.join(tree, "etc", "wgedge-board")) as f:
        board = f.read().strip()
    info = {"arch": arch, "suite": SUITE, "kernel": kver, "python": version,
            "wheels": " ".join(os.path.basename(w) for w in wheels), "board": board}
    if disk:
        info.update(test_default_config(tree, out))
        read_only_root(tree)
        print("    %d BusyBox applet links; /etc/wgedge-board %s; hub %s:%s"
              % (busybox_links(tree), board, info["hub_ip"], info["hub_port"]), flush=True)
    step(6, total, "byte-compile the guest's Python %s tree" % version)
    byte_compile(tree, version)
    if not disk:
        step(7, total, "pack the initramfs")
        initrd, count = pack(tree, out)
        info.update(files=count, initrd_bytes=os.path.getsize(initrd))
        write_info(out, info)
        shutil.rmtree(tree)
        print("    %s: %d entries, %.1f MB; %s in %.0f s" % (
            os.path.relpath(initrd, ROOT), count, info["initrd_bytes"] / 1e6,
            os.path.relpath(os.path.join(out, "vmlinuz"), ROOT), time.monotonic() - t0),
            flush=True)
        return out
    step(7, total, "preinit initramfs (board/common/mkpreinit)")
    modules = os.path.join(tree, "lib", "modules", "wgedge-test")
    preinit = os.path.join(out, "preinit.cpio.gz")
    subprocess.run([sys.executable, MKPREINIT, "--root", tree, "--init", PREINIT,
                    "--binary", "/bin/busybox", "--binary", "/sbin/e2fsck",
                    "--modules", modules, preinit], check=True)
    shutil.rmtree(modules)  # loaded by the preinit: the root needs none
    step(8, total, "two squashfs roots (release 1 and 2) and their upgrade files")
    for release, name in ((1, "rootfs"), (2, "rootfs2")):
        with open(os.path.join(tree, "etc", "wgedge-image"), "w") as f:
            f.write("wgedge QEMU test image, release %d\n" % release)
        squashfs(tree, os.path.join(out, name + ".squashfs"))
        mkupgrade(board, os.path.join(out, name + ".squashfs"),
                  os.path.join(out, name + ".upgrade"))
        info[name + "_bytes"] = os.path.getsize(os.path.join(out, name + ".squashfs"))
        print("    %s.squashfs %.1f MB" % (name, info[name + "_bytes"] / 1e6), flush=True)
    step(9, total, "disk image (genimage, %s)" % os.path.relpath(GENIMAGE_CFG, ROOT))
    image = genimage(out)
    info["disk_bytes"] = os.path.getsize(image)
    write_info(out, info)
    shutil.rmtree(tree)
    print("    %s: %d MB (sparse); %s in %.0f s" % (
        os.path.relpath(image, ROOT), info["disk_bytes"] // 2**20,
        os.path.relpath(preinit, ROOT), time.monotonic() - t0), flush=True)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tests.qemu.build arm64|armhf", file=sys.stderr)
        return 2
    try:
        build(argv[0])
    except BuildError as exc:
        print("qemu-image: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
