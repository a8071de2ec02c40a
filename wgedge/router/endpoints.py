"""Endpoint host names: resolving them for `up`, `reload` and the watchdog, and the warnings
of `check` for a name that does not resolve now (never an error: the watchdog retries).

Rule: a literal address is never sent to the resolver; a name is resolved before any lock is
taken (a slow resolver never holds up another configurator).
"""

import socket

from wgedge.config import schema
from wgedge.core.endpoint import format_endpoint
from wgedge.core.ipaddr import parse_ip


def is_literal(host):
    try:
        parse_ip(host)
        return True
    except ValueError:
        return False


def resolve(host, port):
    """'ip:port' / '[ip6]:port' for the first address the resolver gives, or None."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return None
    for family, _, _, _, addr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return format_endpoint(addr[0], port)
    return None


def unresolved_warnings(loaded):
    """A warning (ConfigError) for each peer whose endpoint host name does not resolve now:
    not an error, since a watchdog resolves it again while the peer has no handshake."""
    from wgedge.config.uci import ConfigError, shown

    out, answers = [], {}
    for iface in loaded.interfaces:
        for peer in iface.peers:
            host = peer.endpoint_host
            if host is None or is_literal(host):
                continue
            if (host, peer.endpoint_port) not in answers:
                answers[host, peer.endpoint_port] = resolve(host, peer.endpoint_port)
            if answers[host, peer.endpoint_port] is None:
                out.append(ConfigError(loaded.path, peer.line, "peer %s of %s: host %s does "
                                       "not resolve now; the peer gets its endpoint once it "
                                       "does (the watchdog retries)" % (
                                           schema.peer_label(peer), iface.name, shown(host)),
                                       "Endpoint" if loaded.path.endswith(".conf")
                                       else "endpoint_host"))
    return out


def endpoint_text(peer):
    if peer.endpoint_host is None:
        return None
    if is_literal(peer.endpoint_host):
        return format_endpoint(peer.endpoint_host, peer.endpoint_port)
    return resolve(peer.endpoint_host, peer.endpoint_port)
