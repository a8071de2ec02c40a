"""OpenWrt's WireGuard schema as wgedge reads it: the options of each section type, the
records a valid file becomes (InterfaceConfig, PeerConfig, Settings, in a Loaded), and the
parsers of single values (keys, numbers, marks, addresses, host names) that the validator
(validate.py) and the wg-quick reader (wgquick.py) share.

Rule: no ValueError raised here quotes a value that could be a key (the rule at the top of
wgedge/config/uci.py): key text never, other values only through `shown`.
"""

from wgedge.config import uci
from wgedge.config.uci import key_like, shown
from wgedge.core.ipaddr import parse_cidr, parse_ip
from wgedge.io import priority

GENERATE = "generate"


DEFAULT_PATH = "/etc/config/wgedge"


# OpenWrt's generic interface options: known, accepted, and ignored by wgedge (a warning
# says so) unless listed in USED_GENERIC_OPTIONS.
GENERIC_INTERFACE_OPTIONS = ("auto", "disabled", "ip6prefix", "nohostroute", "tunlink",
                             "defaultroute", "metric", "peerdns", "dns", "dns_metric",
                             "ip4table", "ip6table", "force_link", "delegate", "ifname",
                             "device", "zone", "multipath", "macaddr", "type", "ip6assign",
                             "ip6hint", "ip6class", "ip6ifaceid", "ip6weight", "dns_search",
                             "ipv6", "sourcefilter")


USED_GENERIC_OPTIONS = ("disabled", "nohostroute", "auto")


INTERFACE_OPTIONS = ("proto", "private_key", "private_key_file", "listen_port", "addresses",
                     "mtu", "fwmark", "public_key")


PEER_OPTIONS = ("public_key", "preshared_key", "preshared_key_file", "allowed_ips",
                "route_allowed_ips", "endpoint_host", "endpoint_port", "persistent_keepalive",
                "description", "disabled", "private_key")


WGEDGE_OPTIONS = ("watchdog_device", "watchdog_interval", "check_interval",
                  "stale_handshake", "nice")


OPENWRT_NETWORK_TYPES = ("globals", "device", "route", "route6", "rule", "rule6", "switch",
                         "switch_vlan", "switch_port", "bridge-vlan", "alias", "dsl",
                         "atm-bridge", "neighbor", "neighbor6")


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
        self.key_line = 0  # the line of public_key
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
        # Where route_allowed_ips routes go: None is the main table, as OpenWrt does (a /0
        # split in halves, host routes to endpoints); "off" adds none; a number is that
        # table, routes as written (wg-quick's `Table`).
        self.table = None
        self.public_key = None  # only to check an interface's `public_key` option
        self.public_key_line = 0
        self.peers = []


class Settings:
    """The `config wgedge` section: watchdog behaviour, the daemons' priority."""

    def __init__(self):
        self.nice = priority.DEFAULT  # each daemon's nice value (wgedge/io/priority.py)
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
        self.ignored = {}  # what is not WireGuard's, for one summary line: type -> [count, detail]

    def summary(self):
        """One line naming the sections ignored as not WireGuard's, or None (see `ignore`)."""
        if not self.ignored:
            return None
        parts = []
        for kind, (count, details) in self.ignored.items():
            more = " (%s)" % ", ".join(sorted(details)) if details else ""
            parts.append("%d %s%s" % (count, kind, more))
        return uci.redact("%s: not WireGuard, ignored: %s" % (self.path, "; ".join(parts)))

    def ignore(self, kind, detail=None):
        entry = self.ignored.setdefault(kind, [0, set()])
        entry[0] += 1
        if detail:
            entry[1].add(detail)

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


def digits(value):
    return bool(value) and all(c in "0123456789" for c in value)


def parse_int(value, low, high):
    if not digits(value):
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
    if digits(text) and len(text) <= 10 and int(text) <= 0xFFFFFFFF:
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
    return not digits(labels[-1])
