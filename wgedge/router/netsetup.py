"""Addresses, MTU, routes and link state through pyroute2 (netlink), nothing else.

Rules kept here:
- All or nothing. `apply` first makes every change that can fail (addresses and routes
  added, MTU, host routes, link up) and takes them all back if one fails; what is no longer
  wanted is removed only by `NetChange.commit()`, once the caller's own step (the WireGuard
  settings) has succeeded too, or else `NetChange.rollback()` takes the additions back.
  Removals do not fail (what is gone is gone), so nothing is ever left half-changed.
- Every change is recorded in the state `apply` returns, so `wgedge down` (or the next
  reload) undoes exactly what was done; errors raise NetError naming what failed and why.
- Routes for a peer's allowed IPs are added only with `route_allowed_ips`; a /0 is split into
  two halves so the existing default route (which still carries the tunnel's own packets) is
  not replaced, and, unless `nohostroute`, a host route keeps the peer's endpoint on the path
  it had before. Host routes are looked up and added before the tunnel's routes, which would
  otherwise be the path the lookup finds.
- `iface.table` (wg-quick's `Table`): "off" adds no route at all; a number puts the routes
  in that table, as written (a /0 stays a /0, no host routes: that table is the caller's
  policy routing, the main table is untouched); None, or 254 (main), is the rule above.
  A route in another table is recorded as [dst, bits, table], in the main one as [dst, bits].
"""

import errno
import os
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from wgedge.core.ipaddr import format_cidr, parse_cidr


class NetError(Exception):
    pass


GONE = (errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENODEV)


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _reason(exc):
    """A NetlinkError as the kernel's words ('Permission denied'), not a tuple."""
    code = getattr(exc, "code", 0)
    if len(exc.args) > 1 and exc.args[1]:
        return str(exc.args[1])
    return os.strerror(code) if code else str(exc)


def _same_address(a, b):
    return parse_cidr(a) == parse_cidr(b)


MAIN_TABLE = 254


