"""WireGuard's cross-platform userspace API (the text `wg` speaks to wireguard-go).

    get=1\\n\\n          -> key=value lines in wireguard-go's order, then errno=0\\n\\n
    set=1\\n key=value ... \\n -> errno=0\\n\\n, or errno=-EINVAL etc.

Rules kept here:
- A `set` is parsed and validated completely before anything is applied: a bad line answers
  with an errno and changes nothing (stricter than wireguard-go, which applies line by line).
- Errno values are wireguard-go's: negative Linux errnos (-EINVAL, -EPROTO, -EADDRINUSE, ...).
- Keys are 64 lowercase hex digits; endpoints are `ip:port` or `[ipv6]:port` literals (`wg`
  resolves host names before it talks to us).
- `last_handshake_time_*` is Unix epoch time: monotonic `last_handshake` + `wall_offset`.
- An error message names the line number, the key (only one this protocol knows) and what was
  expected, never the value: errors are logged, and a value on a malformed line may be a key
  pasted in the wrong place.
- `get_pieces` yields the `get=1` answer peer by peer, so a server can send it as the client
  reads; each piece is a whole peer (or a whole slice of one peer's allowed IPs) as it is when
  the piece is made.
"""

from wgedge.core.ipaddr import format_cidr, format_ip, parse_cidr, parse_ip

EIO = -5
EPROTO = -71
EINVAL = -22
EADDRINUSE = -98
ENOANO = -55  # wireguard-go's "unknown error"

_HEX = "0123456789abcdef"
_DEVICE_KEYS = ("private_key", "listen_port", "fwmark", "replace_peers")
_PEER_KEYS = ("remove", "update_only", "preshared_key", "endpoint",
              "persistent_keepalive_interval", "replace_allowed_ips", "allowed_ip",
              "protocol_version")
# What each key takes, for error messages (which never repeat the value).
_EXPECTED = {
    "private_key": "64 hex digits", "public_key": "64 hex digits",
    "preshared_key": "64 hex digits", "listen_port": "a number 0-65535",
    "fwmark": "a number 0-4294967295", "replace_peers": "'true'", "remove": "'true'",
    "update_only": "'true'", "replace_allowed_ips": "'true'",
    "endpoint": "address:port or [IPv6 address]:port",
    "persistent_keepalive_interval": "a number 0-65535",
    "allowed_ip": "address/prefix-length, '-' before it to remove", "protocol_version": "1",
}
ALLOWED_IPS_PER_PIECE = 256  # allowed_ip lines per get_pieces piece (under 14 KiB)


class UapiError(Exception):
    def __init__(self, errno, message):
        super().__init__(message)
        self.errno = errno
        self.message = message


def key_to_hex(key):
    return "".join(_HEX[b >> 4] + _HEX[b & 15] for b in key)


def hex_to_key(text):
    if len(text) != 64:
        raise ValueError("a key is 64 hex digits, got %d characters" % len(text))
    out = bytearray(32)
    lower = text.lower()
    for i in range(32):
        hi = _HEX.find(lower[2 * i])
        lo = _HEX.find(lower[2 * i + 1])
        if hi < 0 or lo < 0:
            raise ValueError("a key is 64 hex digits")
        out[i] = (hi << 4) | lo
    return bytes(out)


