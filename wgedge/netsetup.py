"""Addresses, MTU, routes and link state through pyroute2 (netlink), nothing else.

Rules kept here: every change is recorded in the returned state so `wgedge down` (or a
reload) undoes exactly what was done; errors raise NetError with a message naming what
failed. Routes for a peer's allowed IPs are added only with `route_allowed_ips`; a /0 is
split into two halves so the existing default route (which still carries the tunnel's own
packets) is not replaced, and, unless `nohostroute`, a host route keeps the peer's endpoint on
the path it had before.
"""

import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from wgedge.core.ipaddr import format_cidr, parse_cidr


class NetError(Exception):
    pass


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def route_prefixes(iface):
    """The (dst, prefixlen) routes `route_allowed_ips` asks for, /0 split in halves."""
    out = []
    for peer in iface.peers:
        if not peer.route_allowed_ips:
            continue
        for addr, bits in peer.allowed_ips:
            text = format_cidr(addr, bits).split("/")[0]
            if bits == 0:
                if len(addr) == 4:
                    out += [("0.0.0.0", 1), ("128.0.0.0", 1)]
                else:
                    out += [("::", 1), ("8000::", 1)]
            elif (text, bits) not in out:
                out.append((text, bits))
    return out


class NetSetup:
    def __init__(self, ifname):
        self.ifname = ifname
        self.ipr = IPRoute()

    def close(self):
        self.ipr.close()

    def index(self):
        found = self.ipr.link_lookup(ifname=self.ifname)
        if not found:
            raise NetError("interface %s does not exist" % self.ifname)
        return found[0]

    def current_addresses(self):
        idx = self.index()
        out = []
        for msg in self.ipr.get_addr(index=idx):
            out.append("%s/%d" % (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"]))
        return out

    def add_address(self, cidr):
        addr, bits = parse_cidr(cidr)
        text = cidr.split("/")[0]
        try:
            kwargs = {}
            if len(addr) == 16:
                kwargs["flags"] = 0x02  # IFA_F_NODAD: usable at once, as wg-quick's users expect
            self.ipr.addr("add", index=self.index(), address=text, prefixlen=bits, **kwargs)
        except NetlinkError as exc:
            if exc.code != 17:  # EEXIST: already there is fine
                raise NetError("cannot add address %s to %s: %s" % (cidr, self.ifname, exc))

    def del_address(self, cidr):
        addr, bits = parse_cidr(cidr)
        try:
            self.ipr.addr("del", index=self.index(), address=cidr.split("/")[0], prefixlen=bits)
        except NetlinkError:
            pass

    def set_mtu_up(self, mtu):
        try:
            self.ipr.link("set", index=self.index(), mtu=mtu)
            self.ipr.link("set", index=self.index(), state="up")
        except NetlinkError as exc:
            raise NetError("cannot set %s up with MTU %d: %s" % (self.ifname, mtu, exc))

    def add_route(self, dst, bits):
        try:
            self.ipr.route("replace", dst=dst, dst_len=bits, oif=self.index(),
                           family=_family(dst))
        except NetlinkError as exc:
            raise NetError("cannot add route %s/%d via %s: %s" % (dst, bits, self.ifname, exc))

    def del_route(self, dst, bits):
        try:
            self.ipr.route("del", dst=dst, dst_len=bits, oif=self.index(), family=_family(dst))
        except (NetlinkError, NetError):
            pass

    def endpoint_host_route(self, ip):
        """Keep the endpoint on its current path: a /32 (/128) copy of its present route."""
        fam = _family(ip)
        try:
            routes = self.ipr.route("get", dst=ip, family=fam)
        except NetlinkError:
            return None
        if not routes:
            return None
        r = routes[0]
        gw, oif = r.get_attr("RTA_GATEWAY"), r.get_attr("RTA_OIF")
        if oif == self.index():
            return None
        bits = 32 if fam == socket.AF_INET else 128
        kwargs = {"dst": ip, "dst_len": bits, "oif": oif, "family": fam}
        if gw:
            kwargs["gateway"] = gw
        try:
            self.ipr.route("replace", **kwargs)
        except NetlinkError:
            return None
        return {"dst": ip, "dst_len": bits, "oif": oif, "gateway": gw, "family": fam}

    def del_host_route(self, spec):
        try:
            kwargs = {k: v for k, v in spec.items() if v is not None}
            self.ipr.route("del", **kwargs)
        except NetlinkError:
            pass

    def delete_link(self):
        try:
            self.ipr.link("del", index=self.index())
        except (NetlinkError, NetError):
            pass


def apply(iface, previous=None, endpoint_ips=()):
    """Bring addresses, MTU, routes and link state to what `iface` asks for. `previous` is the
    state this module returned last time (for a reload), so only the difference changes.
    Returns the new state (a JSON-able dict)."""
    previous = previous or {"addresses": [], "routes": [], "host_routes": []}
    ns = NetSetup(iface.name)
    try:
        want_addrs = list(iface.addresses)
        for cidr in previous["addresses"]:
            if cidr not in want_addrs:
                ns.del_address(cidr)
        for cidr in want_addrs:
            ns.add_address(cidr)
        ns.set_mtu_up(iface.mtu)
        want_routes = [list(r) for r in route_prefixes(iface)]
        for r in previous["routes"]:
            if r not in want_routes:
                ns.del_route(r[0], r[1])
        for r in want_routes:
            ns.add_route(r[0], r[1])
        host_routes = previous.get("host_routes", [])
        splits_default = any(r[1] == 1 for r in want_routes)
        if splits_default and not iface.nohostroute:
            known = {h["dst"] for h in host_routes}
            for ip in endpoint_ips:
                if ip not in known:
                    spec = ns.endpoint_host_route(ip)
                    if spec:
                        host_routes.append(spec)
        return {"addresses": want_addrs, "routes": want_routes, "host_routes": host_routes,
                "mtu": iface.mtu}
    finally:
        ns.close()


def undo(ifname, state):
    """Remove what `apply` recorded, then the link itself."""
    ns = NetSetup(ifname)
    try:
        for spec in state.get("host_routes", []):
            ns.del_host_route(spec)
        for r in state.get("routes", []):
            ns.del_route(r[0], r[1])
        for cidr in state.get("addresses", []):
            ns.del_address(cidr)
        ns.delete_link()
    finally:
        ns.close()
