"""wgedge against itself and against wireguard-go, in network namespaces joined by veth.

Both ends are configured only through `wg` and `ip`, as an operator would. Needs root and the
Debian packages wireguard-go, wireguard-tools and iproute2 (`make test` installs them).
"""

import hashlib
import json
import os
import subprocess
import time

import pytest

from tests.netns import genkey, sh, write_key

pytestmark = [pytest.mark.root]

IMPLS = [("wgedge", "wgedge"), ("wgedge", "wireguard-go"), ("wireguard-go", "wgedge")]



class Site:
    def __init__(self, nets, label, impl, ifname, underlay, tun4, tun6):
        self.ns = None
        self.label, self.impl, self.ifname = label, impl, ifname
        self.underlay, self.tun4, self.tun6 = underlay, tun4, tun6
        self.priv, self.pub = genkey()

    def wg(self, *args, check=True):
        return sh("wg", *args, ns=self.ns, check=check)

    def dump(self):
        """`wg show IF dump` peer rows as dicts."""
        lines = self.wg("show", self.ifname, "dump").stdout.strip().split("\n")
        rows = []
        for line in lines[1:]:
            f = line.split("\t")
            rows.append({"public_key": f[0], "psk": f[1], "endpoint": f[2], "allowed": f[3],
                         "handshake": int(f[4]), "rx": int(f[5]), "tx": int(f[6]),
                         "keepalive": f[7]})
        return rows


def python_in(ns, script, *args):
    """A Python process running `script` inside namespace `ns` (a test's server side)."""
    return subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", script] + list(args))


def build(nets, tmp_path, impl_a, impl_b, outer6=False, psk=False, env=None):
    ns_a, ns_b = nets.ns("a"), nets.ns("b")
    nets.link(ns_a, ns_b, "10.200.0.1", "10.200.0.2", "fd20::1", "fd20::2")
    a = Site(nets, "a", impl_a, "wga" + nets.tag[:4], "10.200.0.1", "10.66.0.1", "fd66::1")
    b = Site(nets, "b", impl_b, "wgb" + nets.tag[:4], "10.200.0.2", "10.66.0.2", "fd66::2")
    a.ns, b.ns = ns_a, ns_b
    psk_path = None
    if psk:
        psk_path = write_key(tmp_path, "psk", sh("wg", "genpsk").stdout.strip())
    for me, other, port in ((a, b, 51820), (b, a, 51821)):
        nets.start(me.impl, me.ns, me.ifname, env)
        key = write_key(tmp_path, me.label + ".key", me.priv)
        me.port = port
        endpoint = ("[fd20::%s]:%d" if outer6 else "10.200.0.%s:%d") % (
            other.label == "a" and "1" or "2", 51820 if other.label == "a" else 51821)
        args = ["set", me.ifname, "private-key", key, "listen-port", str(port),
                "peer", other.pub, "allowed-ips", "%s/32,%s/128" % (other.tun4, other.tun6),
                "endpoint", endpoint]
        if psk_path:
            args += ["preshared-key", psk_path]
        me.wg(*args)
        sh("ip", "addr", "add", me.tun4 + "/24", "dev", me.ifname, ns=me.ns)
        sh("ip", "-6", "addr", "add", me.tun6 + "/64", "dev", me.ifname, "nodad", ns=me.ns)
        sh("ip", "link", "set", "mtu", "1420", "up", "dev", me.ifname, ns=me.ns)
    return a, b


def ping(src, dst_addr, count=3, check=True):
    return sh("ping", "-c", str(count), "-i", "0.2", "-W", "2", dst_addr, ns=src.ns,
              check=check, timeout=30)


@pytest.mark.parametrize("impl_a,impl_b", IMPLS)
@pytest.mark.parametrize("outer6", [False, True], ids=["outer4", "outer6"])
def test_handshake_and_ping_both_directions(nets, tmp_path, impl_a, impl_b, outer6):
    a, b = build(nets, tmp_path, impl_a, impl_b, outer6=outer6)
    ping(a, b.tun4)  # a initiates
    ping(b, a.tun6)  # then traffic the other way, IPv6 inside
    assert a.dump()[0]["handshake"] > 0 and b.dump()[0]["handshake"] > 0


@pytest.mark.parametrize("impl_a,impl_b", IMPLS)
def test_responder_initiates_with_psk(nets, tmp_path, impl_a, impl_b):
    a, b = build(nets, tmp_path, impl_a, impl_b, psk=True)
    ping(b, a.tun4)  # b initiates this time
    ping(a, b.tun6)


def test_counters_after_ten_pings_match_kernel(nets, tmp_path):
    a, b = build(nets, tmp_path, "wgedge", "wireguard-go")
    sh("ping", "-c", "10", "-i", "0.2", "-s", "56", b.tun4, ns=a.ns, timeout=30)
    row = a.dump()[0]
    assert row["rx"] == 1372, row
    assert row["tx"] in (1428, 1460), row
    assert row["endpoint"] == "10.200.0.2:51821"
    assert row["allowed"] == "10.66.0.2/32,fd66::2/128"


