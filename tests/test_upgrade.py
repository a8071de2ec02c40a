"""The upgrade file (board/common/mkupgrade, wgedge/router/upgradefile.py) and wgedge-upgrade
(wgedge/router/upgrade.py), with plain files as the slot devices: a refused file writes
nothing, a good one is written, read back and marked, --confirm and --status."""

import hashlib
import os
import stat
import struct
import subprocess
import sys
import tracemalloc

import pytest

from tests.netns import ROOT
from wgedge.router import atomicfile, upgrade, upgradefile

MKUPGRADE = os.path.join(ROOT, "board", "common", "mkupgrade")
ENTRY = os.path.join(ROOT, "rootfs_overlay", "usr", "sbin", "wgedge-upgrade")
CONFIRM_SCRIPT = os.path.join(ROOT, "rootfs_overlay", "etc", "init.d", "S99wgedge-confirm")
BOARD = "qemu-aarch64-virt"
SLOT_SIZE = 1 << 20


def payload(n=300_000, seed=b"1"):
    """Bytes that start like a squashfs image, more than one CHUNK long."""
    out, block = bytearray(b"hsqs"), seed
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def mkupgrade(tmp_path, data, board=BOARD, name="new.upgrade"):
    rootfs, out = tmp_path / (name + ".squashfs"), tmp_path / name
    rootfs.write_bytes(data)
    subprocess.run([MKUPGRADE, "--board", board, str(rootfs), str(out)], check=True,
                   capture_output=True, timeout=60)
    return out


class Board:
    """A router in a directory: two slot "devices", the preinit's files, the data partition's
    boot markers, the board name, and a reboot command that only counts."""

    def __init__(self, tmp_path, booted="a", trying=False):
        self.dir = tmp_path / "router"
        self.dir.mkdir()
        self.slots = {}
        for s in "ab":
            self.slots[s] = self.dir / ("slot_" + s)
            self.slots[s].write_bytes(bytes([ord(s)]) * SLOT_SIZE)
        self.boot_file = self.dir / "wgedge-boot"
        self.boot_file.write_text("slot=%s\ndevice=%s\ntrying=%d\n"
                                  % (booted, self.slots[booted], trying))
        self.cmdline = self.dir / "cmdline"
        self.cmdline.write_text("console=ttyAMA0 wgedge.slot_a=%s wgedge.slot_b=%s "
                                "wgedge.data=/dev/vda3 rootwait\n" % (self.slots["a"],
                                                                      self.slots["b"]))
        self.boot_dir = self.dir / "data" / "boot"
        self.boot_dir.mkdir(parents=True)
        self.board_file = self.dir / "wgedge-board"
        self.board_file.write_text(BOARD + "\n")
        self.reboots = self.dir / "reboots"
        self.reboot = self.dir / "reboot"
        self.reboot.write_text("#!/bin/sh\necho reboot >> %s\n" % self.reboots)
        self.reboot.chmod(0o755)

    def options(self):
        return ["--boot-file", str(self.boot_file), "--boot-dir", str(self.boot_dir),
                "--cmdline", str(self.cmdline), "--board-file", str(self.board_file),
                "--reboot-command", str(self.reboot)]

    def env(self):
        return dict(os.environ, PYTHONPATH=ROOT, WGEDGE_BOOT_FILE=str(self.boot_file),
                    WGEDGE_BOOT_DIR=str(self.boot_dir), WGEDGE_CMDLINE=str(self.cmdline),
                    WGEDGE_BOARD_FILE=str(self.board_file), WGEDGE_REBOOT_COMMAND=str(self.reboot))

    def run(self, *args):
        """wgedge-upgrade as the router runs it: the entry script, paths from the environment."""
        return subprocess.run([sys.executable, ENTRY] + list(args), env=self.env(),
                              capture_output=True, text=True, timeout=120)

    def snapshot(self):
        files = {p: p.read_bytes() for p in self.dir.rglob("*") if p.is_file()}
        return files, sorted(str(p) for p in self.dir.rglob("*"))

    def markers(self):
        return {p.name: p.read_text() for p in self.boot_dir.iterdir()}

    def reboot_count(self):
        return len(self.reboots.read_text().splitlines()) if self.reboots.exists() else 0


