"""The validated configuration: interfaces and peers, from UCI or wg-quick files.

Rules kept here:
- `load(path)` returns (interfaces, errors, warnings); it collects every problem instead of
  stopping at the first, and each names file, line and option.
- OpenWrt's WireGuard schema as OpenWrt users write it: `config interface 'NAME'` with
  `option proto 'wireguard'`, peers in sections of type `wireguard_NAME`. Section types
  OpenWrt keeps in /etc/config/network (globals, device, route, ...) and interfaces of other
  protocols are ignored with a warning; anything else is an error.
- wgedge's additions: `private_key_file` / `preshared_key_file` (a key kept in its own file,
  warned about when group or others may read it), and a `config wgedge` section for the
  watchdog (see docs/configuration.md).
- No message made here quotes a value that could be a key: the rule is at the top of
  wgedge/config/uci.py (key options and paths never quoted, other values only through
  `shown`, which gives just the length of anything with 16 base64 characters in a row).
"""

import os

from wgedge.config import uci
from wgedge.config.uci import ConfigError, key_like, option_name, shown
from wgedge.core.ipaddr import format_cidr, mask, parse_cidr, parse_ip

GENERATE = "generate"
DEFAULT_PATH = "/etc/config/wgedge"

# OpenWrt's generic interface options: known, accepted, and ignored by wgedge (a warning
# says so) unless listed in _USED_GENERIC.
GENERIC_INTERFACE_OPTIONS = ("auto", "disabled", "ip6prefix", "nohostroute", "tunlink",
                             "defaultroute", "metric", "peerdns", "dns", "dns_metric",
                             "ip4table", "ip6table", "force_link", "delegate", "ifname",
                             "device", "zone", "multipath", "macaddr", "type")
_USED_GENERIC = ("disabled", "nohostroute", "auto")
INTERFACE_OPTIONS = ("proto", "private_key", "private_key_file", "listen_port", "addresses",
                     "mtu", "fwmark")
PEER_OPTIONS = ("public_key", "preshared_key", "preshared_key_file", "allowed_ips",
                "route_allowed_ips", "endpoint_host", "endpoint_port", "persistent_keepalive",
                "description", "disabled")
WGEDGE_OPTIONS = ("watchdog_device", "watchdog_interval", "check_interval",
                  "stale_handshake")
OPENWRT_NETWORK_TYPES = ("globals", "device", "route", "route6", "rule", "rule6", "switch",
                         "switch_vlan", "switch_port", "bridge-vlan", "alias")

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def decode_key(text):
    """A WireGuard key: 44 characters of base64 for 32 bytes. ValueError says what is wrong,
    never quoting any of `text` (it may be a private key)."""
    text = text.strip()
    if len(text) != 44 or text[43] != "=" or text[42] == "=":
        raise ValueError("a key is 44 base64 characters ending in '=' (like `wg genkey` "
                         "prints), got %d characters" % len(text))
    bits = 0
    for c in text[:43]:
        v = _B64.find(c)
        if v < 0:
            # The offending character is not echoed: this text may be a private key.
            raise ValueError("not base64: a character outside A-Z, a-z, 0-9, + and /")
        bits = (bits << 6) | v
    if bits & 3:
        raise ValueError("not a canonical base64 key")
    return (bits >> 2).to_bytes(32, "big")


def encode_key(key):
    bits = int.from_bytes(key, "big") << 2
    out = []
    for i in range(43):
        out.append(_B64[(bits >> (6 * (42 - i))) & 63])
    return "".join(out) + "="


class PeerConfig:
    def __init__(self):
        self.name = None
        self.line = 0
        self.public_key = None
        self.preshared_key = None
        self.allowed_ips = []  # [(addr bytes, cidr)] masked
        self.route_allowed_ips = False
        self.endpoint_host = None
        self.endpoint_port = 51820
        self.persistent_keepalive = 0
        self.description = ""


class InterfaceConfig:
    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.line = 0
        self.private_key = None
        self.private_key_file = None
        self.generate_line = 0  # the line of `private_key 'generate'`, if any
        self.listen_port = 0
        self.addresses = []  # ["10.0.0.1/24", ...] as written (host bits kept)
        self.mtu = 1420
        self.fwmark = 0
        self.nohostroute = False
        self.peers = []


class Settings:
    """The `config wgedge` section: watchdog behaviour."""

    def __init__(self):
        self.watchdog_device = None
        self.watchdog_interval = 10
        self.check_interval = 10
        self.stale_handshake = 150


class Loaded:
    def __init__(self, path):
        self.path = path
        self.interfaces = []
        self.settings = Settings()
        self.errors = []
        self.warnings = []

    def interface(self, name):
        for i in self.interfaces:
            if i.name == name:
                return i
        return None


