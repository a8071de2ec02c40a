"""The one validator: the sections of a UCI file, or of a wg-quick file converted to them
(wgquick.py), checked against OpenWrt's WireGuard schema (schema.py) into a Loaded.

About 500 lines, on purpose: the checks of one schema, section type by section type, all
writing through one _Check in the file's Dialect; they are read (and changed) together.

Rules kept here:
- It collects every problem instead of stopping at the first, and each names file, line and
  option (config/loader.py's `load(path)` is the entry point).
- One validator (`check_sections`) behind both formats: a wg-quick file is converted into
  the sections a UCI file parses to (wgquick.py), so both meet the same checks and ranges;
  messages name the options as the file does (a `Dialect`) and come out in line order.
- OpenWrt's WireGuard schema as OpenWrt users and LuCI write it: `config interface 'NAME'`
  with `option proto 'wireguard'`, peers in sections of type `wireguard_NAME`. Section types
  OpenWrt keeps in /etc/config/network (globals, device, bridge-vlan, ...) and interfaces of
  other protocols are only counted, for one summary line (`Loaded.summary`), so a whole
  router file checks quietly; any other section type is an error.
- A likely typo (suggest.py) of 'wireguard', of an option, or of a section type wgedge reads
  is an error that says what was probably meant; so is an interface with WireGuard options
  or peers but no proto. A section with a bad name or proto is still checked, so one mistake
  never hides the others.
- wgedge's additions: `private_key_file` / `preshared_key_file` (a key kept in its own file,
  warned about when group or others may read it), and a `config wgedge` section for the
  watchdog (see docs/configuration.md).
- No message made here quotes a value that could be a key: the rule is at the top of
  wgedge/config/uci.py (key options and paths never quoted, other values only through
  `shown`, which gives just the length of anything with 16 base64 characters in a row).
"""

import os

from wgedge.config import suggest, uci
from wgedge.config.schema import (
    GENERATE,
    GENERIC_INTERFACE_OPTIONS,
    INTERFACE_OPTIONS,
    OPENWRT_NETWORK_TYPES,
    PEER_OPTIONS,
    USED_GENERIC_OPTIONS,
    WGEDGE_OPTIONS,
    InterfaceConfig,
    PeerConfig,
    decode_key,
    digits,
    parse_address,
    parse_fwmark,
    parse_int,
    valid_host,
)
from wgedge.config.uci import ConfigError, option_name, shown
from wgedge.core.ipaddr import format_cidr, mask
from wgedge.io import priority


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


def _key_from_file(s, option, c):
    """The key in the file named by `option` of section `s`, or None after an error; a file
    that group or others may read gets a warning."""
    line = s.line_of(option)
    try:
        key, mode = _read_key_file(s.get(option), c.path)
    except ValueError as exc:
        c.err(line, str(exc), option)
        return None
    if mode & 0o077:
        c.warn(line, "the key file is readable by group or others (mode %o): chmod 600 it"
               % mode, option)
    return key


def _key_or_file(s, c, option):
    """The key that `option` or `option`_file of section `s` gives, or None (neither given,
    or an error: both given, a bad key, an unreadable key file)."""
    text, name = s.get(option), s.get(option + "_file")
    if text is not None and name is not None:
        c.err(s.line_of(option + "_file"), "give %s or %s_file, not both" % (option, option),
              option + "_file")
    elif text is not None:
        try:
            return decode_key(text)
        except ValueError as exc:
            c.err(s.line_of(option), str(exc), option)
    elif name is not None:
        return _key_from_file(s, option + "_file", c)
    return None


def _single_values(s, options, c):
    """An option of `options` given with `list` is an error (it would be ignored)."""
    for key in s.lists:
        if key in options:
            c.err(s.line_of(key), "takes one value: write `option %s`, not `list`" % key, key)


def _values(section, key):
    """A list option's words: each item split on white space, as OpenWrt's shell handlers
    read them (`list allowed_ips '10.0.0.2/32 10.0.0.3/32'` is two), and an `option` of that
    name too (OpenWrt accepts both forms)."""
    items = list(section.lists.get(key, []))
    if key in section.options:
        items.insert(0, section.options[key])
    return [(w, line) for v, line in items for w in v.split()]