def route_prefixes(iface):
    """The routes `route_allowed_ips` asks for: (dst, prefixlen), /0 split in halves, in the
    main table; (dst, prefixlen, table) as written in another table; none with table off."""
    table = getattr(iface, "table", None)
    if table == "off":
        return []
    if table not in (None, MAIN_TABLE):
        out = []
        for peer in iface.peers:
            if peer.route_allowed_ips:
                for addr, bits in peer.allowed_ips:
                    r = (format_cidr(addr, bits).split("/")[0], bits, table)
                    if r not in out:
                        out.append(r)
        return out
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
        try:
            msgs = self.ipr.get_addr(index=idx)
        except NetlinkError as exc:
            raise NetError("cannot read the addresses of %s: %s" % (self.ifname, _reason(exc)))
        return ["%s/%d" % (m.get_attr("IFA_ADDRESS"), m["prefixlen"]) for m in msgs]

    def add_address(self, cidr):
        addr, bits = parse_cidr(cidr)
        text = cidr.split("/")[0]
        try:
            kwargs = {}
            if len(addr) == 16:
                kwargs["flags"] = 0x02  # IFA_F_NODAD: usable at once, as wg-quick's users expect
            self.ipr.addr("add", index=self.index(), address=text, prefixlen=bits, **kwargs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:  # already there is fine
                hint = ""
                if len(addr) == 16 and exc.code == errno.EACCES:
                    hint = " (is IPv6 disabled on %s?)" % self.ifname
                raise NetError("cannot add address %s to %s: %s%s"
                               % (cidr, self.ifname, _reason(exc), hint))

    def del_address(self, cidr, strict=False):
        """Remove an address; already gone is fine. With `strict`, any other refusal raises
        (a rollback must know what it could not take back)."""
        addr, bits = parse_cidr(cidr)
        try:
            self.ipr.addr("del", index=self.index(), address=cidr.split("/")[0], prefixlen=bits)
        except NetlinkError as exc:
            if strict and exc.code not in GONE:
                raise NetError("cannot remove address %s from %s: %s"
                               % (cidr, self.ifname, _reason(exc)))
        except NetError:  # the link is gone, and with it what was on it
            pass

    def mtu(self):
        try:
            links = self.ipr.get_links(self.index())
        except NetlinkError as exc:
            raise NetError("cannot read the MTU of %s: %s" % (self.ifname, _reason(exc)))
        return links[0].get_attr("IFLA_MTU") if links else None

    def set_mtu(self, mtu):
        try:
            self.ipr.link("set", index=self.index(), mtu=mtu)
        except NetlinkError as exc:
            raise NetError("cannot set MTU %d on %s: %s" % (mtu, self.ifname, _reason(exc)))

    def set_up(self):
        try:
            self.ipr.link("set", index=self.index(), state="up")
        except NetlinkError as exc:
            raise NetError("cannot set %s up: %s" % (self.ifname, _reason(exc)))

    def add_route(self, dst, bits, table=None):
        extra = {} if table is None else {"table": table}
        try:
            self.ipr.route("replace", dst=dst, dst_len=bits, oif=self.index(),
                           family=_family(dst), **extra)
        except NetlinkError as exc:
            raise NetError("cannot add route %s/%d via %s%s: %s" % (
                dst, bits, self.ifname, "" if table is None else " in table %d" % table,
                _reason(exc)))

    def del_route(self, dst, bits, strict=False, table=None):
        extra = {} if table is None else {"table": table}
        try:
            self.ipr.route("del", dst=dst, dst_len=bits, oif=self.index(), family=_family(dst),
                           **extra)
        except NetlinkError as exc:
            if strict and exc.code not in GONE:
                raise NetError("cannot remove route %s/%d: %s" % (dst, bits, _reason(exc)))
        except NetError:  # the link is gone, and with it what was on it
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

    def del_host_route(self, spec, strict=False):
        try:
            kwargs = {k: v for k, v in spec.items() if v is not None}
            self.ipr.route("del", **kwargs)
        except NetlinkError as exc:
            if strict and exc.code not in GONE:
                raise NetError("cannot remove route %s: %s" % (spec["dst"], _reason(exc)))

    def delete_link(self):
        try:
            self.ipr.link("del", index=self.index())
        except (NetlinkError, NetError):
            pass


EMPTY = {"addresses": [], "routes": [], "host_routes": []}


def _table(route):
    """The table of a recorded route: None (main) for [dst, bits]."""
    return route[2] if len(route) > 2 else None


class NetChange:
    """The additions `apply` made, until `commit()` (then the removals) or `rollback()`."""

    def __init__(self, ns, previous, state):
        self.ns = ns
        self.previous = previous
        self.state = state  # what the link looks like after commit(): the record to keep
        self.undo = []  # (what, callable) in the order the additions were made

    def commit(self):
        """Remove what is no longer wanted; returns the state. Cannot fail."""
        ns, prev, state = self.ns, self.previous, self.state
        try:
            for spec in prev.get("host_routes", []):
                if spec not in state["host_routes"]:
                    ns.del_host_route(spec)
            for r in prev.get("routes", []):
                if r not in state["routes"]:
                    ns.del_route(*r[:2], table=_table(r))
            removed = [c for c in prev.get("addresses", [])
                       if not any(_same_address(c, w) for w in state["addresses"])]
            for cidr in removed:
                ns.del_address(cidr)
            if removed:
                # The kernel drops every IPv4 route of a device with its last IPv4 address:
                # put the wanted ones back (replace is a no-op for those still there).
                for r in state["routes"]:
                    try:
                        ns.add_route(*r[:2], table=_table(r))
                    except NetError:
                        pass
        finally:
            ns.close()
        return state

    def rollback(self):
        """Take the additions back, newest first. Returns the state that now describes the
        link: the previous one, plus any addition the kernel would not take back."""
        left = dict(self.previous, addresses=list(self.previous.get("addresses", [])),
                    routes=list(self.previous.get("routes", [])),
                    host_routes=list(self.previous.get("host_routes", [])))
        try:
            for what, undo in reversed(self.undo):
                try:
                    undo()
                except Exception:  # noqa: BLE001 - keep it recorded so `down` removes it
                    kind, item = what
                    if kind != "mtu":
                        left[kind].append(item)
        finally:
            self.ns.close()
        return left


def apply(iface, previous=None, endpoint_ips=()):
    """Make every change that can fail for the link to be what `iface` asks for; `previous` is
    the state recorded last time (a reload), so only the difference changes. On failure all
    of it is taken back and NetError raised; otherwise the caller gets a NetChange and must
    `commit()` or `rollback()` it."""
    previous = dict(EMPTY, **(previous or {}))
    ns = NetSetup(iface.name)
    state = {"addresses": list(iface.addresses), "host_routes": [], "mtu": iface.mtu,
             "routes": [list(r) for r in route_prefixes(iface)]}
    change = NetChange(ns, previous, state)
    try:
        present = ns.current_addresses()
        for cidr in state["addresses"]:
            if not any(_same_address(cidr, p) for p in present):
                ns.add_address(cidr)
                change.undo.append((("addresses", cidr), lambda c=cidr: ns.del_address(c, True)))
        old_mtu = ns.mtu()
        if old_mtu != iface.mtu:
            ns.set_mtu(iface.mtu)
            change.undo.append((("mtu", old_mtu), lambda m=old_mtu: ns.set_mtu(m)))
        ns.set_up()
        _host_routes(iface, ns, previous, state, change, endpoint_ips)
        for r in state["routes"]:
            ns.add_route(*r[:2], table=_table(r))
            if r not in previous["routes"]:
                change.undo.append((("routes", r), lambda r=r: ns.del_route(
                    r[0], r[1], True, _table(r))))
    except Exception:
        change.rollback()
        raise
    return change


def _host_routes(iface, ns, previous, state, change, endpoint_ips):
    """Endpoints keep their path when the tunnel takes the default route (see the top)."""
    if iface.nohostroute or not any(r[1] == 1 and len(r) == 2 for r in state["routes"]):
        return
    known = {h["dst"]: h for h in previous["host_routes"]}
    for ip in endpoint_ips:
        if ip in known:
            if known[ip] not in state["host_routes"]:
                state["host_routes"].append(known[ip])
            continue
        spec = ns.endpoint_host_route(ip)
        if spec and spec not in state["host_routes"]:
            state["host_routes"].append(spec)
            change.undo.append((("host_routes", spec), lambda s=spec: ns.del_host_route(s, True)))


def undo(ifname, state, link=True):
    """Remove what `apply` recorded, then (with `link`) the link itself."""
    ns = NetSetup(ifname)
    try:
        for spec in state.get("host_routes", []):
            ns.del_host_route(spec)
        for r in state.get("routes", []):
            ns.del_route(*r[:2], table=_table(r))
        for cidr in state.get("addresses", []):
            ns.del_address(cidr)
        if link:
            ns.delete_link()
    finally:
        ns.close()
