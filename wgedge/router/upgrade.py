"""wgedge-upgrade: a new root file system into the other slot, booted once, kept if it comes up.

    wgedge-upgrade IMAGE [--no-reboot]   verify IMAGE, write the other slot, mark it, reboot
    wgedge-upgrade --confirm             a slot on trial that came up: make it the slot
    wgedge-upgrade --status              booted slot, confirmed slot, pending try

Two root slots (a, b) and a data partition; the preinit (the initramfs) picks the slot from
the markers in /data/boot (docs/firmware.md):
    slot     the confirmed slot ("a" when missing)
    try      written here: boot this slot once (preinit renames it to `trying` and boots it)
    trying   a try under way; --confirm removes it, else the next boot returns to `slot`
The preinit tells what it booted in /run/wgedge-boot (slot=, device=, trying=) and the kernel
command line names the devices (wgedge.slot_a=, wgedge.slot_b=).

Rules kept here:
- Nothing is written until the whole IMAGE is checked: trailer, board (/etc/wgedge-board),
  length against the file and against the slot device, SHA-256 of every byte. A refusal is
  one line on stderr and exit 1.
- The running slot is never written, nor the confirmed one while the running slot is still on
  trial (it would be the only system left to fall back to).
- The slot is written, fsynced, dropped from the page cache and read back against the
  trailer's SHA-256 before the `try` marker names it; markers are written with
  wgedge/router/atomicfile.py. A stale `try` is removed before the slot is overwritten.
- The image is streamed in CHUNK pieces: a router has less memory than an image.
- Bad arguments: a usage line, exit 2. No traceback reaches the operator.
Paths can be moved for tests by options or environment variables (PATHS).
"""

import argparse
import hashlib
import os
import shlex
import subprocess
import sys

from wgedge.router import atomicfile
from wgedge.router.upgradefile import (
    CHUNK,
    UpgradeFileError,
    payload_digest,
    read_trailer,
    stream,
)

# option -> (environment variable, default)
PATHS = {
    "boot_file": ("WGEDGE_BOOT_FILE", "/run/wgedge-boot"),
    "boot_dir": ("WGEDGE_BOOT_DIR", "/data/boot"),
    "cmdline": ("WGEDGE_CMDLINE", "/proc/cmdline"),
    "board_file": ("WGEDGE_BOARD_FILE", "/etc/wgedge-board"),
    "reboot_command": ("WGEDGE_REBOOT_COMMAND", "reboot"),
}
SLOTS = ("a", "b")


class UpgradeError(Exception):
    """A refusal or a failure, in one line an operator can act on."""


class Boot:
    """What runs: the slot and device the preinit booted, whether on trial, both devices."""

    def __init__(self, slot, device, trying, devices):
        self.slot, self.device, self.trying, self.devices = slot, device, trying, devices

    @property
    def other(self):
        return "b" if self.slot == "a" else "a"


def _read(path, what):
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        raise UpgradeError("cannot read %s (%s): %s" % (path, what, exc.strerror)) from None


def read_boot(paths):
    """/run/wgedge-boot and /proc/cmdline -> Boot. Raises UpgradeError."""
    fields = {}
    for line in _read(paths.boot_file, "written by the wgedge preinit at boot").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            fields[key] = value
    slot, device, trying = fields.get("slot"), fields.get("device"), fields.get("trying")
    if slot not in SLOTS or not device or trying not in ("0", "1"):
        raise UpgradeError("%s does not say slot=a|b, device= and trying=0|1" % paths.boot_file)
    words = dict(w.partition("=")[::2] for w in _read(paths.cmdline, "kernel command line")
                 .split())
    devices = {s: words.get("wgedge.slot_" + s) for s in SLOTS}
    if not all(devices.values()):
        raise UpgradeError("the kernel command line (%s) does not name wgedge.slot_a= and "
                           "wgedge.slot_b=" % paths.cmdline)
    if devices[slot] != device:
        raise UpgradeError("%s says slot %s is %s, the kernel command line says %s: not "
                           "writing either" % (paths.boot_file, slot, device, devices[slot]))
    return Boot(slot, device, trying == "1", devices)