def peer_label(peer):
    """How a log line names a peer: its description or section name, unless that could be a
    key (the rule in uci.py), else the line of its section."""
    for text in (peer.description, peer.name):
        if text and not key_like(text):
            return text
    return "at line %d" % peer.line


def _digits(value):
    return bool(value) and all(c in "0123456789" for c in value)


def _int(value, low, high):
    if not _digits(value):
        raise ValueError("expected a number from %d to %d, got %s" % (low, high, shown(value)))
    if len(value) > 12 or not low <= int(value) <= high:
        raise ValueError("must be from %d to %d, got %s" % (low, high, shown(value)))
    return int(value)


def parse_fwmark(value):
    """A firewall mark: decimal or 0x hex up to 32 bits; 'off' is 0 (as `wg` takes it)."""
    text = value.lower()
    if text == "off":
        return 0
    if text.startswith("0x") and 2 < len(text) <= 10 and all(
            c in "0123456789abcdef" for c in text[2:]):
        return int(text, 16)
    if _digits(text) and len(text) <= 10 and int(text) <= 0xFFFFFFFF:
        return int(text)
    raise ValueError("expected a mark from 0 to 4294967295, decimal or 0x hex, got %s"
                     % shown(value))


def parse_address(value):
    """parse_cidr, whose message quotes the text: kept only when the text is not key_like."""
    try:
        return parse_cidr(value)
    except ValueError:
        if key_like(value):
            raise ValueError("expected an address with an optional prefix length, like "
                             "10.0.0.1/24 or fd00::1/64, got %s" % shown(value)) from None
        raise


def valid_host(host):
    """An IP address (IPv6 with an optional %zone), or a DNS name: dot-separated labels of
    1-63 letters, digits, '-' or '_' (no '-' at either end), the last not all digits (so a
    bad IPv4 address is no name)."""
    address, percent, zone = host.partition("%")
    try:
        parse_ip(address)
        return not percent or (":" in address and 1 <= len(zone) <= 15 and all(
            c.isalnum() and c.isascii() or c in "-_." for c in zone))
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    for label in labels:
        if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isalnum() and c.isascii() or c in "-_" for c in label):
            return False
    return not _digits(labels[-1])


def _read_key_file(name, config_path):
    """(key, permission bits) of key file `name`, relative to the config file's directory.
    Its ValueError quotes neither the path nor the contents (the rule in uci.py)."""
    relative = not name.startswith("/")
    full = os.path.join(os.path.dirname(config_path), name) if relative else name
    where = " (a relative path starts at the config file's directory)" if relative else ""
    try:
        with open(full) as f:
            mode = os.fstat(f.fileno()).st_mode & 0o777
            text = f.read().strip()
    except OSError as exc:
        raise ValueError("cannot read the key file: %s%s" % (exc.strerror or "error", where))
    except UnicodeDecodeError:
        raise ValueError("the key file is not text: it must hold one base64 key") from None
    try:
        return decode_key(text), mode
    except ValueError as exc:
        raise ValueError("the key file holds no valid key: %s" % exc) from None


def _key_from_file(s, option, path, err, warn):
    """The key in the file named by `option` of section `s`, or None after an error; a file
    that group or others may read gets a warning."""
    line = s.line_of(option)
    try:
        key, mode = _read_key_file(s.get(option), path)
    except ValueError as exc:
        err(ConfigError(path, line, str(exc), option))
        return None
    if mode & 0o077:
        warn(ConfigError(path, line, "the key file is readable by group or others (mode %o): "
                         "chmod 600 it" % mode, option))
    return key


def _single_values(s, options, path, err):
    """An option of `options` given with `list` is an error (it would be ignored)."""
    for key in s.lists:
        if key in options:
            err(ConfigError(path, s.line_of(key), "takes one value: write `option %s`, not "
                            "`list`" % key, key))


def _values(section, key):
    """A list option's values; an `option` of that name is split on white space (OpenWrt
    accepts both forms)."""
    if key in section.lists:
        return [(v, line) for v, line in section.lists[key]]
    if key in section.options:
        v, line = section.options[key]
        return [(w, line) for w in v.split()]
    return []


