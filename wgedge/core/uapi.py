"""WireGuard's cross-platform userspace API (the text `wg` speaks to wireguard-go).

    get=1\\n\\n          -> key=value lines in wireguard-go's order, then errno=0\\n\\n
    set=1\\n key=value ... \\n -> errno=0\\n\\n, or errno=-EINVAL etc.

Rules kept here:
- A `set` is parsed and validated completely before anything is applied: a bad line answers
  with an errno and changes nothing (stricter than wireguard-go, which applies line by line).
  The parse may be spread over the request's arrival (SetParser, fed any split of its lines,
  gives what parse_set gives for all of them); the apply is one step (apply_set).
- Errno values are wireguard-go's: negative Linux errnos (-EINVAL, -EPROTO, -EADDRINUSE, ...).
- Keys are 64 lowercase hex digits; endpoints are `ip:port` or `[ipv6]:port` literals (`wg`
  resolves host names before it talks to us).
- `last_handshake_time_*` is Unix epoch time: monotonic `last_handshake` + `wall_offset`.
- An error message names the line number, the key (only one this protocol knows) and what was
  expected, never the value: errors are logged, and a value on a malformed line may be a key
  pasted in the wrong place.
- The `get=1` answer is made in uapi_get.py, peer by peer (`get_pieces`), so a server can
  send it as the client reads.

About 420 lines: the set request's parser, the opcodes it encodes lines into and the apply
that walks them share one private encoding, kept in one file.
"""

from wgedge.core import consts as C
from wgedge.core.endpoint import format_endpoint as format_endpoint_text
from wgedge.core.endpoint import split_endpoint
from wgedge.core.ipaddr import format_ip, parse_cidr, parse_ip

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
    # int() does the work in C; it also takes a sign, "0x", "_", spaces and non-ASCII digits,
    # none of which survives the way back to 64 lowercase hex digits.
    try:
        value = int(text, 16)
    except ValueError:
        raise ValueError("a key is 64 hex digits")
    if value < 0 or "%064x" % value != text.lower():
        raise ValueError("a key is 64 hex digits")
    return value.to_bytes(32, "big")


def parse_endpoint(text):
    """'1.2.3.4:51820' -> ('1.2.3.4', 51820); '[fd00::1]:51820' -> ('fd00::1', 51820, 0, 0)."""
    addr, port, zone = _endpoint_parts(text)
    if zone is None:
        return (format_ip(addr), port)
    return (format_ip(addr) + ("%" + zone if zone else ""), port, 0, 0)


def _endpoint_parts(text):
    """-> (address bytes, port, zone): zone None for IPv4, '' for IPv6 without one."""
    parts = split_endpoint(text)
    if parts is None:
        raise ValueError("bad endpoint %r: expected %s" % (
            text, "[address]:port" if text.startswith("[") else "address:port"))
    host, port_text, bracketed = parts
    zone = None
    if bracketed:
        host, _, zone = host.partition("%")
    if len(host) > _MAX_ADDRESS_TEXT:
        raise ValueError("bad endpoint: address too long")
    addr = parse_ip(host)
    if len(addr) != (16 if bracketed else 4):
        raise ValueError("bad endpoint %r%s" % (text, ": brackets are for IPv6" if bracketed
                                                 else ""))
    return addr, _parse_int(port_text, 1, 65535, "endpoint port"), zone


def format_endpoint(endpoint):
    """A device endpoint tuple as `get` writes it."""
    return format_endpoint_text(endpoint[0], endpoint[1])


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


# --- set: parsing ---------------------------------------------------------------------------
# The parsed form of a set is compact bytes, an opcode and a fixed payload per line, so a
# request held while its lines arrive costs little more than its text does (the list of
# (key, value) tuples this once was cost 6 to 8 times the text). `operations` turns it back
# into those (key, value) pairs for apply_set.
_PRIVATE_KEY = 1  # 32-byte key (all zeros: remove the key)
_LISTEN_PORT = 2  # 2 bytes, big endian
_FWMARK = 3  # 4 bytes, big endian
_REPLACE_PEERS = 4
_PUBLIC_KEY = 5  # 32-byte key
_REMOVE = 6
_UPDATE_ONLY = 7
_PRESHARED_KEY = 8  # 32-byte key (all zeros: remove the key)
_KEEPALIVE = 9  # 2 bytes
_REPLACE_ALLOWED_IPS = 10
_ENDPOINT4 = 11  # 4 address bytes, 2 port bytes
_ENDPOINT6 = 12  # 16 address bytes, 2 port bytes
_ENDPOINT6_ZONE = 13  # 16 address bytes, 2 port bytes, 4 bytes n, n bytes of zone (UTF-8)
_ALLOWED_IP4 = 14  # prefix length, 4 address bytes
_ALLOWED_IP6 = 15  # prefix length, 16 address bytes
_REMOVE_IP4 = 16  # the same, for '-' (remove the prefix)
_REMOVE_IP6 = 17
_KEY_OPS = {_PRIVATE_KEY: "private_key", _PUBLIC_KEY: "public_key",
            _PRESHARED_KEY: "preshared_key"}
