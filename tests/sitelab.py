"""Two simulated routers with a LAN behind each, in network namespaces, running `wgedge up`
from the example UCI configs in config/. Used by the site-to-site tests and by `make demo`.

    LAN host A (192.168.10.2) -- router A --(10.250.0.0/24)-- router B -- LAN host B (192.168.20.2)

Peers are addressed by name (site-a.example.net, site-b.example.net), resolved through
/etc/netns/NAME/hosts, which `ip netns exec` mounts over /etc/hosts. Everything made here is
removed by `close()`.

Another wgedge may run on the host: the lab's daemons keep their sockets and state in private
run directories (tests/netns.py), `close()` takes down only the lab's own interfaces, and the
tests rename the example interfaces (wgsitea, wgsiteb) to names of their own (`ifname`).
"""

import os
import shutil
import sys
import tempfile

from tests.netns import ROOT, Namespaces, sh

WAN = {"a": "10.250.0.1", "b": "10.250.0.2"}
LAN = {"a": ("192.168.10.1", "192.168.10.2"), "b": ("192.168.20.1", "192.168.20.2")}
IFNAME = {"a": "wgsitea", "b": "wgsiteb"}  # as config/site-*.uci name them


class SiteLab:
    def __init__(self, rename=True):
        """`rename`: give the interfaces names of this lab's own (the tests); without it they
        keep the example configs' names (the demo)."""
        self.nets = Namespaces()
        self.tmp = tempfile.mkdtemp(prefix="wgedge-lab-")
        self.router, self.host, self.conf = {}, {}, {}
        self.ifname = dict(IFNAME)
        if rename:
            self.ifname = {s: "wgs%s%s" % (s, self.nets.tag) for s in "ab"}
        self.hosts_dirs = []

    def build(self):
        n = self.nets
        self.router["a"], self.router["b"] = n.ns("ra"), n.ns("rb")
        self.host["a"], self.host["b"] = n.ns("ha"), n.ns("hb")
        self._veth(self.router["a"], self.router["b"], "wa", WAN["a"], WAN["b"])
        for s in "ab":
            self._veth(self.router[s], self.host[s], "l" + s, LAN[s][0], LAN[s][1])
            sh("ip", "route", "add", "default", "via", LAN[s][0], ns=self.host[s])
            sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.router[s])
            with open(os.path.join(ROOT, "config", "site-%s.uci" % s)) as f:
                text = f.read().replace(IFNAME[s], self.ifname[s])
            self.conf[s] = os.path.join(self.tmp, "site-%s.uci" % s)
            with open(self.conf[s], "w") as f:
                f.write(text)
            os.chmod(self.conf[s], 0o600)
        self.set_name("a", WAN["b"], "site-b.example.net")
        self.set_name("b", WAN["a"], "site-a.example.net")
        return self

    def _veth(self, ns1, ns2, label, addr1, addr2):
        d1, d2 = label + "1" + self.nets.tag, label + "2" + self.nets.tag
        sh("ip", "link", "add", d1[:15], "type", "veth", "peer", "name", d2[:15])
        for ns, dev, addr in ((ns1, d1[:15], addr1), (ns2, d2[:15], addr2)):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "addr", "add", addr + "/24", "dev", dev, ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)

    def set_name(self, site, address, name):
        """What router `site` resolves `name` to (its /etc/netns hosts file)."""
        d = os.path.join("/etc/netns", self.router[site])
        os.makedirs(d, exist_ok=True)
        if d not in self.hosts_dirs:
            self.hosts_dirs.append(d)
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n%s %s\n" % (address, name))

    def wgedge(self, site, *args, check=True):
        env = dict(os.environ, PYTHONPATH=ROOT)
        return sh(sys.executable, "-m", "wgedge", *args, ns=self.router[site], env=env,
                  check=check, timeout=120)

    def up(self, site, *extra):
        return self.wgedge(site, "up", self.conf[site], *extra)

    def ping(self, src_site, dst_addr, count=3, check=True):
        return sh("ping", "-c", str(count), "-i", "0.2", "-W", "2", dst_addr,
                  ns=self.host[src_site], check=check, timeout=60)

    def close(self):
        for s in "ab":
            if s in self.router:
                self.wgedge(s, "down", self.ifname[s], check=False)
        self.nets.cleanup()
        for d in self.hosts_dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def demo():
    lab = SiteLab(rename=False)
    try:
        print("== building two routers with a LAN each (network namespaces)", flush=True)
        lab.build()
        for s in "ab":
            print("== router %s: wgedge up %s" % (s.upper(), os.path.relpath(
                os.path.join(ROOT, "config", "site-%s.uci" % s))), flush=True)
            print(lab.up(s).stdout.strip(), flush=True)
        print("== LAN host A (192.168.10.2) pings LAN host B (192.168.20.2) through the tunnel",
              flush=True)
        print(lab.ping("a", LAN["b"][1], count=4).stdout.strip(), flush=True)
        print("== wgedge status on router A", flush=True)
        print(lab.wgedge("a", "status").stdout.strip(), flush=True)
        print("== wgedge down on both routers, and everything removed", flush=True)
    finally:
        lab.close()
    print("== done", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "demo":
        sys.exit(demo())
    print("usage: python -m tests.sitelab demo", file=sys.stderr)
    sys.exit(2)
