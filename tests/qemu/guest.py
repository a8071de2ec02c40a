"""One ARM guest under QEMU (software emulation), driven over its serial console.

The QEMU test's guest boots the disk image from tests/qemu/build.py as router flash: Debian's
kernel with the preinit initramfs, and the disk (through a qcow2 overlay, so the image stays
as built) on a virtio block device; the kernel command line names the slots and the data
partition as a Buildroot board's does. The benchmark guest boots one initramfs instead,
with an extra cpio archive appended (the kernel unpacks them in order, later files replacing
earlier ones). Networking is
QEMU's user mode: the guest is 10.0.2.15, the host's loopback is 10.0.2.2 to it, and
`hostfwd` forwards a UDP port of the host's 127.0.0.1 to the guest's WireGuard port. QEMU runs
inside the test's own network namespace, so that loopback is the namespace's.
"""

import os
import re
import subprocess
import threading
import time

MACHINES = {
    # Debian's arm64 kernel on a Cortex-A53, the core of many ARM routers.
    "arm64": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a53"]),
    # 32-bit ARMv7 without NEON: OpenSSL falls back to its plain C code by itself.
    "armhf": ("qemu-system-arm", ["-M", "virt,highmem=off", "-cpu", "cortex-a15,neon=off"]),
}


class GuestError(AssertionError):
    pass


# The disk layout of board/qemu/genimage.cfg, as the QEMU boards' command lines name it.
DISK_CMDLINE = "wgedge.slot_a=/dev/vda1 wgedge.slot_b=/dev/vda2 wgedge.data=/dev/vda3"


def disk_overlay(image, path):
    """A fresh qcow2 overlay of the raw disk image at `path`: the guest writes only to it."""
    if os.path.exists(path):
        os.unlink(path)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.abspath(image),
                    "-F", "raw", path], check=True)
    return path


class Guest:
    def __init__(self, arch, image_dir, initrd, log_path, netns, hostfwd_port,
                 memory_mb=1024, disk=None, guest_port=51820):
        """`disk`: a qcow2 overlay of the image's disk.img, booted with its preinit
        (`initrd` is then ignored); without it, `initrd` holds the whole system."""
        binary, machine = MACHINES[arch]
        if disk is not None:
            boot = ["-initrd", os.path.join(image_dir, "preinit.cpio.gz"),
                    "-append", "console=ttyAMA0 panic=-1 loglevel=3 " + DISK_CMDLINE,
                    "-drive", "file=%s,format=qcow2,if=none,id=d0" % disk,
                    "-device", "virtio-blk-device,drive=d0"]
        else:
            boot = ["-initrd", initrd,
                    "-append", "console=ttyAMA0 rdinit=/init panic=-1 loglevel=3"]
        self.cmd = (["ip", "netns", "exec", netns, binary] + machine +
                    ["-smp", "2", "-m", str(memory_mb), "-display", "none", "-serial", "stdio",
                     "-monitor", "none", "-no-reboot",
                     "-kernel", os.path.join(image_dir, "vmlinuz")] + boot +
                    ["-netdev", "user,id=n0,hostfwd=udp:127.0.0.1:%d-:%d"
                     % (hostfwd_port, guest_port),
                     "-device", "virtio-net-device,netdev=n0",
                     "-device", "virtio-rng-device"])
        self.log_path = log_path
        self.started = None  # time.time() when QEMU was started
        self.buf = b""
        self.lock = threading.Condition()
        self.proc = None
        self.seq = 0
        self.pos = 0  # output before this offset has been consumed by a wait

    def start(self, log_mode="wb"):
        self.log = open(self.log_path, log_mode)
        self.started = time.time()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            with self.lock:
                if not chunk:
                    self.buf += b"\n[qemu exited]\n"
                    self.lock.notify_all()
                    return
                self.buf += chunk
                self.log.write(chunk)
                self.log.flush()
                self.lock.notify_all()

    def tail(self, n=3000):
        with self.lock:
            return self.buf[-n:].decode(errors="replace")

    def wait_for(self, pattern, timeout):
        """Wait for `pattern` (regex) in console output after what earlier waits consumed."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                if self.proc.poll() is not None and b"[qemu exited]" in self.buf:
                    raise GuestError("QEMU exited while waiting for %r:\n%s"
                                     % (pattern, self.tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestError("no %r on the console within %d s:\n%s"
                                     % (pattern, timeout, self.tail()))
                self.lock.wait(min(left, 1.0))

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, command, timeout=60, check=True):
        """Run a shell command on the console -> (exit status, output). The markers are split
        by quotes in what is typed, so the console's echo of the command never matches them."""
        self.seq += 1
        n = self.seq
        self.send('echo "@@B""%d@@"; %s; echo "@@E""%d=$?@@"\n' % (n, command, n))
        self.wait_for(r"@@B%d@@\r?\n" % n, timeout)
        start = self.pos
        m = self.wait_for(r"@@E%d=(\d+)@@" % n, timeout)
        with self.lock:
            output = self.buf[start:m.start()].decode(errors="replace").replace("\r", "")
        rc = int(m.group(1))
        if check and rc != 0:
            raise GuestError("guest: %s -> exit %d:\n%s" % (command, rc, output))
        return rc, output

    def wait_exit(self, timeout):
        """Wait for QEMU to exit by itself (the guest rebooted: -no-reboot) -> its status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise GuestError("QEMU still runs %d s after the guest was told to reboot:\n%s"
                             % (timeout, self.tail())) from None

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.reader.join(5)
            self.log.close()
