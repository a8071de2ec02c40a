"""wg-quick `.conf` files, read into the same model as UCI files.

The interface is named after the file (wg0.conf -> wg0). wg-quick routes every peer's
AllowedIPs, so `route_allowed_ips` is on. Options wgedge does not act on (DNS, Table, the
Pre/Post hooks, SaveConfig) are accepted with a warning; unknown ones are errors.
"""

import os

from wgedge.config.model import InterfaceConfig, Loaded, PeerConfig, decode_key
from wgedge.config.uci import ConfigError
from wgedge.core.ipaddr import mask, parse_cidr

_IGNORED = ("dns", "table", "preup", "postup", "predown", "postdown", "saveconfig")


def _split_list(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def _endpoint(value):
    value = value.strip()
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1:close + 2] != ":":
            raise ValueError("expected [address]:port, got %r" % value)
        host, port = value[1:close], value[close + 2:]
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise ValueError("expected host:port, got %r" % value)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("bad port in %r" % value)
    return host, int(port)


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
                err(ConfigError(path, lineno, "unknown section [%s]" % line[1:-1]))
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
                    if not value.isdigit() or int(value) > 65535:
                        raise ValueError("a port from 0 to 65535")
                    iface.listen_port = int(value)
                elif k == "fwmark":
                    iface.fwmark = 0 if value == "off" else int(value, 0)
                elif k == "address":
                    for a in _split_list(value):
                        parse_cidr(a)
                        iface.addresses.append(a)
                elif k == "mtu":
                    if not value.isdigit() or not 1280 <= int(value) <= 9000:
                        raise ValueError("an MTU from 1280 to 9000")
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
                        addr, bits = parse_cidr(a)
                        peer.allowed_ips.append((mask(addr, bits), bits))
                elif k == "endpoint":
                    peer.endpoint_host, peer.endpoint_port = _endpoint(value)
                elif k == "persistentkeepalive":
                    peer.persistent_keepalive = 0 if value == "off" else int(value)
                    if not 0 <= peer.persistent_keepalive <= 65535:
                        raise ValueError("0-65535 seconds")
                else:
                    raise KeyError(key)
            else:
                err(ConfigError(path, lineno, "%s outside a section" % key))
        except KeyError:
            err(ConfigError(path, lineno, "unknown option in [%s]" % section, key))
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
