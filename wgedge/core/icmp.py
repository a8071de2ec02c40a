"""ICMP and ICMPv6 "destination unreachable" for packets that no peer's allowed IPs cover.

The kernel's WireGuard answers such a packet with ICMP_HOST_UNREACH (IPv4, type 3 code 1)
or ICMPV6_ADDR_UNREACH (IPv6, type 1 code 3) (device.c, wg_xmit), so `ping` to an address
no peer owns fails at once instead of timing out. The device lists the packets to answer
(Output.unreachable: answerable ones, within the rate limit); the I/O layer sends each
answer (io/unreachable.py), made here:

- `unreachable4(p, source, to)` / `message6(p, to)`: the answer the kernel's icmp_ndo_send
  gives, for the kernel to send on: to the packet's sender as it was before any source NAT
  (`to`, which conntrack knows), quoting the packet with that source put back, from the
  address the kernel's routing chooses for the way back (IPv4: `source` 0.0.0.0 lets the
  kernel fill it in; IPv6: a raw ICMPv6 socket chooses it and sums the checksum).
- `unreachable(p)`: the answer as a packet to write back into the TUN device, where the
  kernel cannot be asked to send it (the interface is in another network namespace).

Rules kept here:
- Never answer an ICMP error, a fragment other than the first, a packet to a multicast or
  broadcast address, or one from an address that does not name a single host (RFC 1122
  3.2.2, RFC 1812 4.3.2.7, RFC 4443 2.4(e)); nor a packet whose header lengths are wrong.
- Quote as much of the packet as fits in 576 bytes (IPv4, RFC 1812 4.3.2.3) or 1280 bytes
  (IPv6, RFC 4443 2.4(c)) in total.
- Written into the TUN device, the answer comes from the packet's own destination address:
  the kernel drops an arriving packet whose source is one of its own addresses (a
  "martian" unless accept_local is set), so `ping` would never see one from the host's
  address. The destination routes through the interface, so the answer also passes
  reverse-path filtering.
- At most ICMP_BURST answers at once, refilled at ICMP_RATE per second, for all destinations
  together: the kernel's global ICMP limit (net.ipv4.icmp_msgs_per_sec / icmp_msgs_burst).
  Its per-destination limit does not apply to answers for local senders, which is what a
  TUN device's packets mostly are, and would need a table; it is left out.
- Time is an argument (`now`); nothing here reads a clock.
"""

import struct

from wgedge.core import consts as C

ICMP_DEST_UNREACH = 3
ICMP_HOST_UNREACH = 1
ICMPV6_DEST_UNREACH = 1
ICMPV6_ADDR_UNREACH = 3
IPV4_ERROR_MAX = 576  # RFC 1812 4.3.2.3
IPV6_ERROR_MAX = 1280  # RFC 4443 2.4(c): the IPv6 minimum MTU
PROTO_ICMP = 1
PROTO_ICMPV6 = 58
PROTO_FRAGMENT = 44  # IPv6 fragment header
# ICMPv4 types that are errors (RFC 792, RFC 1122 3.2.2): unreachable, source quench,
# redirect, time exceeded, parameter problem. ICMPv6 errors are the types below 128.
_ICMP4_ERRORS = (3, 4, 5, 11, 12)
_V4_HEADER = ">BBHHHBBH4s4s"
_V6_HEADER = ">IHBB16s16s"


def checksum(data):
    """The Internet checksum (RFC 1071) of `data`: the ones' complement of the ones'
    complement sum of its 16-bit big-endian words. 2**16 = 1 (mod 0xffff), so that sum is
    the whole number's value modulo 0xffff, with 0xffff for a multiple of it (data that is
    not all zeros)."""
    data = bytes(data)
    if len(data) & 1:
        data += b"\0"
    value = int.from_bytes(data, "big")
    if not value:
        return 0xFFFF
    s = value % 0xFFFF
    if s == 0:
        s = 0xFFFF
    return 0xFFFF - s


class Limiter:
    """A token bucket: `burst` answers at once, refilled at `rate` per second."""

    def __init__(self, rate=C.ICMP_RATE, burst=C.ICMP_BURST):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = None

    def allow(self, now):
        last = self.last
        self.last = now
        if last is not None and now > last:
            self.tokens = min(float(self.burst), self.tokens + (now - last) * self.rate)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _v4_answerable(p, n):
    if n < 20 or (p[0] & 15) < 5:
        return False
    ihl = (p[0] & 15) * 4
    total = (p[2] << 8) | p[3]
    if total < ihl or total > n:
        return False
    if ((p[6] & 0x1F) << 8) | p[7]:
        return False  # not the first fragment
    if p[16] >= 224 or p[16:20] == b"\0\0\0\0":
        return False  # multicast, class E, limited broadcast; or no destination at all
    if p[12] >= 224 or p[12] == 127 or p[12:16] == b"\0\0\0\0":
        return False  # the source names no single host we could answer
    if p[9] == PROTO_ICMP:
        if total < ihl + 1 or p[ihl] in _ICMP4_ERRORS:
            return False
    return True