@pytest.mark.parametrize("impl_b", ["wgedge", "wireguard-go"])
@pytest.mark.parametrize("env", [{}, {"WGEDGE_OFFLOAD": "0", "WGEDGE_STEER": "0"},
                                 {"WGEDGE_TSO": "1"}],
                         ids=["offloads-default", "offloads-off-one-socket", "tso-reads"])
def test_tcp_transfer_byte_identical(nets, tmp_path, impl_b, env):
    a, b = build(nets, tmp_path, "wgedge", impl_b, env=env)
    data = os.urandom(8 << 20)
    src = tmp_path / "payload"
    src.write_bytes(data)
    out = tmp_path / "received"
    port = 5555
    server = python_in(
        b.ns,
        "import socket,sys\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('%s', %d)); s.listen(1); c,_=s.accept()\n"
        "f=open(sys.argv[1],'wb')\n"
        "while True:\n"
        "  d=c.recv(65536)\n"
        "  if not d: break\n"
        "  f.write(d)\n"
        "f.close()\n" % (b.tun4, port), str(out))
    try:
        time.sleep(0.5)
        sh("python3", "-c",
           "import socket,sys\n"
           "s=socket.create_connection(('%s', %d), timeout=30)\n"
           "s.sendall(open(sys.argv[1],'rb').read()); s.close()\n" % (b.tun4, port),
           str(src), ns=a.ns, timeout=120)
        server.wait(timeout=60)
    finally:
        server.kill()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def udp_counters(ns):
    """The namespace's UDP counters (/proc/net/snmp), as a dict."""
    rows = [line.split()[1:] for line in sh("cat", "/proc/net/snmp", ns=ns).stdout.splitlines()
            if line.startswith("Udp:")]
    return dict(zip(rows[0], map(int, rows[1]), strict=True))


def link_stats(ns, dev):
    """`ip -s link` of one device, on one line."""
    return " ".join(sh("ip", "-s", "link", "show", dev, ns=ns).stdout.split())


@pytest.mark.parametrize("impl_a", ["wgedge", "wireguard-go"])
def test_udp_datagrams_arrive_exact_and_in_order(nets, tmp_path, impl_a):
    """Bursts of UDP datagrams of two sizes (wgedge merges each flow's run into one
    GSO_UDP_L4 write to its TUN where the kernel takes it): every datagram arrives with
    its exact bytes, in the order sent.

    The session is made first (a ping). Before it exists a sender keeps only its last 128
    packets (MAX_STAGED_PACKETS; wireguard-go's QueueStagedSize), so a handshake slowed by
    CPU load lost the first datagrams; and wireguard-go, flushing its staged packets from two
    goroutines when the handshake completes, sent some out of counter order. The receiver's
    socket buffer is forced (SO_RCVBUFFORCE, root) past net.core.rmem_max to hold the whole
    transfer, so a server process starved of CPU loses nothing either."""
    a, b = build(nets, tmp_path, impl_a, "wgedge")
    ping(a, b.tun4, count=1)
    out = tmp_path / "received.json"
    ready = tmp_path / "ready"
    total = 20 * 100
    udp_before = udp_counters(b.ns)
    server = python_in(
        b.ns,
        "import json,socket,sys\n"
        "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET, 33, 1 << 23)  # SO_RCVBUFFORCE\n"
        "s.bind(('%s', 5301)); s.settimeout(10); got=[]\n"
        "open(sys.argv[2], 'w').close()\n"
        "try:\n"
        "  while len(got) < %d: got.append(s.recv(4096).hex())\n"
        "except socket.timeout: pass\n"
        "json.dump(got, open(sys.argv[1], 'w'))\n" % (b.tun4, total), str(out), str(ready))
    try:
        deadline = time.time() + 30
        while not ready.exists():
            assert time.time() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.05)
        sh("python3", "-c",
           "import os,socket,time\n"
           "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
           "for burst in range(20):\n"
           "  for i in range(100):\n"
           "    n = 1000 if i %% 4 else 80\n"
           "    s.sendto((b'%%d-%%d-' %% (burst, i)).ljust(n, b'u'), ('%s', 5301))\n"
           "  time.sleep(0.02)\n" % b.tun4, ns=a.ns, timeout=60)
        server.wait(timeout=60)
    finally:
        server.kill()
    got = [bytes.fromhex(d) for d in json.loads(out.read_text())]
    sent = [(b"%d-%d-" % (burst, i)).ljust(1000 if i % 4 else 80, b"u")
            for burst in range(20) for i in range(100)]
    if got != sent:  # say where datagrams went: sender's TUN, the tunnel, receiver's socket
        after = udp_counters(b.ns)
        arrived = set(got)
        missing = [d[:8] for d in sent if d not in arrived]
        pytest.fail("%d of %d arrived; missing %r; in order: %s\n"
                    "receiver UDP counters (delta): %s\nwg transfer a: %s b: %s\n"
                    "TUN a: %s\nTUN b: %s" % (
                        len(got), total, missing[:10], [d for d in sent if d in arrived] == got,
                        {k: after[k] - udp_before[k] for k in after if after[k] != udp_before[k]},
                        a.wg("show", a.ifname, "transfer").stdout.split("\t")[1:],
                        b.wg("show", b.ifname, "transfer").stdout.split("\t")[1:],
                        link_stats(a.ns, a.ifname), link_stats(b.ns, b.ifname)))