_FLAG_OPS = {_REPLACE_PEERS: "replace_peers", _REMOVE: "remove", _UPDATE_ONLY: "update_only",
             _REPLACE_ALLOWED_IPS: "replace_allowed_ips"}
_FLAG_CODES = {"replace_peers": _REPLACE_PEERS, "remove": _REMOVE, "update_only": _UPDATE_ONLY,
               "replace_allowed_ips": _REPLACE_ALLOWED_IPS}
# No valid address text is longer (IPv6 with an IPv4 tail; a prefix adds 4): a longer value
# is refused before ipaddr's per-character checks run over it.
_MAX_ADDRESS_TEXT = 45
_MAX_CIDR_TEXT = 64


class SetParser:
    """One `set=1` request, parsed as its lines arrive.

    `feed(lines)` takes the next lines (any number of calls, any split), `finish()` returns
    the parsed request for apply_set or raises the UapiError of its first bad line: what
    parse_set gives for all the lines at once. After a bad line the rest is not looked at
    and what was parsed is let go. The work of `feed` is proportional to what it is given:
    each line costs a bounded number of Python steps (plus C-speed scans of its text), so a
    server can feed a large request in slices between other work."""

    def __init__(self):
        self.lineno = 0
        self.error = None
        self._in_peer = False
        self._out = bytearray()

    def feed(self, lines):
        if self.error is not None:
            return  # the answer is decided: the rest is not looked at
        for line in lines:
            self.lineno += 1
            try:
                self._parse_line(line)
            except UapiError as exc:
                self.error = exc
                self._out = None  # nothing of the request will be applied
                return

    def finish(self):
        if self.error is not None:
            raise self.error
        return bytes(self._out)

    def size(self):
        """Bytes held for the lines parsed so far (at most 4/3 of their text)."""
        return 0 if self._out is None else len(self._out)

    def _parse_line(self, line):
        out = self._out
        lineno = self.lineno
        key, eq, value = line.partition("=")
        if not eq:
            raise UapiError(EPROTO, "line %d: expected key=value (a line of %d characters "
                            "without '=')" % (lineno, len(line)))
        try:
            if key == "allowed_ip" and self._in_peer:  # the most frequent line first
                remove = value.startswith("-")
                text = value[1:] if remove else value
                if len(text) > _MAX_CIDR_TEXT and len(text.strip()) > _MAX_CIDR_TEXT:
                    raise ValueError("too long")
                addr, bits = parse_cidr(text)
                if remove:
                    out.append(_REMOVE_IP4 if len(addr) == 4 else _REMOVE_IP6)
                else:
                    out.append(_ALLOWED_IP4 if len(addr) == 4 else _ALLOWED_IP6)
                out.append(bits)
                out += addr
            elif key == "public_key":
                self._in_peer = True
                out.append(_PUBLIC_KEY)
                out += hex_to_key(value)
            elif key in _DEVICE_KEYS and not self._in_peer:
                if key == "private_key":
                    out.append(_PRIVATE_KEY)
                    out += hex_to_key(value)
                elif key == "listen_port":
                    port = _parse_int(value, 0, 65535, "listen_port")
                    out.append(_LISTEN_PORT)
                    out += port.to_bytes(2, "big")
                elif key == "fwmark":
                    mark = _parse_int(value, 0, 0xFFFFFFFF, "fwmark")
                    out.append(_FWMARK)
                    out += mark.to_bytes(4, "big")
                else:
                    _parse_bool_true(key, value)
                    out.append(_REPLACE_PEERS)
            elif key in _PEER_KEYS and self._in_peer:
                if key in ("remove", "update_only", "replace_allowed_ips"):
                    _parse_bool_true(key, value)
                    out.append(_FLAG_CODES[key])
                elif key == "preshared_key":
                    out.append(_PRESHARED_KEY)
                    out += hex_to_key(value)
                elif key == "endpoint":
                    _encode_endpoint(out, value)
                elif key == "persistent_keepalive_interval":
                    interval = _parse_int(value, 0, 65535, key)
                    out.append(_KEEPALIVE)
                    out += interval.to_bytes(2, "big")
                else:  # protocol_version
                    if value != "1":
                        raise ValueError("only protocol_version=1 exists, got %r" % value)
            else:
                where = "a peer" if self._in_peer else "the interface"
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


def _encode_endpoint(out, text):
    addr, port, zone = _endpoint_parts(text)
    if zone is None:
        out.append(_ENDPOINT4)
        out += addr
        out += port.to_bytes(2, "big")
        return
    out.append(_ENDPOINT6_ZONE if zone else _ENDPOINT6)
    out += addr
    out += port.to_bytes(2, "big")
    if zone:
        zone = zone.encode()
        out += len(zone).to_bytes(4, "big")
        out += zone


def parse_set(lines):
    """Validate the lines of one `set=1` request (all at once) for apply_set; raises the
    UapiError of the first bad line. SetParser does the same as the lines arrive."""
    parser = SetParser()
    parser.feed(lines)
    return parser.finish()


