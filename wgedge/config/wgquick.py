"""wg-quick `.conf` files, read into the same model as UCI files.

The interface is named after the file (wg0.conf -> wg0). wg-quick routes every peer's
AllowedIPs, so `route_allowed_ips` is on. Options wgedge does not act on (DNS, Table, the
Pre/Post hooks, SaveConfig) are accepted with a warning; unknown ones are errors.

No message made here quotes a value that could be a key, by the rule at the top of
wgedge/config/uci.py: PrivateKey, PublicKey and PresharedKey values never, section names,
keys and other values only through `shown` (just the length of anything holding 16 base64
characters in a row).
"""

import os

from wgedge.config.model import (
    InterfaceConfig,
    Loaded,
    PeerConfig,
    decode_key,
    parse_address,
    parse_fwmark,
    valid_host,
)
from wgedge.config.uci import ConfigError, option_name, shown
from wgedge.core.ipaddr import mask

_IGNORED = ("dns", "table", "preup", "postup", "predown", "postdown", "saveconfig")


def _split_list(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def _endpoint(value):
    value = value.strip()
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1:close + 2] != ":":
            raise ValueError("expected [address]:port, got %s" % shown(value))
        host, port = value[1:close], value[close + 2:]
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError("expected host:port or [address]:port, got %s" % shown(value))
    if not valid_host(host):
        raise ValueError("expected a host name or an IP address before the port, got %s"
                         % shown(value))
    if not _port(port, 1):
        raise ValueError("expected a port from 1 to 65535 after the host, got %s" % shown(value))
    return host, int(port)


def _port(text, low):
    return text.isascii() and text.isdigit() and len(text) <= 5 and low <= int(text) <= 65535


def from_text(text, path):
    loaded = Loaded(path)
    err = loaded.errors.append
    warn = loaded.warnings.append
    name = os.path.basename(path)[:-len(".conf")]
    if not name or len(name) > 15:
        err(ConfigError(path, 0, "the file name must be IFNAME.conf with a 1-15 character name"))
        return loaded
    iface = InterfaceConfig(name, path)
    iface.mtu = 1420
    section = None
    peer = None
    seen_interface = False
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            if section == "interface":
                if seen_interface:
                    err(ConfigError(path, lineno, "a second [Interface] section"))
                seen_interface = True
                iface.line = lineno
            elif section == "peer":
                peer = PeerConfig()
                peer.line = lineno
                peer.route_allowed_ips = True
                iface.peers.append(peer)
            else:
                err(ConfigError(path, lineno, "unknown section %s (expected [Interface] or "
                                "[Peer])" % shown(line)))
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq:
            err(ConfigError(path, lineno, "expected Key = Value"))
            continue
        k = key.lower()
        try:
            if section == "interface":
                if k == "privatekey":
                    iface.private_key = decode_key(value)
                elif k == "listenport":
                    if not _port(value, 0):
                        raise ValueError("expected a port from 0 to 65535, got %s" % shown(value))
                    iface.listen_port = int(value)
                elif k == "fwmark":
                    iface.fwmark = parse_fwmark(value)
                elif k == "address":
                    for a in _split_list(value):
                        parse_address(a)
                        iface.addresses.append(a)
                elif k == "mtu":
                    if not _port(value, 1280) or int(value) > 9000:
                        raise ValueError("expected an MTU from 1280 to 9000, got %s" % shown(value))
                    iface.mtu = int(value)
                elif k in _IGNORED:
                    warn(ConfigError(path, lineno, "accepted but ignored by wgedge", key))
                else:
                    raise KeyError(key)
            elif section == "peer":
                if k == "publickey":
                    peer.public_key = decode_key(value)
                elif k == "presharedkey":
                    peer.preshared_key = decode_key(value)
                elif k == "allowedips":
                    for a in _split_list(value):
                        addr, bits = parse_address(a)
                        peer.allowed_ips.append((mask(addr, bits), bits))
                elif k == "endpoint":
                    peer.endpoint_host, peer.endpoint_port = _endpoint(value)
                elif k == "persistentkeepalive":
                    if value != "off" and not _port(value, 0):
                        raise ValueError("expected off or 0 to 65535 seconds, got %s"
                                         % shown(value))
                    peer.persistent_keepalive = 0 if value == "off" else int(value)
                else:
                    raise KeyError(key)
            else:
                err(ConfigError(path, lineno, "outside a section (expected [Interface] or "
                                "[Peer] first)", option_name(key)))
        except KeyError:
            err(ConfigError(path, lineno, "unknown option in [%s]" % section, option_name(key)))
        except ValueError as exc:
            err(ConfigError(path, lineno, str(exc), key))
    if not seen_interface:
        err(ConfigError(path, 0, "no [Interface] section"))
    if seen_interface and iface.private_key is None:
        err(ConfigError(path, iface.line, "[Interface] has no PrivateKey", "PrivateKey"))
    keys = {}
    for p in iface.peers:
        if p.public_key is None:
            err(ConfigError(path, p.line, "[Peer] has no PublicKey", "PublicKey"))
        elif p.public_key in keys:
            err(ConfigError(path, p.line, "duplicate peer: same PublicKey as line %d"
                            % keys[p.public_key], "PublicKey"))
        else:
            keys[p.public_key] = p.line
        if not p.allowed_ips:
            err(ConfigError(path, p.line, "[Peer] has no AllowedIPs", "AllowedIPs"))
    loaded.interfaces.append(iface)
    return loaded