@pytest.fixture
def board(tmp_path):
    return Board(tmp_path)


# --- the file format -----------------------------------------------------------------------------
def test_mkupgrade_writes_the_payload_then_the_documented_trailer(tmp_path):
    data = payload()
    out = mkupgrade(tmp_path, data).read_bytes()
    # docs/firmware.md, byte by byte, without the module's struct
    trailer = (b"WGEDGEUP" + (1).to_bytes(4, "big") + BOARD.encode().ljust(32, b"\0")
               + len(data).to_bytes(8, "big") + hashlib.sha256(data).digest())
    assert len(trailer) == 84 == upgradefile.TRAILER.size
    assert out == data + trailer
    assert stat.S_IMODE(os.stat(MKUPGRADE).st_mode) & 0o111


@pytest.mark.parametrize("args, message", [
    (["--board", "bad name"], "a board name is"),
    (["--board", "x" * 33], "a board name is"),
    ([], "the following arguments are required: --board"),
])
def test_mkupgrade_refuses_bad_arguments(tmp_path, args, message):
    rootfs = tmp_path / "r"
    rootfs.write_bytes(payload())
    proc = subprocess.run([MKUPGRADE] + args + [str(rootfs), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_mkupgrade_refuses_what_is_not_squashfs(tmp_path):
    rootfs = tmp_path / "rootfs.ext4"
    rootfs.write_bytes(b"\0" * 4096)
    proc = subprocess.run([MKUPGRADE, "--board", BOARD, str(rootfs), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr == "mkupgrade: %s is not a squashfs image\n" % rootfs
    assert os.listdir(tmp_path) == ["rootfs.ext4"]


def test_mkupgrade_takes_a_real_squashfs(tmp_path, board):
    if not os.path.exists("/usr/bin/mksquashfs"):
        pytest.skip("mksquashfs not installed")
    (tmp_path / "tree" / "etc").mkdir(parents=True)
    (tmp_path / "tree" / "etc" / "wgedge-board").write_text(BOARD + "\n")
    subprocess.run(["mksquashfs", str(tmp_path / "tree"), str(tmp_path / "root.squashfs"),
                    "-noappend", "-quiet"], check=True, capture_output=True)
    out = tmp_path / "real.upgrade"
    subprocess.run([MKUPGRADE, "--board", BOARD, str(tmp_path / "root.squashfs"), str(out)],
                   check=True, capture_output=True)
    res = board.run(str(out), "--no-reboot")
    assert res.returncode == 0, res.stderr
    image = (tmp_path / "root.squashfs").read_bytes()
    assert board.slots["b"].read_bytes()[:len(image)] == image


# --- upgrading -----------------------------------------------------------------------------------
def test_upgrade_writes_the_other_slot_reads_it_back_marks_it_and_reboots(tmp_path, board):
    data = payload()
    image = mkupgrade(tmp_path, data)
    res = board.run(str(image))
    assert res.returncode == 0, res.stderr
    slot_b = board.slots["b"].read_bytes()
    assert slot_b[:len(data)] == data and slot_b[len(data):] == b"b" * (SLOT_SIZE - len(data))
    assert board.slots["a"].read_bytes() == b"a" * SLOT_SIZE  # the running slot: untouched
    assert board.markers() == {"try": "b\n"}
    assert board.reboot_count() == 1
    assert "slot b written and read back" in res.stdout and res.stderr == ""


def test_upgrade_from_slot_b_writes_slot_a_and_no_reboot_skips_the_reboot(tmp_path):
    board = Board(tmp_path, booted="b")
    (board.boot_dir / "slot").write_text("b\n")
    data = payload(seed=b"2")
    res = board.run(str(mkupgrade(tmp_path, data)), "--no-reboot")
    assert res.returncode == 0, res.stderr
    assert board.slots["a"].read_bytes()[:len(data)] == data
    assert board.slots["b"].read_bytes() == b"b" * SLOT_SIZE
    assert board.markers() == {"slot": "b\n", "try": "a\n"} and board.reboot_count() == 0


def test_the_slot_and_the_marker_are_synced(tmp_path, board, monkeypatch):
    image = mkupgrade(tmp_path, payload())
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd)))
    monkeypatch.setattr(os, "sync", lambda: synced.append("sync"))
    assert upgrade.main([str(image), "--no-reboot"] + board.options()) == 0
    ino = {p: p.stat().st_ino for p in (board.slots["b"], board.boot_dir / "try",
                                        board.boot_dir)}
    # the slot before anything names it; the stale try's removal had nothing to remove
    assert synced == [ino[board.slots["b"]], ino[board.boot_dir / "try"],
                      ino[board.boot_dir], "sync"]


def corrupt(data):
    return data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]


