"""A Linux TUN device (IFF_TUN | IFF_NO_PI), non-blocking, read and written in batches.

With offloads (the default; WGEDGE_OFFLOAD=0 turns them off) the device is opened with
IFF_VNET_HDR: writes merge consecutive TCP segments of a flow into one super-packet (GRO,
see offload.py), one writev each, and UDP datagrams of a flow too where the kernel takes
GSO_UDP_L4 writes (probed at start; switched off for good the first time one is refused).
Reads stay MTU-sized by default, since cutting and checksumming TSO super-packets in
Python costs more than the reads it saves (docs/performance.md); WGEDGE_TSO=1 asks for
TUNSETOFFLOAD (checksum, TSO4/TSO6, USO where the kernel has it) and cuts what it gets.
Each feature the kernel refuses is switched off on its own, and the device still works
without any of them.

A full TUN queue drops rather than blocks: `write_batch` counts what the kernel refused.

A new interface gets MTU 1420 (DEFAULT_MTU), as the kernel's WireGuard and wireguard-go give
theirs: 1500 minus the largest overhead (IPv6 40 + UDP 8 + WireGuard 32), so a full-sized
packet still fits in one 1500-byte datagram. `wgedge up` then sets the configured MTU.
"""

import errno
import fcntl
import os
import struct

from wgedge.core.consts import DEFAULT_MTU
from wgedge.io import offload

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
IFF_VNET_HDR = 0x4000
TUNSETOFFLOAD = 0x400454D0
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40
IFNAMSIZ = 16
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
MAX_PACKET = 65535
MAX_BATCH_PACKETS = 512  # segments from one read_batch call, whatever the reads held


class TunError(Exception):
    pass


# Bytes the kernel refuses in a name (dev_valid_name: '/', ':' and its isspace(), which
# counts 0xa0 too); '%' makes TUNSETIFF pick a free number (wg%d -> wg0), so the name asked
# for would not be the one made.
_BAD_IFNAME_BYTES = frozenset(b"/:% \t\n\v\f\r\xa0")


def validate_ifname(name):
    """Linux interface names: 1-15 bytes, no '/', ':', '%' or whitespace, not '.' or '..'."""
    if not name or len(os.fsencode(name)) >= IFNAMSIZ:
        raise TunError("interface name must be 1-15 characters: %r" % name)
    if name in (".", "..") or any(b in _BAD_IFNAME_BYTES for b in os.fsencode(name)):
        raise TunError("invalid interface name %r: Linux refuses '/', ':', '%%' and "
                       "whitespace in one, and the names '.' and '..'" % name)
    return name