def read_marker(paths, name):
    """"a", "b", or None when the marker is missing or holds something else."""
    try:
        with open(os.path.join(paths.boot_dir, name)) as f:
            value = f.read().strip()
    except OSError:
        return None
    return value if value in SLOTS else None


def write_marker(paths, name, slot):
    atomicfile.makedirs(paths.boot_dir)
    atomicfile.write(os.path.join(paths.boot_dir, name), slot + "\n", 0o644)


def read_board(paths):
    board = _read(paths.board_file, "this board's name").strip()
    if not board:
        raise UpgradeError("%s is empty: it names this board" % paths.board_file)
    return board


def device_size(device):
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise UpgradeError("cannot open the slot device %s: %s" % (device, exc.strerror)) from None
    try:
        return os.lseek(fd, 0, os.SEEK_END)  # a block device's stat size is 0; its end is not
    finally:
        os.close(fd)


def verify(image, board, capacity):
    """Check all of `image` (the rules at the top) -> (open file, Trailer)."""
    try:
        f = open(image, "rb")
    except OSError as exc:
        raise UpgradeError("cannot read %s: %s" % (image, exc.strerror)) from None
    try:
        trailer = read_trailer(f, f.seek(0, os.SEEK_END))  # a block device too (stat: 0)
        if trailer.board != board:
            raise UpgradeFileError("made for board %s, this board is %s" % (trailer.board, board))
        if trailer.length > capacity:
            raise UpgradeFileError("its image (%d bytes) is larger than the slot (%d bytes)"
                                   % (trailer.length, capacity))
        digest, squashfs = payload_digest(f, trailer.length)
        if digest != trailer.sha256:
            raise UpgradeFileError("corrupt: the SHA-256 of its image is not the one in its "
                                   "trailer")
        if not squashfs:
            raise UpgradeFileError("its image is not a squashfs root file system")
    except (UpgradeFileError, OSError) as exc:
        f.close()
        text = exc.strerror if isinstance(exc, OSError) else exc
        raise UpgradeError("%s refused, nothing written: %s" % (image, text)) from None
    return f, trailer


def write_slot(device, f, trailer):
    """Stream the payload of `f` onto `device`, fsync, read it back: both SHA-256s must be the
    trailer's. Raises UpgradeError."""
    f.seek(0)
    written = hashlib.sha256()
    try:
        fd = os.open(device, os.O_WRONLY | os.O_CLOEXEC)  # no O_CREAT: a device, or nothing
        try:
            for chunk in stream(f, trailer.length):
                written.update(chunk)
                while chunk:
                    chunk = chunk[os.write(fd, chunk):]
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # read back the device, not RAM
        finally:
            os.close(fd)
        if written.digest() != trailer.sha256:
            raise UpgradeError("the image file changed while it was written: slot %s holds "
                               "neither; the running system is unchanged" % device)
        with open(device, "rb", buffering=0) as d:
            back = hashlib.sha256()
            for chunk in stream(d, trailer.length, bytearray(CHUNK)):
                back.update(chunk)
    except (OSError, UpgradeFileError) as exc:
        raise UpgradeError("writing %s failed: %s; the running system is unchanged"
                           % (device, getattr(exc, "strerror", None) or exc)) from None
    if back.digest() != trailer.sha256:
        raise UpgradeError("%s does not read back what was written: not booting it; the "
                           "running system is unchanged" % device)


