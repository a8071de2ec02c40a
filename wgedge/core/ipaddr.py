"""IP address text <-> bytes, without the ipaddress module (MicroPython has none).

parse_ip("10.0.0.1") -> 4 bytes; parse_ip("fd00::1") -> 16 bytes; format_ip is the inverse,
with RFC 5952 canonical IPv6 text. Bad text raises ValueError with a message saying why.
"""


_DEC = "0123456789"
_HEX = "0123456789abcdefABCDEF"


def _only(text, allowed):
    for c in text:
        if c not in allowed:
            return False
    return True


def _parse_v4(text):
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("bad IPv4 address %r" % text)
    out = bytearray(4)
    for i in range(4):
        p = parts[i]
        if not p or not _only(p, _DEC) or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            raise ValueError("bad IPv4 address %r" % text)
        v = int(p)
        if v > 255:
            raise ValueError("bad IPv4 address %r" % text)
        out[i] = v
    return bytes(out)


def _parse_v6(text):
    if text.count("::") > 1:
        raise ValueError("bad IPv6 address %r" % text)
    tail4 = b""
    last_colon = text.rfind(":")
    if "." in text[last_colon + 1:]:
        tail4 = _parse_v4(text[last_colon + 1:])
        text = text[:last_colon + 1] + "0:0"
    if "::" in text:
        head, rest = text.split("::")
        head_parts = head.split(":") if head else []
        rest_parts = rest.split(":") if rest else []
        missing = 8 - len(head_parts) - len(rest_parts)
        if missing < 1:
            raise ValueError("bad IPv6 address %r" % text)
        parts = head_parts + ["0"] * missing + rest_parts
    else:
        parts = text.split(":")
    if len(parts) != 8:
        raise ValueError("bad IPv6 address %r" % text)
    out = bytearray(16)
    for i in range(8):
        p = parts[i]
        if not p or len(p) > 4 or not _only(p, _HEX):
            raise ValueError("bad IPv6 address %r" % text)
        v = int(p, 16)
        out[2 * i] = v >> 8
        out[2 * i + 1] = v & 0xFF
    if tail4:
        out[12:16] = tail4
    return bytes(out)


def parse_ip(text):
    if not isinstance(text, str) or not text:
        raise ValueError("empty address")
    if ":" in text:
        return _parse_v6(text)
    return _parse_v4(text)


def format_ip(addr):
    if len(addr) == 4:
        return "%d.%d.%d.%d" % (addr[0], addr[1], addr[2], addr[3])
    if len(addr) != 16:
        raise ValueError("an address is 4 or 16 bytes")
    words = [(addr[2 * i] << 8) | addr[2 * i + 1] for i in range(8)]
    # RFC 5952: compress the longest run (>= 2) of zero words, the first if tied.
    best_start, best_len = -1, 0
    i = 0
    while i < 8:
        if words[i] == 0:
            j = i
            while j < 8 and words[j] == 0:
                j += 1
            if j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_len < 2:
        return ":".join("%x" % w for w in words)
    head = ":".join("%x" % w for w in words[:best_start])
    tail = ":".join("%x" % w for w in words[best_start + best_len:])
    return head + "::" + tail


def mask(addr, cidr):
    """`addr` with every bit past the prefix cleared."""
    n = len(addr)
    value = int.from_bytes(addr, "big")
    bits = n * 8
    value &= ((1 << bits) - 1) ^ ((1 << (bits - cidr)) - 1)
    return value.to_bytes(n, "big")


def parse_cidr(text):
    """'10.0.0.0/8' -> (4 bytes, 8); a bare address means /32 or /128. Host bits are kept:
    the table masks them, and `wg` shows what it was given masked."""
    if not isinstance(text, str):
        raise ValueError("bad CIDR %r" % (text,))
    text = text.strip()
    addr_text, slash, bits_text = text.partition("/")
    addr = parse_ip(addr_text)
    limit = len(addr) * 8
    if not slash:
        return addr, limit
    if not bits_text or not _only(bits_text, _DEC) or len(bits_text) > 3:
        raise ValueError("bad prefix length in %r" % text)
    cidr = int(bits_text)
    if cidr > limit:
        raise ValueError("prefix length %d is too long for %r" % (cidr, text))
    return addr, cidr


def format_cidr(addr, cidr):
    return "%s/%d" % (format_ip(addr), cidr)