def operations(parsed):
    """The parsed request as (key, value) pairs in request order: keys as in the protocol,
    values converted (keys as 32 bytes, numbers as ints, flags as True, an endpoint as
    parse_endpoint gives it, an allowed_ip as (remove, address bytes, prefix length))."""
    i = 0
    end = len(parsed)
    while i < end:
        op = parsed[i]
        i += 1
        if op >= _ALLOWED_IP4:
            n = 4 if op == _ALLOWED_IP4 or op == _REMOVE_IP4 else 16
            yield "allowed_ip", (op >= _REMOVE_IP4, parsed[i + 1:i + 1 + n], parsed[i])
            i += 1 + n
        elif op in _KEY_OPS:
            yield _KEY_OPS[op], parsed[i:i + 32]
            i += 32
        elif op in _FLAG_OPS:
            yield _FLAG_OPS[op], True
        elif op == _LISTEN_PORT or op == _KEEPALIVE:
            value = (parsed[i] << 8) | parsed[i + 1]
            yield ("listen_port" if op == _LISTEN_PORT
                   else "persistent_keepalive_interval"), value
            i += 2
        elif op == _FWMARK:
            yield "fwmark", int.from_bytes(parsed[i:i + 4], "big")
            i += 4
        elif op == _ENDPOINT4:
            yield "endpoint", (format_ip(parsed[i:i + 4]), (parsed[i + 4] << 8) | parsed[i + 5])
            i += 6
        elif op == _ENDPOINT6 or op == _ENDPOINT6_ZONE:
            host = format_ip(parsed[i:i + 16])
            port = (parsed[i + 16] << 8) | parsed[i + 17]
            i += 18
            if op == _ENDPOINT6_ZONE:
                n = int.from_bytes(parsed[i:i + 4], "big")
                host += "%" + parsed[i + 4:i + 4 + n].decode()
                i += 4 + n
            yield "endpoint", (host, port, 0, 0)
        else:
            raise ValueError("not a parsed set request (opcode %d)" % op)


# --- set: applying ---------------------------------------------------------------------------
def apply_set(device, parsed, now, out, bind=None):
    """Apply a parsed request (parse_set, SetParser) in order. `bind(port)` (from the I/O
    layer) may raise OSError when a new listen_port cannot be bound: then nothing at all is
    changed. Each peer's deadlines are re-read once, when its lines end."""
    for key, value in operations(parsed):
        if key == "public_key":
            break  # interface keys come first (the parser refuses them after a peer)
        if key == "listen_port" and value != device.listen_port and bind is not None:
            try:
                bind(value)
            except OSError as exc:
                raise UapiError(EADDRINUSE, "cannot listen on port %d: %s" % (value, exc))
    if len(device.peers) + parsed.count(_PUBLIC_KEY) > C.MAX_PEERS:  # a cheap upper bound
        _check_peer_count(device, parsed)
    peer = None
    created = skip = False
    for key, value in operations(parsed):
        if key == "allowed_ip":  # the most frequent line first
            if skip:
                continue
            remove, addr, bits = value
            if remove:
                device.allowed_ips.remove(addr, bits, peer)
            else:
                device.allowed_ips.insert(addr, bits, peer)
        elif key == "public_key":
            if peer is not None:
                device.touch(peer)
            # As wireguard-go: the peer exists from its public_key line on; a peer carrying
            # our own key is ignored with everything that follows it.
            skip = value == device.public_key
            peer = None if skip else device.peers.get(value)
            created = peer is None and not skip
            if created:
                peer = device.add_peer(value)
        elif key == "private_key":
            device.set_private_key(None if value == bytes(32) else value)
        elif key == "listen_port":
            device.listen_port = value
        elif key == "fwmark":
            device.fwmark = value
        elif key == "replace_peers":
            device.remove_all_peers()
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
            peer.set_persistent_keepalive(value, now)
        elif key == "replace_allowed_ips":
            device.allowed_ips.remove_peer(peer)
    if peer is not None:
        device.touch(peer)


def _check_peer_count(device, parsed):
    """Raise, before anything changes, if applying `parsed` would pass C.MAX_PEERS at any
    point: the request's peers are followed through replace_peers, remove and update_only in
    order, as apply_set will add and drop them. A peer line with the interface's current public key counts, though apply_set skips
    it (a request that also changes the private key changes that key): at most one too many,
    and only for a request at the limit."""
    present = None  # keys that will exist; None: the device's, untouched yet
    last = None
    created = False
    most = len(device.peers)  # the most peers at any point of the request
    for key, value in operations(parsed):
        if key == "replace_peers":
            present = {}
        elif key == "public_key":
            if present is None:
                present = dict.fromkeys(device.peers)
            last = value
            created = value not in present
            present[value] = True
            if len(present) > most:
                most = len(present)
        elif key == "remove" or (key == "update_only" and created):
            if last in present:
                del present[last]
    if most > C.MAX_PEERS:
        raise UapiError(EINVAL, "too many peers: %d, at most %d" % (most, C.MAX_PEERS))


