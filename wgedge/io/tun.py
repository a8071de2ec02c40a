"""A Linux TUN device (IFF_TUN | IFF_NO_PI), non-blocking, read and written in batches.

A full TUN queue drops rather than blocks: `write_batch` counts what the kernel refused.
"""

import errno
import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
IFNAMSIZ = 16
MAX_PACKET = 65535


class TunError(Exception):
    pass


def validate_ifname(name):
    """Linux interface names: 1-15 bytes, no '/', whitespace or ':' (and not '.' or '..')."""
    if not name or len(name.encode()) >= IFNAMSIZ:
        raise TunError("interface name must be 1-15 characters: %r" % name)
    if name in (".", "..") or any(c in name for c in "/: \t\n"):
        raise TunError("invalid interface name %r" % name)
    return name


class Tun:
    def __init__(self, name):
        validate_ifname(name)
        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TunError("cannot open /dev/net/tun: %s (is the tun module loaded?)"
                           % exc.strerror)
        try:
            ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
            res = fcntl.ioctl(self.fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(self.fd)
            if exc.errno == errno.EBUSY:
                raise TunError("interface %s already exists and is in use (another daemon?)"
                               % name)
            raise TunError("cannot create TUN interface %s: %s" % (name, exc.strerror))
        self.name = res[:16].rstrip(b"\0").decode()
        self.write_drops = 0

    def fileno(self):
        return self.fd

    def read_batch(self, limit=64):
        """Up to `limit` packets that are ready now; [] when none. Raises OSError when the
        interface is gone (EBADFD/EIO after `ip link del`)."""
        packets = []
        read = os.read
        fd = self.fd
        try:
            for _ in range(limit):
                packets.append(read(fd, MAX_PACKET))
        except BlockingIOError:
            pass
        return packets

    def write_batch(self, packets):
        write = os.write
        fd = self.fd
        for p in packets:
            try:
                write(fd, p)
            except BlockingIOError:
                self.write_drops += 1
            except OSError as exc:
                if exc.errno in (errno.ENOBUFS, errno.ENOMEM, errno.EINVAL, errno.EMSGSIZE):
                    self.write_drops += 1
                else:
                    raise

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