def refusals():
    """(name, how to make the file from a good one, the line wgedge-upgrade prints)."""
    trailer = upgradefile.TRAILER.size
    return [
        ("one bit flipped", corrupt, "corrupt: the SHA-256 of its image is not the one in its "
         "trailer"),
        ("cut short by one byte", lambda d: d[:-1], "no upgrade trailer at its end"),
        ("cut inside the image", lambda d: d[:100_000], "no upgrade trailer at its end"),
        ("image cut, trailer kept", lambda d: d[:1000] + d[2000:], "cut short or damaged: its "
         "trailer says"),
        ("bytes added", lambda d: d[:-trailer] + b"x" + d[-trailer:], "cut short or damaged"),
        ("empty", lambda d: b"", "0 bytes: too short to be an upgrade file"),
        ("trailer only, short", lambda d: d[-50:], "50 bytes: too short"),
        ("another board", None, "made for board raspberrypi4-64, this board is "
         "qemu-aarch64-virt"),
        ("too large for the slot", None, "larger than the slot (1048576 bytes)"),
        ("format 2", lambda d: d[:-trailer + 8] + struct.pack(">I", 2) + d[-trailer + 12:],
         "upgrade file format 2: this wgedge-upgrade reads format 1"),
        ("bad board field", lambda d: d[:-trailer + 12] + b"\xff" * 32 + d[-trailer + 44:],
         "damaged trailer"),
        ("not squashfs", None, "its image is not a squashfs root file system"),
    ]


@pytest.mark.parametrize("name, damage, message", refusals(), ids=[r[0] for r in refusals()])
def test_a_bad_file_is_refused_with_one_line_and_nothing_written(tmp_path, board, name, damage,
                                                                  message):
    (board.boot_dir / "slot").write_text("a\n")
    (board.boot_dir / "try").write_text("b\n")  # a pending try stays as it was
    data = payload()
    if name == "another board":
        image = mkupgrade(tmp_path, data, board="raspberrypi4-64")
    elif name == "too large for the slot":
        image = mkupgrade(tmp_path, payload(SLOT_SIZE + 1))
    elif name == "not squashfs":
        plain = b"\0" * 5000
        image = tmp_path / "plain.upgrade"
        image.write_bytes(plain + upgradefile.pack_trailer(BOARD, len(plain),
                                                           hashlib.sha256(plain).digest()))
    else:
        image = tmp_path / "bad.upgrade"
        image.write_bytes(damage(mkupgrade(tmp_path, data).read_bytes()))
    before = board.snapshot()
    res = board.run(str(image))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(
        "wgedge-upgrade: %s refused, nothing written: " % image), res.stderr
    assert message in res.stderr and res.stdout == ""
    assert board.snapshot() == before and board.reboot_count() == 0