class Dialect:
    """How a file format names the schema's options in messages, and what it adds to the
    schema. UCI files use the schema's own names; wg-quick files (wgquick.py) their own
    (`PersistentKeepalive` for persistent_keepalive), and add `table`."""

    def __init__(self, names=None, interface_extra=()):
        self.names = names or {}
        self.interface_extra = interface_extra

    def name(self, option):
        return self.names.get(option, option)


UCI = Dialect()


class _Check:
    """Where one file's problems go, with options named as that file names them. `option` is
    a schema name, or a name the user wrote already passed through option_name()."""

    def __init__(self, loaded, dialect):
        self.loaded = loaded
        self.path = loaded.path
        self.dialect = dialect

    def n(self, option):
        return self.dialect.name(option)

    def err(self, line, message, option=None):
        self.loaded.errors.append(ConfigError(self.path, line, message,
                                              option and self.n(option)))

    def warn(self, line, message, option=None):
        self.loaded.warnings.append(ConfigError(self.path, line, message,
                                                option and self.n(option)))


def check_sections(sections, loaded, dialect=UCI):
    """The one validator behind both formats: `sections` as uci.parse returns them (wg-quick
    files are converted to the same form by wgquick.py) become `loaded.interfaces`, every
    problem an error or warning naming the file's own line and option names, in line order.
    Sections that are not WireGuard's are only counted, for `loaded.summary()`."""
    c = _Check(loaded, dialect)
    referenced = set(s.type[len("wireguard_"):] for s in sections
                     if s.type.startswith("wireguard_"))
    others = set(s.name for s in sections if s.type == "interface" and s.name
                 and s.get("proto") not in (None, "wireguard"))
    by_name = {}
    peer_sections = []
    rest = []
    for s in sections:
        if s.type == "interface":
            if _is_wireguard(s, c, referenced):
                _add_interface(s, c, by_name)
        elif s.type.startswith("wireguard_"):
            peer_sections.append(s)
        elif s.type == "wgedge":
            _settings(s, c)
        else:
            rest.append(s)
    for s in peer_sections:
        ifname = s.type[len("wireguard_"):]
        iface = by_name.get(ifname)
        if iface is None:
            guess = suggest.closest(ifname, list(by_name))
            c.err(s.line, "peer section for interface %s, which is not a wireguard interface "
                  "in this file%s" % (shown(ifname), "; did you mean 'wireguard_%s'?" % guess
                                      if guess else ""))
            continue
        peer = _peer(s, c)
        if peer is not None:
            iface.peers.append(peer)
    for s in rest:
        _other_section(s, c, by_name, others)
    for iface in by_name.values():
        _check_duplicates(iface, c)
        _check_own_key(iface, c)
    # Problems in the order of the file's lines, whichever check found them.
    loaded.errors.sort(key=lambda e: e.line)
    loaded.warnings.sort(key=lambda e: e.line)
    return loaded


def _is_wireguard(s, c, referenced):
    """Whether interface section `s` is checked as a wireguard interface. Other protocols are
    only counted; a proto that looks like a typo of 'wireguard', or none at all on a section
    that has WireGuard options or peers, is an error, and the section is checked anyway so
    its other mistakes show at the same time."""
    proto = s.get("proto")
    if proto == "wireguard":
        return True
    wg_like = s.name in referenced or any(k in s.order for k in _WIREGUARD_ONLY)
    if proto is None:
        for key in s.order:
            if suggest.closest(key, ("proto",)):
                c.err(s.line_of(key), "unknown option%s" % suggest.hint(key, ("proto",)),
                      option_name(key))
                return wg_like
        if wg_like:
            c.err(s.line, "interface %s has no proto: add option proto 'wireguard'"
                  % shown(s.name), "proto")
            return True
        c.loaded.ignore("interfaces", "no proto")
        return False
    if suggest.closest(proto, ("wireguard",)):
        c.err(s.line_of("proto"), "unknown protocol %s; did you mean 'wireguard'?"
              % shown(proto), "proto")
        return True
    if s.name in referenced:  # only this: other protocols have private_key, addresses ...
        c.err(s.line_of("proto"), "interface %s is proto %s, but wireguard_%s sections give "
              "it peers: write option proto 'wireguard'" % (shown(s.name), shown(proto),
                                                             s.name), "proto")
        return True
    c.loaded.ignore("interfaces", proto)
    return False