def parse_endpoint(text):
    """'1.2.3.4:51820' -> ('1.2.3.4', 51820); '[fd00::1]:51820' -> ('fd00::1', 51820, 0, 0)."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1:close + 2] != ":":
            raise ValueError("bad endpoint %r: expected [address]:port" % text)
        host, port_text = text[1:close], text[close + 2:]
        zone = ""
        if "%" in host:
            host, zone = host.split("%", 1)
        host = format_ip(parse_ip(host))
        if len(parse_ip(host)) != 16:
            raise ValueError("bad endpoint %r: brackets are for IPv6" % text)
        port = _parse_int(port_text, 1, 65535, "endpoint port")
        return (host + ("%" + zone if zone else ""), port, 0, 0)
    host, sep, port_text = text.rpartition(":")
    if not sep or ":" in host:
        raise ValueError("bad endpoint %r: expected address:port" % text)
    addr = parse_ip(host)
    if len(addr) != 4:
        raise ValueError("bad endpoint %r" % text)
    return (format_ip(addr), _parse_int(port_text, 1, 65535, "endpoint port"))


def format_endpoint(endpoint):
    host, port = endpoint[0], endpoint[1]
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def _parse_int(text, low, high, what):
    if not text or not text.isdigit() or len(text) > 10:
        raise ValueError("%s must be a number, got %r" % (what, text))
    value = int(text)
    if value < low or value > high:
        raise ValueError("%s must be %d-%d, got %d" % (what, low, high, value))
    return value


def _parse_bool_true(key, value):
    if value != "true":
        raise ValueError("%s only takes 'true', got %r" % (key, value))
    return True


def parse_set(lines):
    """Validate the lines of one `set=1` request into a list of operations.

    Returns [(key, value)] with values converted; raises UapiError on the first bad line.
    """
    ops = []
    in_peer = False
    for lineno, line in enumerate(lines, 1):
        key, eq, value = line.partition("=")
        if not eq:
            raise UapiError(EPROTO, "line %d: expected key=value (a line of %d characters "
                            "without '=')" % (lineno, len(line)))
        try:
            if key == "public_key":
                in_peer = True
                ops.append((key, hex_to_key(value)))
            elif key in _DEVICE_KEYS and not in_peer:
                if key == "private_key":
                    ops.append((key, hex_to_key(value)))
                elif key == "listen_port":
                    ops.append((key, _parse_int(value, 0, 65535, "listen_port")))
                elif key == "fwmark":
                    ops.append((key, _parse_int(value, 0, 0xFFFFFFFF, "fwmark")))
                else:
                    ops.append((key, _parse_bool_true(key, value)))
            elif key in _PEER_KEYS and in_peer:
                if key in ("remove", "update_only", "replace_allowed_ips"):
                    ops.append((key, _parse_bool_true(key, value)))
                elif key == "preshared_key":
                    ops.append((key, hex_to_key(value)))
                elif key == "endpoint":
                    ops.append((key, parse_endpoint(value)))
                elif key == "persistent_keepalive_interval":
                    ops.append((key, _parse_int(value, 0, 65535, key)))
                elif key == "allowed_ip":
                    remove = value.startswith("-")
                    addr, bits = parse_cidr(value[1:] if remove else value)
                    ops.append((key, (remove, addr, bits)))
                else:  # protocol_version
                    if value != "1":
                        raise ValueError("only protocol_version=1 exists, got %r" % value)
            else:
                where = "a peer" if in_peer else "the interface"
                if key in _DEVICE_KEYS or key in _PEER_KEYS:
                    raise UapiError(EINVAL, "line %d: %s is not a key for %s"
                                    % (lineno, key, where))
                # An unknown key is not repeated: it may be a pasted key (base64 ends in '=').
                raise UapiError(EINVAL, "line %d: unknown key (%d characters) for %s"
                                % (lineno, len(key), where))
        except ValueError:
            # The helpers' messages quote the value: say what was expected instead.
            raise UapiError(EINVAL, "line %d: %s takes %s (got %d characters)"
                            % (lineno, key, _EXPECTED[key], len(value)))
    return ops


def apply_set(device, ops, now, out, bind=None):
    """Apply validated operations in order. `bind(port)` (from the I/O layer) may raise
    OSError when a new listen_port cannot be bound: then nothing at all is changed."""
    for key, value in ops:
        if key == "listen_port" and value != device.listen_port and bind is not None:
            try:
                bind(value)
            except OSError as exc:
                raise UapiError(EADDRINUSE, "cannot listen on port %d: %s" % (value, exc))
    peer = None
    created = skip = False
    for key, value in ops:
        if key == "private_key":
            device.set_private_key(None if value == bytes(32) else value)
        elif key == "listen_port":
            device.listen_port = value
        elif key == "fwmark":
            device.fwmark = value
        elif key == "replace_peers":
            device.remove_all_peers()
        elif key == "public_key":
            # As wireguard-go: the peer exists from its public_key line on; a peer carrying
            # our own key is ignored with everything that follows it.
            skip = value == device.public_key
            peer = None if skip else device.peers.get(value)
            created = peer is None and not skip
            if created:
                peer = device.add_peer(value)
        elif skip:
            continue
        elif key == "update_only":
            if created:
                device.remove_peer(peer)
                peer, skip = None, True
        elif key == "remove":
            device.remove_peer(peer)
            peer, skip = None, True
        elif key == "preshared_key":
            peer.set_preshared_key(None if value == bytes(32) else value)
        elif key == "endpoint":
            peer.endpoint = value
        elif key == "persistent_keepalive_interval":
            peer.set_persistent_keepalive(value, now, out)
        elif key == "replace_allowed_ips":
            device.allowed_ips.remove_peer(peer)
        elif key == "allowed_ip":
            remove, addr, bits = value
            if remove:
                device.allowed_ips.remove(addr, bits, peer)
            else:
                device.allowed_ips.insert(addr, bits, peer)
        if peer is not None:
            device.touch(peer)


def _interface_lines(device):
    lines = []
    if device.private_key is not None:
        lines.append("private_key=" + key_to_hex(device.private_key))
    if device.listen_port:
        lines.append("listen_port=%d" % device.listen_port)
    if device.fwmark:
        lines.append("fwmark=%d" % device.fwmark)
    return lines


def _peer_lines(device, peer):
    """A peer's lines up to (not including) its allowed_ip lines."""
    lines = ["public_key=" + key_to_hex(peer.public_key),
             "preshared_key=" + key_to_hex(peer.preshared_key),
             "protocol_version=1"]
    if peer.endpoint is not None:
        lines.append("endpoint=" + format_endpoint(peer.endpoint))
    if peer.last_handshake is None:
        sec = nsec = 0
    else:
        wall = peer.last_handshake + device.wall_offset
        sec = int(wall)
        nsec = int((wall - sec) * 1e9)
    lines.append("last_handshake_time_sec=%d" % sec)
    lines.append("last_handshake_time_nsec=%d" % nsec)
    lines.append("tx_bytes=%d" % peer.tx_bytes)
    lines.append("rx_bytes=%d" % peer.rx_bytes)
    lines.append("persistent_keepalive_interval=%d" % peer.persistent_keepalive_interval)
    return lines