@pytest.mark.parametrize("problem, message", [
    ("no boot file", "cannot read"),
    ("on trial", "slot a runs on trial (not confirmed): writing slot b would overwrite the "
     "only confirmed system"),
    ("boot file and cmdline disagree", "the kernel command line says"),
    ("no slots on the cmdline", "does not name wgedge.slot_a= and wgedge.slot_b="),
    ("both slots one device", "both slots name"),
    ("no board file", "this board's name"),
    ("slot device missing", "cannot open the slot device"),
    ("image missing", "cannot read"),
])
def test_upgrade_refuses_what_it_cannot_do_safely(tmp_path, problem, message):
    board = Board(tmp_path, trying=problem == "on trial")
    image = mkupgrade(tmp_path, payload())
    if problem == "no boot file":
        board.boot_file.unlink()
    elif problem == "boot file and cmdline disagree":
        board.boot_file.write_text("slot=a\ndevice=/dev/vda2\ntrying=0\n")
    elif problem == "no slots on the cmdline":
        board.cmdline.write_text("console=ttyAMA0 root=/dev/vda\n")
    elif problem == "both slots one device":
        board.cmdline.write_text("wgedge.slot_a=%s wgedge.slot_b=%s\n"
                                 % (board.slots["a"], board.slots["a"]))
    elif problem == "no board file":
        board.board_file.unlink()
    elif problem == "slot device missing":
        board.slots["b"].unlink()
    elif problem == "image missing":
        image = tmp_path / "missing.upgrade"
    before = board.snapshot()
    res = board.run(str(image))
    assert res.returncode == 1 and message in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert board.snapshot() == before and board.reboot_count() == 0


def test_a_slot_that_reads_back_wrong_is_not_marked(tmp_path, board, monkeypatch, capsys):
    """A device that stores something else than it was given (a bad flash block)."""
    image = mkupgrade(tmp_path, payload())
    (board.boot_dir / "try").write_text("b\n")  # stale: removed before the slot is written
    real = os.write

    def bad_block(fd, data):
        if os.fstat(fd).st_ino == board.slots["b"].stat().st_ino:
            data = bytes(data)
            data = data[:10] + bytes([data[10] ^ 0x80]) + data[11:]
        return real(fd, data)

    monkeypatch.setattr(os, "write", bad_block)
    assert upgrade.main([str(image)] + board.options()) == 1
    err = capsys.readouterr().err
    assert err == "wgedge-upgrade: %s does not read back what was written: not booting it; " \
        "the running system is unchanged\n" % board.slots["b"]
    assert board.markers() == {} and board.reboot_count() == 0