def test_roaming_follows_new_source_port(nets, tmp_path):
    a, b = build(nets, tmp_path, "wgedge", "wireguard-go")
    ping(a, b.tun4)
    b.wg("set", b.ifname, "listen-port", "53999")
    ping(b, a.tun4)  # b speaks first from its new port
    assert a.dump()[0]["endpoint"] == "10.200.0.2:53999"
    ping(a, b.tun4)


def test_peer_remove_stops_traffic_and_syncconf_applies(nets, tmp_path):
    a, b = build(nets, tmp_path, "wgedge", "wgedge")
    ping(a, b.tun4)
    a.wg("set", a.ifname, "peer", b.pub, "remove")
    assert a.dump() == []
    assert ping(a, b.tun4, count=1, check=False).returncode != 0
    conf = a.wg("showconf", a.ifname).stdout
    conf += "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = 10.200.0.2:51821\n" % (
        b.pub, b.tun4)
    path = tmp_path / "a.conf"
    path.write_text(conf)
    a.wg("syncconf", a.ifname, str(path))
    ping(a, b.tun4)
    assert a.dump()[0]["allowed"] == "10.66.0.2/32"


def test_restart_one_side_reestablishes(nets, tmp_path):
    a, b = build(nets, tmp_path, "wgedge", "wireguard-go")
    ping(a, b.tun4)
    conf = a.wg("showconf", a.ifname).stdout
    sh("ip", "link", "del", a.ifname, ns=a.ns)
    deadline = time.time() + 5
    while os.path.exists("/var/run/wireguard/%s.sock" % a.ifname) and time.time() < deadline:
        time.sleep(0.05)
    nets.start_wgedge(a.ns, a.ifname)
    path = tmp_path / "a.conf"
    path.write_text(conf)
    a.wg("setconf", a.ifname, str(path))
    sh("ip", "addr", "add", a.tun4 + "/24", "dev", a.ifname, ns=a.ns)
    sh("ip", "link", "set", "up", "dev", a.ifname, ns=a.ns)
    ping(a, b.tun4)


def test_garbage_does_not_disturb_tunnel(nets, tmp_path):
    a, b = build(nets, tmp_path, "wgedge", "wireguard-go")
    ping(a, b.tun4)
    sh("python3", "-c",
       "import os,socket,random\n"
       "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       "r=random.Random(7)\n"
       "for i in range(3000):\n"
       "  n=r.choice([0,1,3,4,31,32,33,92,148,64,200,1500])\n"
       "  d=bytearray(os.urandom(n))\n"
       "  if n>=4 and r.random()<0.7: d[0]=r.choice([1,2,3,4]); d[1:4]=b'\\0\\0\\0'\n"
       "  s.sendto(bytes(d), ('10.200.0.1', 51820))\n", ns=b.ns)
    ping(a, b.tun4)
    ping(b, a.tun4)


def test_malformed_control_lines_get_errno_and_daemon_survives(nets, tmp_path):
    a, b = build(nets, tmp_path, "wgedge", "wgedge")
    import socket as so

    path = "/var/run/wireguard/%s.sock" % a.ifname
    for request in (b"set=1\nlisten_port=notaport\n\n", b"set=1\nbogus=1\n\n",
                    b"set=1\npublic_key=zz\n\n", b"set=1\nallowed_ip=10.0.0.0/8\n\n",
                    b"get=1\n\n"):
        c = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        c.connect(path)
        c.sendall(request)
        reply = b""
        while not reply.endswith(b"\n\n"):
            chunk = c.recv(65536)
            if not chunk:
                break
            reply += chunk
        c.close()
        if request.startswith(b"get"):
            assert reply.endswith(b"errno=0\n\n")
        else:
            assert reply == b"errno=-22\n\n", (request, reply)
    assert os.stat(path).st_mode & 0o777 == 0o600
    # Several requests on one connection, a bad one among them, each answered in turn.
    c = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    c.connect(path)
    c.sendall(b"get=1\n\nset=1\nfwmark=x\n\nset=1\nfwmark=5\n\nget=1\n\n")
    reply = b""
    while reply.count(b"\n\n") < 4:
        chunk = c.recv(65536)
        assert chunk, reply
        reply += chunk
    c.close()
    answers = reply.split(b"\n\n")[:4]
    assert answers[0].endswith(b"errno=0") and answers[1] == b"errno=-22"
    assert answers[2] == b"errno=0" and b"fwmark=5\n" in answers[3]
    ping(a, b.tun4)
