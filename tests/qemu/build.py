"""Build the offline QEMU test image for ARM from Debian's packages.

    python -m tests.qemu.build arm64|armhf      (make qemu-image ARCH=...)

writes .cache/qemu/ARCH/{vmlinuz,initrd.gz,image.txt}: Debian's kernel for the architecture
and one gzip cpio initramfs holding Debian's python3, python3-cryptography, python3-pyroute2,
busybox-static, iproute2 and wireguard-tools, the wgedge package from this checkout, the
repository's rootfs_overlay/ (S50wgedge, /etc/config/wgedge, sysctl settings) and
tests/qemu/overlay/ (a /init and BusyBox init scripts, as a Buildroot image has them).

Nothing runs inside the target tree (mmdebstrap --variant=extract), so no emulation is needed
to build it. Downloaded packages are kept in .cache/qemu/debs-ARCH and reused. The guest's
Python tree is byte-compiled here, by this host's Python when it is the guest's version.
"""

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
PACKAGES = ["python3", "python3-cryptography", "python3-pyroute2", "busybox-static",
            "iproute2", "wireguard-tools"]
KERNELS = {"arm64": "linux-image-arm64", "armhf": "linux-image-armmp"}
# Built as modules by Debian's kernels; loaded by /init in this order (dependencies first).
MODULES = ["virtio_mmio", "virtio-rng", "virtio_net", "tun"]
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
           "--include=" + ",".join(PACKAGES + list(extra_packages) + [KERNELS[arch]]),
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


def build(arch, out=None, extra_packages=(), extra_modules=()):
    """-> the output directory (image_dir(arch) unless `out`). The extras are for images built
    on top of this one (tests/bench/arm adds wireguard-go, iperf3 and veth)."""
    if arch not in KERNELS:
        raise BuildError("ARCH must be one of %s, not %r" % (", ".join(KERNELS), arch))
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is not installed (make qemu-image installs it)")
    out = out or image_dir(arch)
    tree = os.path.join(out, "rootfs")
    if os.path.exists(tree):
        shutil.rmtree(tree)
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    total = 6
    step(1, total, "Debian packages for %s (mmdebstrap --variant=extract)" % arch)
    debootstrap(arch, tree, extra_packages)
    step(2, total, "kernel and modules")
    kver, mods = install_modules(tree, out, MODULES + list(extra_modules))
    print("    kernel %s; modules %s" % (kver, " ".join(mods)), flush=True)
    step(3, total, "prune what the image does not need")
    before = du(tree)
    prune(tree)
    print("    %.0f MB -> %.0f MB" % (before / 1e6, du(tree) / 1e6), flush=True)
    step(4, total, "wgedge, rootfs_overlay/ and tests/qemu/overlay/")
    install_wgedge(tree)
    skeleton(tree)
    copy_overlay(os.path.join(ROOT, "rootfs_overlay"), tree)
    copy_overlay(OVERLAY, tree)
    subprocess.run(["sh", os.path.join(ROOT, "board", "common", "post-build.sh"), tree],
                   check=True)
    version = guest_python(tree)
    step(5, total, "byte-compile the guest's Python %s tree" % version)
    byte_compile(tree, version)
    step(6, total, "pack the initramfs")
    initrd, count = pack(tree, out)
    size = os.path.getsize(initrd)
    with open(os.path.join(out, "image.txt"), "w") as f:
        f.write("arch=%s\nsuite=%s\nkernel=%s\npython=%s\nfiles=%d\ninitrd_bytes=%d\n"
                % (arch, SUITE, kver, version, count, size))
    shutil.rmtree(tree)
    print("    %s: %d entries, %.1f MB; %s in %.0f s" % (
        os.path.relpath(initrd, ROOT), count, size / 1e6,
        os.path.relpath(os.path.join(out, "vmlinuz"), ROOT), time.monotonic() - t0),
        flush=True)
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
