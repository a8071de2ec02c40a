"""The instruction-counting plugin (insncount.c): built here at bench time, read from the host.

QEMU's plugin header (qemu-plugin.h) is not in Debian's QEMU binary packages. It is taken from
the source package of the installed QEMU (`apt-get source`, with a private source list and
package index under .cache/qemu/plugin, so the host's apt configuration is left alone), used
only to compile, and kept in that cache: later builds need no network.
"""

import os
import struct
import subprocess

from tests.qemu.build import CACHE

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(CACHE, "plugin")
SOURCE = os.path.join(HERE, "insncount.c")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
MAX_VCPUS, SLOT_WORDS = 64, 8  # as in insncount.c
# Where Linux's kernel space begins, for each guest (insncount.c decides user or kernel by the
# address of each translation block). arm64: the upper half (bit 63 set). armhf: Debian's armmp
# kernel splits 3G/1G, PAGE_OFFSET 0xc0000000, with modules 16 MB below it; the guest
# benchmark checks that the running kernel's _stext is above this.
KERNEL_BASE = {"arm64": 0x8000000000000000, "armhf": 0xbf000000}


class PluginError(Exception):
    pass


def qemu_source_version():
    res = subprocess.run(["dpkg-query", "-W", "-f", "${source:Version}", "qemu-system-arm"],
                         capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout:
        raise PluginError("qemu-system-arm is not installed (make bench-arm installs it)")
    return res.stdout.strip()


def header_dir(version):
    """The directory holding qemu-plugin.h of QEMU `version`, fetched once."""
    include = os.path.join(WORK, "include-" + version.replace(":", "_"))
    if os.path.exists(os.path.join(include, "qemu-plugin.h")):
        return include
    apt = os.path.join(WORK, "apt")
    for d in ("lists/partial", "cache/archives/partial", "parts"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "sources.list"), "w") as f:
        f.write("deb-src %s bookworm main\n" % MIRROR)
    opts = ["-o", "Dir::Etc::SourceList=" + os.path.join(apt, "sources.list"),
            "-o", "Dir::Etc::SourceParts=" + os.path.join(apt, "parts"),
            "-o", "Dir::State::Lists=" + os.path.join(apt, "lists"),
            "-o", "Dir::Cache=" + os.path.join(apt, "cache"), "-qq"]
    src = os.path.join(WORK, "src")
    os.makedirs(src, exist_ok=True)
    print("    qemu-plugin.h: fetching Debian's qemu %s source package (about 24 MB, once)"
          % version, flush=True)
    for cmd in (["apt-get"] + opts + ["update"],
                ["apt-get"] + opts + ["source", "--download-only", "qemu=" + version]):
        res = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
        if res.returncode != 0:
            raise PluginError("%s failed:\n%s%s" % (" ".join(cmd[:1] + cmd[-2:]), res.stdout,
                                                    res.stderr))
    tarballs = [f for f in os.listdir(src) if ".orig.tar." in f]
    if not tarballs:
        raise PluginError("no orig tarball of qemu %s in %s" % (version, src))
    os.makedirs(include, exist_ok=True)
    res = subprocess.run(["tar", "-xf", os.path.join(src, tarballs[0]), "-C", include,
                          "--wildcards", "--strip-components=3", "*/include/qemu/qemu-plugin.h"],
                         capture_output=True, text=True)
    if res.returncode != 0 or not os.path.exists(os.path.join(include, "qemu-plugin.h")):
        raise PluginError("qemu-plugin.h not found in %s:\n%s" % (tarballs[0], res.stderr))
    for f in os.listdir(src):  # the header is all that is kept
        os.unlink(os.path.join(src, f))
    return include


def build_plugin():
    """-> path of insncount.so, compiled for the installed QEMU (when the source changed)."""
    include = header_dir(qemu_source_version())
    so = os.path.join(WORK, "insncount.so")
    if (os.path.exists(so) and os.path.getmtime(so) >= os.path.getmtime(SOURCE)
            and os.path.getmtime(so) >= os.path.getmtime(os.path.join(include, "qemu-plugin.h"))):
        return so
    res = subprocess.run(["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-I", include, "-o", so,
                          SOURCE], capture_output=True, text=True)
    if res.returncode != 0:
        raise PluginError("gcc insncount.c failed:\n" + res.stderr)
    return so


def qemu_args(so, counters_path, arch):
    return ["-plugin", "%s,out=%s,kernel=0x%x" % (so, counters_path, KERNEL_BASE[arch])]


def read_counters(path):
    """-> (user, kernel) instructions executed so far, summed over the vCPUs."""
    with open(path, "rb") as f:
        data = f.read(MAX_VCPUS * SLOT_WORDS * 8)
    user = kernel = 0
    for i in range(MAX_VCPUS):
        u, k = struct.unpack_from("<QQ", data, i * SLOT_WORDS * 8)
        user += u
        kernel += k
    return user, kernel