def set_mtu(name, mtu):
    """SIOCSIFMTU on interface `name`; raises OSError."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        fcntl.ioctl(s.fileno(), SIOCSIFMTU, struct.pack("16si20x", os.fsencode(name), mtu))


class Tun:
    def __init__(self, name, offloads=None):
        validate_ifname(name)
        if offloads is None:
            offloads = os.environ.get("WGEDGE_OFFLOAD", "1") != "0"
        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TunError("cannot open /dev/net/tun: %s (is the tun module loaded?)"
                           % exc.strerror)
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offloads else 0)
        try:
            ifr = struct.pack("16sH22x", os.fsencode(name), flags)
            res = fcntl.ioctl(self.fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(self.fd)
            if exc.errno == errno.EBUSY:
                raise TunError("interface %s already exists and is in use (another daemon?)"
                               % name)
            raise TunError("cannot create TUN interface %s: %s" % (name, exc.strerror))
        self.name = res[:16].rstrip(b"\0").decode()
        try:
            set_mtu(self.name, DEFAULT_MTU)
        except OSError as exc:
            os.close(self.fd)
            raise TunError("cannot set the MTU of %s to %d: %s" % (self.name, DEFAULT_MTU,
                                                                  exc.strerror))
        try:
            import socket

            self.ifindex = socket.if_nametoindex(self.name)
        except OSError:
            self.ifindex = 0
        self.write_drops = 0
        self.vnet_hdr = offloads
        self.offloads = []
        self.udp_gro = False  # merged UDP writes (GSO_UDP_L4) accepted by this kernel
        if offloads:
            self._enable_offloads()

    def visible_here(self):
        """Whether the interface is in this process's network namespace (not moved away)."""
        import socket

        try:
            return self.ifindex > 0 and socket.if_nametoindex(self.name) == self.ifindex
        except OSError:
            return False

    def mtu(self):
        """The interface's MTU now (an administrator may have changed it), or None when it
        cannot be read here: moved to another network namespace, or gone."""
        import socket

        try:
            if socket.if_nametoindex(self.name) != self.ifindex:
                return None  # another interface of that name: ours is elsewhere
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                res = fcntl.ioctl(s.fileno(), SIOCGIFMTU,
                                  struct.pack("16si20x", os.fsencode(self.name), 0))
        except OSError:
            return None
        return struct.unpack_from("i", res, 16)[0]

    def _enable_offloads(self):
        """Ask for the most the kernel gives: TSO with USO, then TSO alone, then checksum
        only; record what was granted (`wgedge info` and the start-up log show it)."""
        if os.environ.get("WGEDGE_TSO", "0") != "1":
            # Measured (docs/benchmarks.md): cutting and checksumming super-packets in Python
            # costs more than the kernel doing it before the read, so by default the reads
            # stay MTU-sized and only the write side coalesces (GRO).
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, 0)
            self.offloads = ["gro-write"]
            # GSO_UDP_L4 in virtio headers came with TUN's USO offload (Linux 6.2): a kernel
            # that grants USO also takes merged UDP writes. Ask, then turn it off again, so
            # that reads keep coming with their checksums done.
            try:
                fcntl.ioctl(self.fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6)
            except OSError:
                return
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, 0)
            self.udp_gro = True
            self.offloads.append("udp-gro-write")
            return
        for flags, names in (
                (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,
                 ["csum", "tso4", "tso6", "uso4", "uso6"]),
                (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, ["csum", "tso4", "tso6"]),
                (TUN_F_CSUM, ["csum"])):
            try:
                fcntl.ioctl(self.fd, TUNSETOFFLOAD, flags)
                self.offloads = names
                self.udp_gro = "uso4" in names
                return
            except OSError:
                continue
        self.offloads = []  # the virtio header stays: plain packets behind a zero header

    def fileno(self):
        return self.fd

    def read_batch(self, limit=64):
        """Up to `limit` packets that are ready now; [] when none. Raises OSError when the
        interface is gone (EBADFD/EIO after `ip link del`)."""
        packets = []
        read = os.read
        fd = self.fd
        try:
            if not self.vnet_hdr:
                for _ in range(limit):
                    packets.append(read(fd, MAX_PACKET))
            else:
                split = offload.split_read
                size = MAX_PACKET + offload.VNET_HDR_LEN
                hdr = offload.VNET_HDR_LEN
                needs_csum = offload.F_NEEDS_CSUM
                append = packets.append
                for _ in range(limit):
                    buf = read(fd, size)
                    # The usual case, a plain packet (no GSO, checksum done): skip the parser.
                    if len(buf) > hdr and not buf[1] and not buf[0] & needs_csum:
                        append(buf[hdr:])
                    else:
                        packets.extend(split(buf))
                        if len(packets) >= MAX_BATCH_PACKETS:  # TSO segments add up
                            break
                    # Free the read buffer before the next 64 KiB read is allocated: keeping
                    # it alive across the read fragments the heap (+1 MB of RSS, measured).
                    buf = None
        except BlockingIOError:
            pass
        return packets

    def write_batch(self, packets):
        write = os.write
        fd = self.fd
        if self.vnet_hdr:
            packets = offload.coalesce(packets, self.udp_gro)
        for p in packets:
            try:
                cls = p.__class__
                if cls is list:  # merged TCP segments: header and payloads
                    os.writev(fd, p)
                elif cls is tuple:  # merged UDP datagrams
                    self._write_udp(p)
                else:
                    write(fd, p)
            except BlockingIOError:
                self.write_drops += 1
            except OSError as exc:
                if exc.errno in (errno.ENOBUFS, errno.ENOMEM, errno.EINVAL, errno.EMSGSIZE):
                    self.write_drops += 1
                else:
                    raise

    def _write_udp(self, parts):
        try:
            os.writev(self.fd, parts)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # This kernel refuses GSO_UDP_L4 after all: never again, and these datagrams go
            # one by one (cut and checksummed here, once).
            self.udp_gro = False
            if "udp-gro-write" in self.offloads:
                self.offloads.remove("udp-gro-write")
            for datagram in offload.unmerge_udp(parts):
                os.write(self.fd, offload.PLAIN_HDR + datagram)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