def from_uci(text, path):
    loaded = Loaded(path)
    sections, errors = uci.parse(text, path, loaded.warnings)
    loaded.errors.extend(errors)
    err = loaded.errors.append
    warn = loaded.warnings.append
    by_name = {}
    peer_sections = []
    for s in sections:
        if s.type == "interface":
            proto = s.get("proto")
            if proto != "wireguard":
                warn(ConfigError(path, s.line, "interface %s is proto %s, not wireguard: "
                                 "ignored" % (shown(s.name), shown(proto))))
                continue
            if s.name is None:
                err(ConfigError(path, s.line, "a wireguard interface section needs a name "
                                "(the interface name)"))
                continue
            if len(s.name) > 15:
                err(ConfigError(path, s.line, "interface name %s is longer than 15 characters"
                                % shown(s.name)))
                continue
            if s.name in by_name:
                err(ConfigError(path, s.line, "interface %s defined twice" % shown(s.name)))
                continue
            iface = _interface(s, path, err, warn)
            if iface is not None:
                by_name[s.name] = iface
                loaded.interfaces.append(iface)
        elif s.type.startswith("wireguard_"):
            peer_sections.append(s)
        elif s.type == "wgedge":
            _settings(s, path, loaded.settings, err)
        elif s.type in OPENWRT_NETWORK_TYPES:
            warn(ConfigError(path, s.line, "section type %r is not wgedge's: ignored" % s.type))
        else:
            err(ConfigError(path, s.line, "unknown section type %s (expected interface, "
                            "wireguard_IFNAME or wgedge)" % shown(s.type)))
    for s in peer_sections:
        ifname = s.type[len("wireguard_"):]
        iface = by_name.get(ifname)
        if iface is None:
            err(ConfigError(path, s.line, "peer section for interface %s, which is not a "
                            "wireguard interface in this file" % shown(ifname)))
            continue
        peer = _peer(s, path, err, warn)
        if peer is not None:
            iface.peers.append(peer)
    for iface in loaded.interfaces:
        _check_duplicates(iface, path, err)
    return loaded


def _interface(s, path, err, warn):
    iface = InterfaceConfig(s.name, path)
    iface.line = s.line
    for key in s.order:
        line = s.line_of(key)
        if key in INTERFACE_OPTIONS:
            continue
        if key in GENERIC_INTERFACE_OPTIONS:
            if key not in _USED_GENERIC:
                warn(ConfigError(path, line, "OpenWrt option accepted but ignored by wgedge",
                                 key))
            continue
        err(ConfigError(path, line, "unknown option for a wireguard interface", option_name(key)))
    _single_values(s, [o for o in INTERFACE_OPTIONS + _USED_GENERIC if o != "addresses"], path,
                   err)
    try:
        if s.get("disabled") is not None and uci.parse_bool(s.get("disabled")):
            warn(ConfigError(path, s.line, "interface %s is disabled: skipped" % shown(s.name)))
            return None
    except ValueError as exc:
        err(ConfigError(path, s.line_of("disabled"), str(exc), "disabled"))
    key = s.get("private_key")
    key_file = s.get("private_key_file")
    if key is not None and key_file is not None:
        err(ConfigError(path, s.line_of("private_key_file"), "give private_key or "
                        "private_key_file, not both", "private_key_file"))
    elif key == GENERATE:
        iface.generate_line = s.line_of("private_key")
    elif key is not None:
        try:
            iface.private_key = decode_key(key)
        except ValueError as exc:
            err(ConfigError(path, s.line_of("private_key"), str(exc), "private_key"))
    elif key_file is not None:
        iface.private_key_file = key_file
        iface.private_key = _key_from_file(s, "private_key_file", path, err, warn)
    else:
        err(ConfigError(path, s.line, "interface %s has no private_key" % shown(s.name),
                        "private_key"))
    for opt, low, high, attr in (("listen_port", 0, 65535, "listen_port"),
                                 ("mtu", 1280, 9000, "mtu"),
                                 ("fwmark", 0, 0xFFFFFFFF, "fwmark")):
        value = s.get(opt)
        if value is None:
            continue
        try:
            if opt == "fwmark":
                setattr(iface, attr, parse_fwmark(value))
            else:
                setattr(iface, attr, _int(value, low, high))
        except ValueError as exc:
            err(ConfigError(path, s.line_of(opt), str(exc), opt))
    for value, line in _values(s, "addresses"):
        try:
            addr, bits = parse_address(value)
            if "/" not in value:
                value = format_cidr(addr, bits)
            iface.addresses.append(value)
        except ValueError as exc:
            err(ConfigError(path, line, str(exc), "addresses"))
    if s.get("nohostroute") is not None:
        try:
            iface.nohostroute = uci.parse_bool(s.get("nohostroute"))
        except ValueError as exc:
            err(ConfigError(path, s.line_of("nohostroute"), str(exc), "nohostroute"))
    return iface


