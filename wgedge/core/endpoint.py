"""Endpoint text, one parser and one formatter for every place that reads or writes one: the
`wg` text protocol (uapi.py), config files (config/wgquick.py) and the router side
(router/endpoints.py, status).

    'host:port'     an IPv4 address or a host name, then the port
    '[host]:port'   an IPv6 address (with an optional %zone), or any host, in brackets

Only the shape is checked here; what the host may be (a literal address, a name) and the
port's range are the caller's rule, since the three differ.
"""


def split_endpoint(text):
    """-> (host, port text, bracketed), or None when `text` has neither shape (no ':port',
    an empty host, or an IPv6 address without brackets)."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1:close + 2] != ":":
            return None
        return text[1:close], text[close + 2:], True
    host, sep, port = text.rpartition(":")
    if not sep or not host or ":" in host:
        return None
    return host, port, False


def format_endpoint(host, port):
    """'host:port', or '[host]:port' for an IPv6 address (any host with a ':')."""
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)