def _v6_answerable(p, n):
    if n < 40 or 40 + ((p[4] << 8) | p[5]) > n:
        return False
    if p[24] == 0xFF or p[8] == 0xFF or p[8:24] == bytes(16):
        return False  # multicast destination or source; unspecified source
    nh = p[6]
    if nh == PROTO_ICMPV6:
        if n < 41 or p[40] < 128:
            return False  # an ICMPv6 error
    elif nh == PROTO_FRAGMENT:
        if n < 48 or ((p[42] << 8) | p[43]) & 0xFFF8:
            return False  # a fragment other than the first
    return True


def answerable(p):
    """Whether IPv4 or IPv6 packet `p` may be answered with an ICMP error at all."""
    n = len(p)
    if not n:
        return False
    version = p[0] >> 4
    if version == 4:
        return _v4_answerable(p, n)
    if version == 6:
        return _v6_answerable(p, n)
    return False


def unreachable4(p, source=None, to=None):
    """The ICMP host-unreachable answer to IPv4 packet `p`, or None when `p` must not be
    answered: from `source` (4 bytes; default `p`'s destination) to `to` (default `p`'s
    source). With `to` other than `p`'s source (the sender before source NAT), the quote
    carries `to` as its source, with its header checksum made right again."""
    n = len(p)
    if not _v4_answerable(p, n):
        return None
    total = (p[2] << 8) | p[3]
    quote = bytearray(p[:min(total, IPV4_ERROR_MAX - 28)])
    if to is None:
        to = bytes(p[12:16])
    elif quote[12:16] != to:
        quote[12:16] = to
        ihl = (quote[0] & 15) * 4
        quote[10:12] = b"\0\0"
        struct.pack_into(">H", quote, 10, checksum(quote[:ihl]))
    body = bytearray(8 + len(quote))
    body[0] = ICMP_DEST_UNREACH
    body[1] = ICMP_HOST_UNREACH
    body[8:] = quote
    struct.pack_into(">H", body, 2, checksum(body))
    if source is None:
        source = bytes(p[16:20])
    # TOS 0xc0 (precedence "internetwork control"), as the kernel's ICMP errors carry.
    header = bytearray(struct.pack(_V4_HEADER, 0x45, 0xC0, 20 + len(body), 0, 0, 64,
                                   PROTO_ICMP, 0, source, to))
    struct.pack_into(">H", header, 10, checksum(header))
    return bytes(header) + bytes(body)


def message6(p, to=None):
    """The ICMPv6 address-unreachable message (no IPv6 header; checksum 0, for a raw ICMPv6
    socket to fill in) answering IPv6 packet `p`, or None when `p` must not be answered.
    With `to` (16 bytes: the sender before source NAT) the quote carries it as its source."""
    n = len(p)
    if not _v6_answerable(p, n):
        return None
    total = 40 + ((p[4] << 8) | p[5])
    body = bytearray(8 + min(total, IPV6_ERROR_MAX - 48))
    body[0] = ICMPV6_DEST_UNREACH
    body[1] = ICMPV6_ADDR_UNREACH
    body[8:] = p[:len(body) - 8]
    if to is not None:
        body[16:32] = to
    return body


def unreachable6(p):
    """The ICMPv6 address-unreachable answer to IPv6 packet `p`, from its destination, or
    None when `p` must not be answered."""
    body = message6(p)
    if body is None:
        return None
    src = bytes(p[24:40])
    dst = bytes(p[8:24])
    # RFC 8200 8.1: the checksum covers a pseudo-header of both addresses, the length and
    # the next header value.
    pseudo = src + dst + struct.pack(">IxxxB", len(body), PROTO_ICMPV6)
    struct.pack_into(">H", body, 2, checksum(pseudo + bytes(body)))
    header = struct.pack(_V6_HEADER, 0x60000000, len(body), PROTO_ICMPV6, 64, src, dst)
    return header + bytes(body)


def unreachable(p):
    """The answer to IPv4 or IPv6 packet `p` as a packet for the TUN device (from its
    destination), or None when it gets none."""
    if not len(p):
        return None
    version = p[0] >> 4
    if version == 4:
        return unreachable4(p)
    if version == 6:
        return unreachable6(p)
    return None