# Interface options no other OpenWrt protocol has: a section with one of them and no proto
# was meant to be a wireguard interface.
_WIREGUARD_ONLY = ("private_key", "private_key_file", "listen_port", "fwmark", "addresses")


def _add_interface(s, c, by_name):
    """Check interface section `s`; a bad name is reported without hiding the rest."""
    if not s.name:  # None, or '' (uci reads `config interface ''` as unnamed)
        c.err(s.line, "a wireguard interface section needs a name (the interface name)")
        return
    if s.name in by_name:
        c.err(s.line, "interface %s defined twice" % shown(s.name))
        return
    if len(s.name) > 15:
        c.err(s.line, "interface name %s is longer than 15 characters" % shown(s.name))
    iface = _interface(s, c)
    if iface is not None:
        by_name[s.name] = iface
        if len(s.name) <= 15:
            c.loaded.interfaces.append(iface)


def _other_section(s, c, by_name, others):
    """A section that is neither an interface, a peer nor wgedge's. OpenWrt's own network
    section types and peers of another protocol's interface (`amneziawg_awg0`) are counted
    for the summary. A likely typo of a type wgedge reads, or a `wireguard...` type that
    names no interface the way peers do, is an error saying what was meant; any other type
    is an error too (a stray section in a wgedge file is more likely than a package's own
    type in /etc/config/network)."""
    known = ["interface", "wgedge"] + ["wireguard_" + n for n in by_name]
    guess = suggest.closest(s.type, known)
    if guess:
        c.err(s.line, "unknown section type %s; did you mean '%s'?" % (shown(s.type), guess))
    elif s.type.startswith("wireguard"):
        c.err(s.line, "unknown section type %s: a peer's is wireguard_IFNAME, naming a "
              "wireguard interface of this file" % shown(s.type))
    elif s.type in OPENWRT_NETWORK_TYPES:
        c.loaded.ignore(s.type)
    elif "_" in s.type and s.type.split("_", 1)[1] in others:
        c.loaded.ignore("peers of other protocols")
    else:
        c.err(s.line, "unknown section type %s (expected interface, wireguard_IFNAME or "
              "wgedge)" % shown(s.type))


def _unknown_options(s, c, known, what, accepted=()):
    for key in s.order:
        if key in known or key in accepted:
            continue
        c.err(s.line_of(key), "unknown option for %s%s" % (what, suggest.hint(
            key, tuple(known) + tuple(accepted))), option_name(key))