def upgrade(image, paths, reboot):
    boot = read_boot(paths)
    # /run/wgedge-boot says how this boot began; once --confirm has run, `slot` names the
    # booted slot and the other one may be written.
    if boot.trying and read_marker(paths, "slot") != boot.slot:
        raise UpgradeError("slot %s runs on trial (not confirmed): writing slot %s would "
                           "overwrite the only confirmed system; run `wgedge-upgrade --confirm` "
                           "first, or reboot to go back" % (boot.slot, boot.other))
    target = boot.devices[boot.other]
    if os.path.realpath(target) == os.path.realpath(boot.device):
        raise UpgradeError("both slots name %s: not writing the running root" % target)
    f, trailer = verify(image, read_board(paths), device_size(target))
    with f:
        atomicfile.remove(os.path.join(paths.boot_dir, "try"))  # not a half-written slot
        print("wgedge-upgrade: writing slot %s (%s), %d bytes" % (boot.other, target,
                                                                  trailer.length), flush=True)
        write_slot(target, f, trailer)
    write_marker(paths, "try", boot.other)
    os.sync()
    print("wgedge-upgrade: slot %s written and read back; the next boot tries it once (kept "
          "if `wgedge-upgrade --confirm` runs on it)" % boot.other, flush=True)
    if not reboot:
        return 0
    print("wgedge-upgrade: rebooting", flush=True)
    try:
        code = subprocess.run(shlex.split(paths.reboot_command)).returncode
    except OSError as exc:
        code = exc.strerror
    if code != 0:
        raise UpgradeError("`%s` failed (%s): reboot to try slot %s"
                           % (paths.reboot_command, code, boot.other))
    return 0


def confirm(paths):
    """A slot on trial that got this far is kept: `slot` names it, `trying` goes. A system
    the wgedge preinit did not boot (no /run/wgedge-boot) has nothing to confirm."""
    if not os.path.exists(paths.boot_file):
        return 0
    boot = read_boot(paths)
    if not boot.trying:
        return 0
    write_marker(paths, "slot", boot.slot)
    atomicfile.remove(os.path.join(paths.boot_dir, "trying"))
    print("wgedge-upgrade: slot %s confirmed" % boot.slot)
    return 0


def status(paths):
    try:
        boot = read_boot(paths)
        print("booted slot: %s (%s)%s" % (boot.slot, boot.device,
                                          ", on trial" if boot.trying else ""))
    except UpgradeError as exc:
        print("booted slot: unknown (%s)" % exc)
        boot = None
    print("confirmed slot: %s" % (read_marker(paths, "slot") or "a"))
    print("pending try: %s" % (read_marker(paths, "try") or "none"))
    return 0 if boot else 1


def parser():
    p = argparse.ArgumentParser(
        prog="wgedge-upgrade",
        description="Write a wgedge upgrade file (made by mkupgrade) into the slot that is "
        "not running and boot it once; --confirm keeps it.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("image", nargs="?", metavar="IMAGE", help="the upgrade file")
    what.add_argument("--confirm", action="store_true",
                      help="a slot on trial came up: make it the slot booted from now on")
    what.add_argument("--status", action="store_true",
                      help="booted slot, confirmed slot, pending try")
    p.add_argument("--no-reboot", action="store_true", help="write and mark, but do not reboot")
    for name, (env, default) in PATHS.items():
        p.add_argument("--" + name.replace("_", "-"), metavar="PATH" if name != "reboot_command"
                       else "COMMAND", help="default $%s, else %s" % (env, default))
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if args.no_reboot and not args.image:
        p.error("--no-reboot goes with IMAGE")
    for name, (env, default) in PATHS.items():
        if getattr(args, name) is None:
            setattr(args, name, os.environ.get(env) or default)
    try:
        if args.confirm:
            return confirm(args)
        if args.status:
            return status(args)
        return upgrade(args.image, args, not args.no_reboot)
    except UpgradeError as exc:
        print("wgedge-upgrade: %s" % exc, file=sys.stderr)
    except OSError as exc:
        where = " (%s)" % exc.filename if exc.filename else ""
        print("wgedge-upgrade: %s%s" % (exc.strerror or exc, where), file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - never a traceback to the operator
        print("wgedge-upgrade: unexpected error, please report it: %s: %s"
              % (type(exc).__name__, exc), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
