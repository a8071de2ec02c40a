"""wg-quick `.conf` files, converted into the sections a UCI file parses to and checked by the
same validator (validate.check_sections), so both formats meet the same checks and ranges.

    [Interface]  -> config interface 'NAME' with proto 'wireguard' (NAME from the file name)
    [Peer]       -> config wireguard_NAME, with route_allowed_ips on (wg-quick routes every
                    peer's AllowedIPs; `Table = off` turns that off, `Table = N` uses table N)

Each wg-quick key becomes the schema option it means (ListenPort -> listen_port, Endpoint ->
endpoint_host and endpoint_port, ...) at its own line; messages name it the wg-quick way
(validate.Dialect). Keys are case-insensitive as in wg-quick; `#` starts a comment anywhere;
Address, AllowedIPs and DNS may repeat and take comma-separated lists. What wgedge does not
act on (DNS, the Pre/Post hooks, SaveConfig) is accepted with a warning; an unknown key is an
error, with the known key it most likely meant.

No message made here quotes a value that could be a key, by the rule at the top of
wgedge/config/uci.py: PrivateKey, PublicKey and PresharedKey values never, section names,
keys and other values only through `shown` (just the length of anything holding 16 base64
characters in a row).
"""

import os

from wgedge.config import suggest
from wgedge.config.schema import Loaded, valid_host
from wgedge.config.uci import ConfigError, Section, option_name, shown
from wgedge.config.validate import Dialect, check_sections
from wgedge.core.endpoint import split_endpoint

# wg-quick key -> schema option, per section.
INTERFACE_KEYS = {"PrivateKey": "private_key", "ListenPort": "listen_port", "FwMark": "fwmark",
                  "Address": "addresses", "MTU": "mtu", "Table": "table"}
PEER_KEYS = {"PublicKey": "public_key", "PresharedKey": "preshared_key",
             "AllowedIPs": "allowed_ips", "Endpoint": "endpoint_host",
             "PersistentKeepalive": "persistent_keepalive"}
IGNORED = {"DNS": "wgedge sets no resolver", "PreUp": "wgedge runs no hooks",
           "PostUp": "wgedge runs no hooks", "PreDown": "wgedge runs no hooks",
           "PostDown": "wgedge runs no hooks", "SaveConfig": "wgedge never writes the file"}
_LISTS = ("addresses", "allowed_ips")

WG_QUICK = Dialect(dict([(v, k) for k, v in INTERFACE_KEYS.items()]
                        + [(v, k) for k, v in PEER_KEYS.items()]
                        + [("endpoint_port", "Endpoint")]),
                   interface_extra=("table",))


def _split_endpoint(value):
    """'host:port' or '[v6]:port' -> (host, port), ValueError when it has neither shape."""
    parts = split_endpoint(value)
    if parts is None:
        raise ValueError("expected %s, got %s" % (
            "[address]:port" if value.startswith("[") else "host:port or [address]:port",
            shown(value)))
    host, port, bracketed = parts
    if not bracketed and not valid_host(host):  # the whole value, naming both parts, is shown
        raise ValueError("expected a host name or an IP address before the port, got %s"
                         % shown(value))
    return host, port


class _Converter:
    def __init__(self, name, path, loaded):
        self.path = path
        self.loaded = loaded
        self.iface = Section("interface", name, 0)
        self.sections = []
        self.current = None  # the Section lines go to
        self.keys = None  # its wg-quick keys
        self.given = {}  # (section id, schema option) -> line, for repeated single keys

    def err(self, line, message, option=None):
        self.loaded.errors.append(ConfigError(self.path, line, message, option))

    def header(self, lineno, line):
        kind = line[1:-1].strip().lower()
        if kind == "interface":
            if self.iface.line:
                self.err(lineno, "a second [Interface] section")
            else:
                self.iface.line = lineno
                self.iface.options["proto"] = ("wireguard", lineno)
                self.sections.insert(0, self.iface)
            self.current, self.keys = self.iface, INTERFACE_KEYS
        elif kind == "peer":
            peer = Section("wireguard_" + self.iface.name, None, lineno)
            peer.options["route_allowed_ips"] = ("1", lineno)
            self.sections.append(peer)
            self.current, self.keys = peer, PEER_KEYS
        else:
            guess = suggest.closest(kind, ("interface", "peer"))
            self.err(lineno, "unknown section %s (expected [Interface] or [Peer])%s" % (
                shown(line), "; did you mean [%s]?" % guess.capitalize() if guess else ""))
            self.current = self.keys = None

    def setting(self, lineno, key, value):
        if self.keys is None:
            self.err(lineno, "outside a section (expected [Interface] or [Peer] first)",
                     option_name(key))
            return
        known = dict((k.lower(), k) for k in self.keys)
        if self.current is self.iface:
            known.update((k.lower(), k) for k in IGNORED)
        name = known.get(key.lower())
        if name is None:
            self.err(lineno, "unknown option in [%s]%s" % (
                "Interface" if self.current is self.iface else "Peer",
                suggest.hint(key, list(known.values()))), option_name(key))
            return
        if name in IGNORED:
            self.loaded.warnings.append(ConfigError(self.path, lineno, "accepted but ignored: "
                                                    "%s" % IGNORED[name], name))
            return
        option = self.keys[name]
        if option in _LISTS:
            for item in value.split(","):
                if item.strip():
                    self.add(option, item.strip(), lineno)
            return
        if option == "endpoint_host":
            try:
                host, port = _split_endpoint(value)
            except ValueError as exc:
                self.err(lineno, str(exc), name)
                return
            self.set(option, host, lineno, name)
            self.set("endpoint_port", port, lineno, name)
            return
        self.set(option, value, lineno, name)

    def add(self, option, value, lineno):
        if option not in self.current.order:
            self.current.order.append(option)
        self.current.lists.setdefault(option, []).append((value, lineno))

    def set(self, option, value, lineno, name):
        where = (id(self.current), option)
        if where in self.given and option != "endpoint_port":
            self.loaded.warnings.append(ConfigError(
                self.path, lineno, "given again (first at line %d): this one counts"
                % self.given[where], name))
        self.given[where] = lineno
        if option not in self.current.order:
            self.current.order.append(option)
        self.current.options[option] = (value, lineno)


def from_text(text, path):
    loaded = Loaded(path)
    name = os.path.basename(path)[:-len(".conf")]
    if not name or len(name) > 15:
        # Reported, and the rest of the file is still checked under this name.
        loaded.errors.append(ConfigError(path, 0, "the file name must be IFNAME.conf with a "
                                         "1-15 character name"))
    bad_name = not name or len(name) > 15
    conv = _Converter("wg" if bad_name else name, path, loaded)
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            conv.header(lineno, line)
            continue
        key, eq, value = line.partition("=")
        if not eq:
            conv.err(lineno, "expected Key = Value")
            continue
        conv.setting(lineno, key.strip(), value.strip())
    if not conv.iface.line:
        loaded.errors.append(ConfigError(path, 0, "no [Interface] section"))
        loaded.errors.sort(key=lambda e: e.line)
        return loaded
    check_sections(conv.sections, loaded, WG_QUICK)
    if bad_name:
        loaded.interfaces = []
    return loaded
