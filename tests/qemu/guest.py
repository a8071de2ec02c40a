"""One ARM guest under QEMU (software emulation), driven over its serial console.

The guest runs the image from tests/qemu/build.py with an extra cpio archive appended to its
initramfs (the kernel unpacks them in order, later files replacing earlier ones): that is how
a test gives the guest its own /etc/config/wgedge without rebuilding the image. Networking is
QEMU's user mode: the guest is 10.0.2.15, the host's loopback is 10.0.2.2 to it, and
`hostfwd` forwards a UDP port of the host's 127.0.0.1 to the guest's WireGuard port. QEMU runs
inside the test's own network namespace, so that loopback is the namespace's.
"""

import os
import re
import subprocess
import threading
import time

from tests.qemu import cpio

MACHINES = {
    # Debian's arm64 kernel on a Cortex-A53, the core of many ARM routers.
    "arm64": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a53"]),
    # 32-bit ARMv7 without NEON: OpenSSL falls back to its plain C code by itself.
    "armhf": ("qemu-system-arm", ["-M", "virt,highmem=off", "-cpu", "cortex-a15,neon=off"]),
}


class GuestError(AssertionError):
    pass


def append_files(image_initrd, out_path, files):
    """Write image_initrd + a cpio archive of `files` {path: (bytes, mode)} to out_path."""
    extra = out_path + ".extra"
    arc = cpio.Archive(extra)
    for name, (data, mode) in sorted(files.items()):
        arc.add_file(name.lstrip("/"), data, mode)
    arc.close()
    with open(out_path, "wb") as out:
        for part in (image_initrd, extra):
            with open(part, "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
    os.unlink(extra)


class Guest:
    def __init__(self, arch, image_dir, initrd, log_path, netns, hostfwd_port,
                 memory_mb=1024):
        binary, machine = MACHINES[arch]
        self.cmd = (["ip", "netns", "exec", netns, binary] + machine +
                    ["-smp", "2", "-m", str(memory_mb), "-display", "none", "-serial", "stdio",
                     "-monitor", "none", "-no-reboot",
                     "-kernel", os.path.join(image_dir, "vmlinuz"), "-initrd", initrd,
                     "-append", "console=ttyAMA0 rdinit=/init panic=-1 loglevel=3",
                     "-netdev", "user,id=n0,hostfwd=udp:127.0.0.1:%d-:51820" % hostfwd_port,
                     "-device", "virtio-net-device,netdev=n0",
                     "-device", "virtio-rng-device"])
        self.log_path = log_path
        self.buf = b""
        self.lock = threading.Condition()
        self.proc = None
        self.seq = 0
        self.pos = 0  # output before this offset has been consumed by a wait

    def start(self):
        self.log = open(self.log_path, "wb")
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

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.reader.join(5)
            self.log.close()