def _peer(s, path, err, warn):
    peer = PeerConfig()
    peer.name = s.name
    peer.line = s.line
    for key in s.order:
        if key not in PEER_OPTIONS:
            err(ConfigError(path, s.line_of(key), "unknown option for a peer", option_name(key)))
    _single_values(s, [o for o in PEER_OPTIONS if o != "allowed_ips"], path, err)
    try:
        if s.get("disabled") is not None and uci.parse_bool(s.get("disabled")):
            return None
    except ValueError as exc:
        err(ConfigError(path, s.line_of("disabled"), str(exc), "disabled"))
    key = s.get("public_key")
    if key is None:
        err(ConfigError(path, s.line, "peer has no public_key", "public_key"))
    else:
        try:
            peer.public_key = decode_key(key)
        except ValueError as exc:
            err(ConfigError(path, s.line_of("public_key"), str(exc), "public_key"))
    psk, psk_file = s.get("preshared_key"), s.get("preshared_key_file")
    if psk is not None and psk_file is not None:
        err(ConfigError(path, s.line_of("preshared_key_file"), "give preshared_key or "
                        "preshared_key_file, not both", "preshared_key_file"))
    elif psk is not None:
        try:
            peer.preshared_key = decode_key(psk)
        except ValueError as exc:
            err(ConfigError(path, s.line_of("preshared_key"), str(exc), "preshared_key"))
    elif psk_file is not None:
        peer.preshared_key = _key_from_file(s, "preshared_key_file", path, err, warn)
    ips = _values(s, "allowed_ips")
    if not ips:
        err(ConfigError(path, s.line, "peer has no allowed_ips: it could never send or "
                        "receive anything", "allowed_ips"))
    for value, line in ips:
        try:
            addr, bits = parse_address(value)
            peer.allowed_ips.append((mask(addr, bits), bits))
        except ValueError as exc:
            err(ConfigError(path, line, str(exc), "allowed_ips"))
    for opt in ("route_allowed_ips",):
        if s.get(opt) is not None:
            try:
                peer.route_allowed_ips = uci.parse_bool(s.get(opt))
            except ValueError as exc:
                err(ConfigError(path, s.line_of(opt), str(exc), opt))
    host = s.get("endpoint_host")
    if host is not None:
        if valid_host(host.strip("[]")):
            peer.endpoint_host = host.strip("[]")
        else:
            err(ConfigError(path, s.line_of("endpoint_host"), "expected a host name or an IP "
                            "address, got %s" % shown(host), "endpoint_host"))
    port = s.get("endpoint_port")
    if port is not None:
        try:
            peer.endpoint_port = _int(port, 1, 65535)
        except ValueError as exc:
            err(ConfigError(path, s.line_of("endpoint_port"), str(exc), "endpoint_port"))
        if host is None:
            warn(ConfigError(path, s.line_of("endpoint_port"), "endpoint_port without "
                             "endpoint_host has no effect", "endpoint_port"))
    ka = s.get("persistent_keepalive")
    if ka is not None:
        try:
            peer.persistent_keepalive = _int(ka, 0, 65535)
        except ValueError as exc:
            err(ConfigError(path, s.line_of("persistent_keepalive"), str(exc),
                            "persistent_keepalive"))
    peer.description = s.get("description", "")
    return peer


def _settings(s, path, settings, err):
    for key in s.order:
        if key not in WGEDGE_OPTIONS:
            err(ConfigError(path, s.line_of(key), "unknown option for the wgedge section",
                            option_name(key)))
    _single_values(s, WGEDGE_OPTIONS, path, err)
    dev = s.get("watchdog_device")
    if dev is not None:
        if dev.startswith("/"):
            settings.watchdog_device = dev
        else:  # the path is not quoted: see uci.py
            err(ConfigError(path, s.line_of("watchdog_device"), "expected an absolute path, "
                            "like /dev/watchdog", "watchdog_device"))
    for opt, low, high in (("watchdog_interval", 1, 3600), ("check_interval", 1, 3600),
                           ("stale_handshake", 30, 86400)):
        if s.get(opt) is not None:
            try:
                setattr(settings, opt, _int(s.get(opt), low, high))
            except ValueError as exc:
                err(ConfigError(path, s.line_of(opt), str(exc), opt))


def _check_duplicates(iface, path, err):
    seen = {}
    for peer in iface.peers:
        if peer.public_key is None:
            continue
        if peer.public_key in seen:
            err(ConfigError(path, peer.line, "duplicate peer: the same public_key as the peer "
                            "at line %d" % seen[peer.public_key], "public_key"))
        else:
            seen[peer.public_key] = peer.line


def read_text(path):
    """The file's text. Bytes that are not UTF-8 come back as surrogate escapes: a stray
    byte in a description does not refuse the file (uci reads bytes), the parser warns
    about it, and `check --export` prints it back unchanged."""
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")


def load(path):
    """Read a UCI file, or a wg-quick file when the name ends in .conf."""
    try:
        text = read_text(path)
    except OSError as exc:
        loaded = Loaded(path)
        loaded.errors.append(ConfigError(path, 0, "cannot read: %s" % exc.strerror))
        return loaded
    if path.endswith(".conf"):
        from wgedge.config import wgquick

        return wgquick.from_text(text, path)
    return from_uci(text, path)
