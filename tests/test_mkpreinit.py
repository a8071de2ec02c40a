"""board/common/mkpreinit: the preinit initramfs every image boots (and the QEMU test's).

Checked against this host's own programs (readelf's view of them is the reference), in a
copy of the parts of the host's tree they need, so the tool's lookups stay inside the root
it is given.
"""

import gzip
import os
import shutil
import stat
import subprocess

import pytest

from tests.qemu import cpio
from tests.qemu.build import busybox_applets

mkpreinit = cpio.mkpreinit
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "board", "common", "mkpreinit")
PREINIT = os.path.join(ROOT, "board", "common", "preinit", "init")


def entries(path):
    """{name: (mode, data)} of a gzip cpio newc archive."""
    data = gzip.decompress(open(path, "rb").read())
    out, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_at = pos + 110
        name = data[name_at:name_at + namesize - 1].decode()
        body_at = name_at + namesize + (-(110 + namesize) % 4)
        if name == cpio.TRAILER:
            return out
        out[name] = (mode, data[body_at:body_at + size])
        pos = body_at + size + (-size % 4)


def readelf_needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def readelf_interp(path):
    out = subprocess.run(["readelf", "-l", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Requesting program interpreter:" in line:
            return line.split(":", 1)[1].strip().rstrip("]")
    return None


@pytest.fixture
def e2fsck():
    path = shutil.which("e2fsck") or "/usr/sbin/e2fsck"
    if not os.path.exists(path) or shutil.which("readelf") is None:
        pytest.skip("needs e2fsck and readelf on the host")
    return os.path.realpath(path)


def test_elf_dependencies_agree_with_readelf(e2fsck):
    interp, needed = mkpreinit.elf_dependencies(open(e2fsck, "rb").read(), e2fsck)
    assert needed == readelf_needed(e2fsck) and "libext2fs.so.2" in needed
    assert interp == readelf_interp(e2fsck)
    with pytest.raises(mkpreinit.Error, match="not an ELF file"):
        mkpreinit.elf_dependencies(b"#!/bin/sh\n", "script")


def test_archive_has_init_binary_loader_and_every_library(e2fsck, tmp_path):
    out = tmp_path / "preinit.cpio.gz"
    modules = tmp_path / "mods"
    modules.mkdir()
    (modules / "load.list").write_text("a.ko\n")
    (modules / "a.ko").write_bytes(b"\0module")
    res = subprocess.run([TOOL, "--root", "/", "--init", PREINIT, "--binary", e2fsck,
                          "--modules", str(modules), str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = entries(str(out))
    mode, data = got["init"]
    assert data == open(PREINIT, "rb").read() and stat.S_IMODE(mode) == 0o755
    assert stat.S_ISCHR(got["dev/console"][0])
    assert got[e2fsck.lstrip("/")][1] == open(e2fsck, "rb").read()
    assert readelf_interp(e2fsck).lstrip("/") in got
    # every library, and the libraries of those libraries, in /lib where the loader looks
    wanted, seen = set(readelf_needed(e2fsck)), set()
    while wanted - seen:
        lib = (wanted - seen).pop()
        seen.add(lib)
        assert "lib/" + lib in got, lib
        mode, data = got["lib/" + lib]
        assert stat.S_ISREG(mode) and data[:4] == b"\x7fELF"
        host = tmp_path / lib
        host.write_bytes(data)
        wanted |= set(readelf_needed(str(host)))
    assert got["lib/modules/preinit/load.list"][1] == b"a.ko\n"
    for d in ("proc", "sys", "dev", "data", "newroot", "tmp", "run"):
        assert stat.S_ISDIR(got[d][0]), d


def test_links_resolve_inside_the_root_and_missing_pieces_are_named(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    os.symlink("usr/bin", root / "bin")  # merged /usr, relative
    os.symlink("/usr/bin/real", root / "usr" / "bin" / "tool")  # absolute: inside the root
    (root / "usr" / "bin" / "real").write_bytes(b"x")
    assert mkpreinit.inside(str(root), "/bin/tool") == str(root / "usr" / "bin" / "real")
    with pytest.raises(mkpreinit.Error, match="/sbin/e2fsck is not in"):
        mkpreinit.collect(str(root), ["/sbin/e2fsck"])
    res = subprocess.run([TOOL, "--root", str(root), "--init", PREINIT, "--binary",
                          "/sbin/e2fsck", str(tmp_path / "out.gz")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("mkpreinit: ")
    assert "Traceback" not in res.stderr and not (tmp_path / "out.gz").exists()


def test_busybox_applet_table_is_read_from_the_binary(tmp_path):
    fake = tmp_path / "busybox"
    fake.write_bytes(b"\x7fELF junk\0[\0[[\0ash\0init\0sh\0switch_root\0\0more")
    assert busybox_applets(str(fake)) == ["[", "[[", "ash", "init", "sh", "switch_root"]
    fake.write_bytes(b"\x7fELF no table")
    with pytest.raises(Exception, match="no applet table"):
        busybox_applets(str(fake))
