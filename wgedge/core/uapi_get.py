"""The `get=1` answer of WireGuard's userspace API: a device's state as the key=value lines
wireguard-go writes, in its order (uapi.py has the protocol's rules; this is its reading
side). Keys as 64 hex digits, `last_handshake_time_*` as Unix time (monotonic
`last_handshake` + `wall_offset`), endpoints through core/endpoint.py.
"""

from wgedge.core.ipaddr import format_cidr
from wgedge.core.uapi import format_endpoint, key_to_hex

ALLOWED_IPS_PER_PIECE = 256  # allowed_ip lines per get_pieces piece (under 14 KiB)


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