def get_lines(device):
    """The `get=1` answer as a list of lines, in wireguard-go's order."""
    lines = _interface_lines(device)
    for peer in device.peers.values():
        lines.extend(_peer_lines(device, peer))
        for addr, bits in device.allowed_ips.entries(peer):
            lines.append("allowed_ip=" + format_cidr(addr, bits))
    return lines


def get_pieces(device):
    """The `get=1` answer as a generator of text pieces, each a run of whole lines ending in
    a newline; joined, they are `get_lines` with a newline after each line.

    Between pieces the caller may let the device change (the control socket sends a large
    answer as the client reads it, other requests and traffic running in between). What the
    answer then shows: the interface as it was at the first piece, the peers that existed at
    the first piece and still exist when their turn comes (one removed meanwhile is left
    out, one added meanwhile is not listed), each peer's fields as they are at its turn, and
    its allowed IPs as they were at its turn. A piece is never part of a line, and a peer's
    fields and allowed IPs are taken together, so no peer is ever half shown.
    """
    head = _interface_lines(device)
    if head:
        yield "\n".join(head) + "\n"
    for peer in list(device.peers.values()):
        if device.peers.get(peer.public_key) is not peer:
            continue  # removed (or removed and added again) since the get began
        lines = _peer_lines(device, peer)
        entries = device.allowed_ips.entries(peer)
        # Formatting is the costly part: at most ALLOWED_IPS_PER_PIECE prefixes per piece.
        first = ALLOWED_IPS_PER_PIECE - 1
        for addr, bits in entries[:first]:
            lines.append("allowed_ip=" + format_cidr(addr, bits))
        yield "\n".join(lines) + "\n"
        for start in range(first, len(entries), ALLOWED_IPS_PER_PIECE):
            yield "".join("allowed_ip=" + format_cidr(addr, bits) + "\n"
                          for addr, bits in entries[start:start + ALLOWED_IPS_PER_PIECE])