def _interface(s, c):
    iface = InterfaceConfig(s.name, c.path)
    iface.line = s.line
    known = INTERFACE_OPTIONS + c.dialect.interface_extra
    for key in s.order:
        if key in GENERIC_INTERFACE_OPTIONS and key not in USED_GENERIC_OPTIONS:
            c.warn(s.line_of(key), "OpenWrt option accepted but ignored by wgedge", key)
    _unknown_options(s, c, known, "a wireguard interface", GENERIC_INTERFACE_OPTIONS)
    _single_values(s, [o for o in known + USED_GENERIC_OPTIONS if o != "addresses"], c)
    if _bool(s, c, "disabled"):
        c.warn(s.line, "interface %s is disabled: skipped" % shown(s.name))
        return None
    key, key_file = s.get("private_key"), s.get("private_key_file")
    if key == GENERATE and key_file is None:
        iface.generate_line = s.line_of("private_key")
    elif key is None and key_file is None:
        c.err(s.line, "interface %s has no %s" % (shown(s.name), c.n("private_key")),
              "private_key")
    else:
        iface.private_key = _key_or_file(s, c, "private_key")
        if key is None:
            iface.private_key_file = key_file
    for opt, parse in (("listen_port", lambda v: parse_int(v, 0, 65535)), ("fwmark", parse_fwmark),
                       ("table", parse_table)):
        value = s.get(opt)
        if value is not None and opt in known:
            try:
                setattr(iface, opt, parse(value))
            except ValueError as exc:
                c.err(s.line_of(opt), str(exc), opt)
    _mtu(s, c, iface)
    if s.get("public_key") is not None:  # not read; checked against private_key, if given
        iface.public_key_line = s.line_of("public_key")
        try:
            iface.public_key = decode_key(s.get("public_key"))
        except ValueError as exc:
            c.err(s.line_of("public_key"), str(exc), "public_key")
    for value, line in _values(s, "addresses"):
        try:
            addr, bits = parse_address(value)
            if "/" not in value:
                value = format_cidr(addr, bits)
            iface.addresses.append(value)
        except ValueError as exc:
            c.err(line, str(exc), "addresses")
    iface.nohostroute = _bool(s, c, "nohostroute")
    if iface.mtu < MIN_IPV6_MTU and any(":" in a for a in iface.addresses):
        c.warn(s.line_of("mtu"), "IPv6 needs an MTU of at least 1280: the kernel turns IPv6 "
               "off on the interface with a smaller one", "mtu")
    return iface


MIN_MTU = 68  # the smallest MTU Linux gives a link (IPv4's minimum, RFC 791)
MAX_MTU = 9000
MIN_IPV6_MTU = 1280  # RFC 8200 section 5


def _mtu(s, c, iface):
    """What Linux gives a link, up to 9000: all LuCI offers (0 to 8940) but 1-67, with 0 as
    the default (1420), the value LuCI shows for an empty field."""
    value = s.get("mtu")
    if value is None:
        return
    if value == "0":
        c.warn(s.line_of("mtu"), "0 leaves the MTU at its default, %d" % iface.mtu, "mtu")
        return
    try:
        iface.mtu = parse_int(value, MIN_MTU, MAX_MTU)
    except ValueError as exc:
        c.err(s.line_of("mtu"), str(exc), "mtu")


def parse_keepalive(value):
    """Seconds between keepalives, 0 to 65535; 'off' is 0 (as `wg` takes it)."""
    if value == "off":
        return 0
    if not digits(value) or len(value) > 5 or int(value) > 65535:
        raise ValueError("expected off or 0 to 65535 seconds, got %s" % shown(value))
    return int(value)


def parse_table(value):
    """wg-quick's `Table`: 'off' (no routes), 'auto' (None: the main table, wgedge's way),
    'main' (254) or a routing table number."""
    if value in ("off", "auto"):
        return None if value == "auto" else "off"
    if value == "main":
        return 254
    if digits(value) and len(value) <= 10 and 1 <= int(value) <= 0xFFFFFFFF:
        return int(value)
    raise ValueError("expected off, auto, main or a routing table number from 1 to "
                     "4294967295, got %s" % shown(value))


def _bool(s, c, opt):
    """Option `opt` of `s` as a boolean; absent or wrong (an error) is False."""
    value = s.get(opt)
    if value is None:
        return False
    try:
        return uci.parse_bool(value)
    except ValueError as exc:
        c.err(s.line_of(opt), str(exc), opt)
        return False