def test_a_write_error_leaves_no_try_marker(tmp_path, board, monkeypatch, capsys):
    image = mkupgrade(tmp_path, payload())
    (board.boot_dir / "try").write_text("b\n")

    def no_space(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    assert upgrade.main([str(image)] + board.options()) == 1
    assert "writing %s failed: No space left on device" % board.slots["b"] in \
        capsys.readouterr().err
    assert board.markers() == {} and board.reboot_count() == 0


def test_a_failed_reboot_says_what_the_next_boot_does(tmp_path, board, capsys):
    image = mkupgrade(tmp_path, payload())
    assert upgrade.main([str(image), "--reboot-command", "false"] + board.options()[:-2]) == 1
    assert "`false` failed (1): reboot to try slot b" in capsys.readouterr().err
    assert board.markers() == {"try": "b\n"}


def test_the_image_is_streamed_not_read_whole(tmp_path):
    board = Board(tmp_path)
    for s in "ab":
        board.slots[s].write_bytes(b"\0" * (16 << 20))
    image = mkupgrade(tmp_path, payload(12 << 20))
    tracemalloc.start()
    try:
        assert upgrade.main([str(image), "--no-reboot"] + board.options()) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, "%d bytes at the peak for a 12 MB image" % peak


# --- confirm and status --------------------------------------------------------------------------
def test_confirm_keeps_a_slot_on_trial(tmp_path):
    board = Board(tmp_path, booted="b", trying=True)
    (board.boot_dir / "slot").write_text("a\n")
    (board.boot_dir / "trying").write_text("b\n")
    res = board.run("--confirm")
    assert res.returncode == 0 and res.stdout == "wgedge-upgrade: slot b confirmed\n"
    assert board.markers() == {"slot": "b\n"}
    assert board.run("--confirm").returncode == 0 and board.markers() == {"slot": "b\n"}


def test_a_confirmed_trial_boot_can_be_upgraded_again(tmp_path):
    """/run/wgedge-boot still says trying=1 after --confirm (it describes the boot), but the
    booted slot is now the confirmed one: a second upgrade without a reboot between writes
    the other slot (make qemu-test found the refusal)."""
    board = Board(tmp_path, booted="b", trying=True)
    (board.boot_dir / "slot").write_text("a\n")
    (board.boot_dir / "trying").write_text("b\n")
    assert board.run("--confirm").returncode == 0
    data = payload()
    res = board.run(str(mkupgrade(tmp_path, data)), "--no-reboot")
    assert res.returncode == 0, res.stderr
    assert board.slots["a"].read_bytes()[:len(data)] == data
    assert board.markers() == {"slot": "b\n", "try": "a\n"}


def test_confirm_does_nothing_on_a_confirmed_slot_or_without_the_preinit(tmp_path, board):
    (board.boot_dir / "slot").write_text("a\n")
    before = board.snapshot()
    res = board.run("--confirm")
    assert res.returncode == 0 and res.stdout == "" and board.snapshot() == before
    board.boot_file.unlink()  # an image without slots (no /run/wgedge-boot)
    before = board.snapshot()
    res = board.run("--confirm")
    assert res.returncode == 0 and res.stdout == res.stderr == "" and board.snapshot() == before


def test_confirm_writes_through_the_atomic_helper(tmp_path, monkeypatch):
    board = Board(tmp_path, booted="b", trying=True)
    (board.boot_dir / "trying").write_text("b\n")
    calls = []
    real_write, real_remove = atomicfile.write, atomicfile.remove
    monkeypatch.setattr(atomicfile, "write", lambda *a: (calls.append(("write",) + a),
                                                         real_write(*a)))
    monkeypatch.setattr(atomicfile, "remove", lambda p: (calls.append(("remove", p)),
                                                         real_remove(p)))
    assert upgrade.main(["--confirm"] + board.options()) == 0
    assert calls == [("write", str(board.boot_dir / "slot"), "b\n", 0o644),
                     ("remove", str(board.boot_dir / "trying"))]


def test_the_confirm_init_script_runs_confirm(tmp_path):
    board = Board(tmp_path, booted="b", trying=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "wgedge-upgrade").symlink_to(ENTRY)
    # the script confirms a trial boot only while wgedge's tunnels run: a stand-in says one does
    (bin_dir / "wgedge").write_text("#!/bin/sh\necho '[{\"interface\": \"wg0\"}]'\n")
    (bin_dir / "wgedge").chmod(0o755)
    env = dict(board.env(), PATH="%s:%s:%s" % (bin_dir, os.path.dirname(sys.executable),
                                                os.environ["PATH"]))
    res = subprocess.run(["sh", CONFIRM_SCRIPT, "start"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "slot b confirmed" in res.stdout, res.stderr
    assert board.markers() == {"slot": "b\n"}
    assert stat.S_IMODE(os.stat(CONFIRM_SCRIPT).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(ENTRY).st_mode) == 0o755


def test_status(tmp_path):
    board = Board(tmp_path, booted="b", trying=True)
    (board.boot_dir / "try").write_text("a\n")
    res = board.run("--status")
    assert res.returncode == 0
    assert res.stdout == ("booted slot: b (%s), on trial\nconfirmed slot: a\npending try: a\n"
                          % board.slots["b"])
    board.boot_file.unlink()
    res = board.run("--status")
    assert res.returncode == 1 and res.stdout.startswith("booted slot: unknown (cannot read ")


@pytest.mark.parametrize("args", [[], ["--confirm", "--status"], ["x.upgrade", "--confirm"],
                                  ["--status", "--no-reboot"], ["--bogus"], ["a", "b"]])
def test_bad_arguments_exit_2_without_a_traceback(board, args):
    res = board.run(*args)
    assert res.returncode == 2, res
    assert res.stderr.startswith("usage: wgedge-upgrade") and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("wgedge-upgrade: error: ")


@pytest.mark.root
def test_upgrade_onto_a_block_device(tmp_path):
    """Slot b a loop device: its size comes from its end (stat says 0), the write goes through
    the block layer, the read-back comes from the device after the page cache is dropped."""
    board = Board(tmp_path)
    backing = tmp_path / "slot_b.img"
    backing.write_bytes(b"b" * SLOT_SIZE)
    made = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip("no loop device: %s" % made.stderr.strip())
    loop = made.stdout.strip()
    data = payload(600 * 512 - upgradefile.TRAILER.size)  # a whole number of sectors
    image = mkupgrade(tmp_path, data)
    image_loop = subprocess.run(["losetup", "--find", "--show", "--read-only", str(image)],
                                capture_output=True, text=True).stdout.strip()
    try:
        assert image_loop, "no second loop device"
        board.cmdline.write_text("wgedge.slot_a=%s wgedge.slot_b=%s\n" % (board.slots["a"], loop))
        assert upgrade.device_size(loop) == SLOT_SIZE and os.stat(loop).st_size == 0
        res = board.run(image_loop, "--no-reboot")  # the file handed over as a disk, too
        assert res.returncode == 0, res.stderr
        too_big = board.run(str(mkupgrade(tmp_path, payload(SLOT_SIZE + 1), name="big")))
        assert too_big.returncode == 1 and "larger than the slot (1048576 bytes)" in too_big.stderr
    finally:
        for dev in (loop, image_loop):
            if dev:
                subprocess.run(["losetup", "--detach", dev], check=True)
    assert backing.read_bytes()[:len(data)] == data
    assert board.markers() == {"try": "b\n"}


def preinit(board):
    """The preinit's slot choice (the shared contract of issue 16), on the board's files."""
    markers = board.boot_dir
    if (markers / "try").exists():
        slot, trying = (markers / "try").read_text().strip(), 1
        (markers / "try").rename(markers / "trying")
    else:
        if (markers / "trying").exists():
            (markers / "trying").unlink()
        slot = (markers / "slot").read_text().strip() if (markers / "slot").exists() else "a"
        trying = 0
    board.boot_file.write_text("slot=%s\ndevice=%s\ntrying=%d\n"
                               % (slot, board.slots[slot], trying))
    return slot


def test_two_upgrades_and_one_that_never_confirms(tmp_path, board):
    first, second, third = payload(seed=b"1"), payload(seed=b"2"), payload(seed=b"3")
    assert board.run(str(mkupgrade(tmp_path, first, name="1"))).returncode == 0
    assert preinit(board) == "b"
    assert board.run("--status").stdout.splitlines()[0].endswith(", on trial")
    assert board.run("--confirm").returncode == 0
    assert preinit(board) == "b" and board.markers() == {"slot": "b\n"}
    assert board.run(str(mkupgrade(tmp_path, second, name="2"))).returncode == 0
    assert board.slots["a"].read_bytes()[:len(second)] == second
    assert preinit(board) == "a"  # ... and it never reaches S99wgedge-confirm
    assert preinit(board) == "b" and board.markers() == {"slot": "b\n"}
    assert board.run(str(mkupgrade(tmp_path, third, name="3"))).returncode == 0
    assert board.slots["a"].read_bytes()[:len(third)] == third
    assert board.slots["b"].read_bytes()[:len(first)] == first
    assert board.reboot_count() == 3