def _peer(s, c):
    peer = PeerConfig()
    peer.name = s.name
    peer.line = s.line
    _unknown_options(s, c, PEER_OPTIONS, "a peer")
    _single_values(s, [o for o in PEER_OPTIONS if o != "allowed_ips"], c)
    if _bool(s, c, "disabled"):
        return None
    key = s.get("public_key")
    peer.key_line = s.line_of("public_key")
    if key is None:
        c.err(s.line, "peer has no %s" % c.n("public_key"), "public_key")
    else:
        try:
            peer.public_key = decode_key(key)
        except ValueError as exc:
            c.err(s.line_of("public_key"), str(exc), "public_key")
    peer.preshared_key = _key_or_file(s, c, "preshared_key")
    # `private_key` in a peer is the remote end's key, which LuCI keeps to write a config for
    # it: accepted, never read.
    ips = _values(s, "allowed_ips")
    if not ips:
        c.warn(s.line, "peer has no %s: it can complete handshakes, but no packet is sent to "
               "it or accepted from it" % c.n("allowed_ips"), "allowed_ips")
    for value, line in ips:
        try:
            addr, bits = parse_address(value)
            peer.allowed_ips.append((mask(addr, bits), bits))
        except ValueError as exc:
            c.err(line, str(exc), "allowed_ips")
    peer.route_allowed_ips = _bool(s, c, "route_allowed_ips")
    _endpoint(s, c, peer)
    ka = s.get("persistent_keepalive")
    if ka is not None:
        try:
            peer.persistent_keepalive = parse_keepalive(ka)
        except ValueError as exc:
            c.err(s.line_of("persistent_keepalive"), str(exc), "persistent_keepalive")
    peer.description = s.get("description", "")
    return peer


def _endpoint(s, c, peer):
    host = s.get("endpoint_host")
    if host is not None:
        if valid_host(host.strip("[]")):
            peer.endpoint_host = host.strip("[]")
        else:
            c.err(s.line_of("endpoint_host"), "expected a host name or an IP address, got %s"
                  % shown(host), "endpoint_host")
    port = s.get("endpoint_port")
    if port is not None:
        try:
            peer.endpoint_port = parse_int(port, 1, 65535)
        except ValueError as exc:
            c.err(s.line_of("endpoint_port"), str(exc), "endpoint_port")
        if host is None:
            c.warn(s.line_of("endpoint_port"), "endpoint_port without endpoint_host has no "
                   "effect", "endpoint_port")


def _settings(s, c):
    settings = c.loaded.settings
    _unknown_options(s, c, WGEDGE_OPTIONS, "the wgedge section")
    _single_values(s, WGEDGE_OPTIONS, c)
    dev = s.get("watchdog_device")
    if dev is not None:
        if dev.startswith("/"):
            settings.watchdog_device = dev
        else:  # the path is not quoted: see uci.py
            c.err(s.line_of("watchdog_device"), "expected an absolute path, like /dev/watchdog",
                  "watchdog_device")
    for opt, low, high in (("watchdog_interval", 1, 3600), ("check_interval", 1, 3600),
                           ("stale_handshake", 30, 86400)):
        if s.get(opt) is not None:
            try:
                setattr(settings, opt, parse_int(s.get(opt), low, high))
            except ValueError as exc:
                c.err(s.line_of(opt), str(exc), opt)
    if s.get("nice") is not None:
        try:
            settings.nice = priority.parse(s.get("nice"))
        except ValueError as exc:
            c.err(s.line_of("nice"), str(exc), "nice")


def _check_duplicates(iface, c):
    seen = {}
    for peer in iface.peers:
        if peer.public_key is None:
            continue
        if peer.public_key in seen:
            c.err(peer.line, "duplicate peer: the same %s as the peer at line %d"
                  % (c.n("public_key"), seen[peer.public_key]), "public_key")
        else:
            seen[peer.public_key] = peer.line


def _check_own_key(iface, c):
    """A peer with the interface's own public key could never complete a handshake (and the
    daemon would drop it): an error, not a peer that vanishes from `status`."""
    if iface.private_key is None:
        return
    from wgedge.crypto.pure import x25519

    own = x25519.public(iface.private_key)
    if iface.public_key not in (None, own):
        c.err(iface.public_key_line, "not the public key of this interface's %s (wgedge "
              "derives it from that; remove this option)" % c.n("private_key"), "public_key")
    for peer in iface.peers:
        if peer.public_key == own:
            c.err(peer.key_line, "this is the interface's own public key (from its %s): a peer "
                  "is the other end of the tunnel, with the other end's public key"
                  % c.n("private_key"), "public_key")


