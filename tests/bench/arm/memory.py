"""Where a wgedge daemon's memory goes, measured inside the benchmark guest (or on any host).

    python3 -m tests.bench.arm.memory daemon [round]
                                                 a wgedge pair (handshake, ping), 4 MiB through
                                                 it (and with `round` TCP 1 and 4 streams and
                                                 64-byte UDP, 5 s each, as a bench-arm round),
                                                 then each daemon's RSS by mapping
                                                 (/proc/PID/smaps) and what the traffic added
    python3 -m tests.bench.arm.memory start [N]  N daemons started one after another (no
                                                 peer, no traffic): each one's RSS by mapping
                                                 right after start-up, and the medians
    python3 -m tests.bench.arm.memory imports    RSS of a fresh interpreter after each step
                                                 of what the daemon imports, in its order
    python3 -m tests.bench.arm.memory floor [N]  the least any daemon on this interpreter and
                                                 cryptography could take: peak RSS of a
                                                 process that loads them and runs what a
                                                 daemon runs of them, with nothing of wgedge
                                                 (and, for comparison, the same through
                                                 OpenSSL's libcrypto called with ctypes)

Each answers with one JSON line (`@@MEMORY {...}@@`), after a readable table. The tables
add up smaps, which is exact; VmRSS and VmHWM (also shown) come from counters the kernel
updates in steps of up to 64 pages per thread. docs/performance.md ("Memory") has results.
A mapping's group: the file it maps (basename), `[heap]`, `[stack]`, or `anon` for anonymous
mappings (Python's object arenas, the relocated data of shared libraries, mmap'd buffers).
Figures are kB: Rss (pages in memory), Anonymous (the part only this process owns), Pss.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from tests.bench import tunnel_bench
from tests.netns import Namespaces


def smaps_groups(pid):
    """-> {group: {"rss": kB, "anon": kB, "pss": kB}} for one process."""
    groups = {}
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and not head[0].endswith(":"):  # a mapping's header line
                path = head[5] if len(head) > 5 else ""
                if path.startswith("["):
                    name = path
                elif path:
                    name = os.path.basename(path)
                else:
                    name = "anon"
                cur = groups.setdefault(name, {"rss": 0, "anon": 0, "pss": 0})
            elif head[0] == "Rss:":
                cur["rss"] += int(head[1])
            elif head[0] == "Anonymous:":
                cur["anon"] += int(head[1])
            elif head[0] == "Pss:":
                cur["pss"] += int(head[1])
    return groups


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def table(groups, top=14):
    rows = sorted(groups.items(), key=lambda kv: -kv[1]["rss"])
    lines = ["%-36s %8s %8s %8s" % ("mapping", "Rss kB", "Anon kB", "Pss kB")]
    for name, g in rows[:top]:
        lines.append("%-36s %8d %8d %8d" % (name[:36], g["rss"], g["anon"], g["pss"]))
    rest = rows[top:]
    if rest:
        lines.append("%-36s %8d %8d %8d" % ("(%d others)" % len(rest),
                                             sum(g["rss"] for _, g in rest),
                                             sum(g["anon"] for _, g in rest),
                                             sum(g["pss"] for _, g in rest)))
    lines.append("%-36s %8d %8d %8d" % ("total", sum(g["rss"] for g in groups.values()),
                                         sum(g["anon"] for g in groups.values()),
                                         sum(g["pss"] for g in groups.values())))
    return "\n".join(lines)


def daemon(rounds=False):
    out = []
    nets = Namespaces()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ns_a, ns_b, _ = tunnel_bench._setup(nets, "wgedge", "wgedge", tmp)
            pids = [p for ns in (ns_a, ns_b) for p in tunnel_bench.daemon_pids(ns)]
            started = [status_kb(p, "VmRSS") for p in pids]
            groups0 = [smaps_groups(p) for p in pids]
            server = subprocess.Popen(["ip", "netns", "exec", ns_b, "iperf3", "-s", "-1", "-B",
                                       "10.88.0.2"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)
                tunnel_bench.sh("iperf3", "-c", "10.88.0.2", "-n", "4M", ns=ns_a, timeout=300)
            finally:
                server.kill()
                server.wait()
            if rounds:  # then what a bench-arm round runs through the tunnel
                tunnel_bench.iperf(ns_a, ns_b, "10.88.0.2", 5, 1)
                tunnel_bench.iperf(ns_a, ns_b, "10.88.0.2", 5, 4)
                tunnel_bench.iperf_udp(ns_a, ns_b, "10.88.0.2", 5, 64)
            for pid, rss0, g0 in zip(pids, started, groups0, strict=True):
                groups = smaps_groups(pid)
                grown = {k: v["rss"] - g0.get(k, {"rss": 0})["rss"] for k, v in groups.items()}
                print("grown with traffic (kB): %s" % ", ".join(
                    "%s %+d" % kv for kv in sorted(grown.items(), key=lambda kv: -kv[1])
                    if kv[1]))
                print("daemon %d: VmRSS %d kB after the handshake, %d kB after the traffic; VmHWM %d kB"
                      % (pid, rss0, status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM")))
                print(table(groups))
                out.append({"rss_start_kb": rss0, "grown": grown, "groups": groups,
                            "rss_kb": status_kb(pid, "VmRSS"), "hwm_kb": status_kb(pid, "VmHWM")})
    finally:
        nets.cleanup()
    sys.stdout.write("@@MEMORY %s@@\n" % json.dumps(out, sort_keys=True))


def start(n=3):
    """RSS by mapping of `n` daemons, each started (detached, as wg-quick starts it) in a new
    namespace, measured once its control socket answers, then stopped."""
    runs = []
    for i in range(n):
        nets = Namespaces()
        try:
            ns = nets.ns("m")
            ifname = "wgm%d%s" % (i, nets.tag[:4])
            nets.start("wgedge", ns, ifname)
            time.sleep(1)  # the start-up log lines are written after the socket exists
            pid = tunnel_bench.daemon_pids(ns)[0]
            runs.append(smaps_groups(pid))
        finally:
            nets.cleanup()
    names = set(k for r in runs for k in r)
    med = {}
    for k in names:
        med[k] = {f: sorted(r.get(k, {}).get(f, 0) for r in runs)[len(runs) // 2]
                  for f in ("rss", "anon", "pss")}
    print("daemon right after start-up, medians of %d: totals %s kB" % (
        n, sorted(sum(g["rss"] for g in r.values()) for r in runs)))
    print(table(med))
    sys.stdout.write("@@MEMORY %s@@\n" % json.dumps(
        {"totals": [sum(g["rss"] for g in r.values()) for r in runs], "median": med},
        sort_keys=True))


# What the daemon imports, in the order it imports them (wgedge/__main__ -> cli -> daemon ->
# io.loop -> crypto): each step's cost is what it adds to everything before it.
IMPORT_STEPS = [
    ("interpreter", ""),
    ("socket, select", "import socket, select"),
    ("wgedge.cli", "import wgedge.cli"),
    ("wgedge.router.daemon", "import wgedge.router.daemon"),
    ("cryptography (package)", "import cryptography"),
    ("wgedge.crypto.fast", "import wgedge.crypto.fast"),
    ("wgedge.io.loop", "import wgedge.io.loop"),
    ("backend loaded", "from wgedge import crypto; crypto.load()"),
]


def imports():
    code = ["import sys, json", "def rss():",
            "    for l in open('/proc/self/status'):",
            "        if l.startswith('VmRSS'): return int(l.split()[1])",
            "def anon():",
            "    for l in open('/proc/self/smaps_rollup'):",
            "        if l.startswith('Anonymous'): return int(l.split()[1])",
            "out = []"]
    for name, stmt in IMPORT_STEPS:
        if stmt:
            code.append(stmt)
        code.append("out.append((%r, rss(), anon(), len(sys.modules)))" % name)
    code.append("print(json.dumps(out))")
    res = subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True,
                         text=True, check=True)
    steps = json.loads(res.stdout)
    prev = None
    print("%-26s %8s %8s %8s %8s" % ("step", "RSS kB", "+kB", "anon kB", "modules"))
    for name, rss, anon, mods in steps:
        print("%-26s %8d %8s %8d %8d" % (name, rss, "" if prev is None else "%+d" % (rss - prev),
                                           anon, mods))
        prev = rss
    sys.stdout.write("@@MEMORY %s@@\n" % json.dumps(steps))


# The runtime floor: what a process holds that has only loaded the interpreter and the crypto
# the daemon uses and run each operation of it once (an X25519 key and exchange, one
# ChaCha20-Poly1305 encryption and one failed decryption, BLAKE2s, a UDP socket and epoll).
# No wgedge module is imported, so no daemon written on these can be smaller.
# The measured process imports nothing else (not even json, whose decoder loads `re`: 1.2 MB).
_FLOOR_STATUS = """
def status():
    return ' '.join(line.split()[1] for line in open('/proc/self/status')
                    if line.split(':')[0] in ('VmHWM', 'VmRSS', 'RssAnon'))
"""
_FLOOR_COMMON = "import os, socket, select, _blake2\n"
# After either binding's operations, which leave their ciphertext in `sealed`.
_FLOOR_REST = """
_blake2.blake2s(sealed).digest()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ep = select.epoll()
ep.register(sock.fileno(), select.EPOLLIN)
ep.poll(0)
"""
# cryptography's Rust bindings, as wgedge/crypto/fast.py takes them (the public API before 42)
_FLOOR_CRYPTOGRAPHY_LOAD = """
try:
    from cryptography.hazmat.bindings._rust import openssl as o
    priv, pub, AEAD = (o.x25519.from_private_bytes, o.x25519.from_public_bytes,
                       o.aead.ChaCha20Poly1305)
except (ImportError, AttributeError):
    from cryptography.hazmat.primitives.asymmetric.x25519 import (X25519PrivateKey,
                                                                  X25519PublicKey)
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305 as AEAD
    priv, pub = X25519PrivateKey.from_private_bytes, X25519PublicKey.from_public_bytes
"""
_FLOOR_CRYPTOGRAPHY_USE = """
key = priv(os.urandom(32))
theirs = key.public_key()
if hasattr(theirs, 'public_bytes_raw'):  # cryptography 40 and later, as in the daemon
    theirs = pub(theirs.public_bytes_raw())
key.exchange(theirs)
aead = AEAD(os.urandom(32))
sealed = aead.encrypt(bytes(12), bytes(1420), None)
try:
    aead.decrypt(b'\\1' * 12, sealed, None)
except Exception:
    pass
"""
# The same operations on the interpreter's own OpenSSL (libcrypto.so.3) through ctypes: what
# a different binding would start from.
_FLOOR_LIBCRYPTO = """
import ctypes, glob
lib = ctypes.CDLL(sorted(glob.glob('/usr/lib/*/libcrypto.so.3') + glob.glob('/lib/*/libcrypto.so.3')
                         + glob.glob('/usr/lib/libcrypto.so.3'))[0])
P, B, N = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
for name, res, args in (('EVP_PKEY_new_raw_private_key', P, [ctypes.c_int, P, B, N]),
                        ('EVP_PKEY_new_raw_public_key', P, [ctypes.c_int, P, B, N]),
                        ('EVP_PKEY_get_raw_public_key', ctypes.c_int, [P, B, ctypes.POINTER(N)]),
                        ('EVP_PKEY_CTX_new', P, [P, P]),
                        ('EVP_PKEY_derive_init', ctypes.c_int, [P]),
                        ('EVP_PKEY_derive_set_peer', ctypes.c_int, [P, P]),
                        ('EVP_PKEY_derive', ctypes.c_int, [P, B, ctypes.POINTER(N)]),
                        ('EVP_chacha20_poly1305', P, []),
                        ('EVP_CIPHER_CTX_new', P, []),
                        ('EVP_CipherInit_ex', ctypes.c_int, [P, P, P, B, B, ctypes.c_int]),
                        ('EVP_CipherUpdate', ctypes.c_int,
                         [P, B, ctypes.POINTER(ctypes.c_int), B, ctypes.c_int]),
                        ('EVP_CipherFinal_ex', ctypes.c_int, [P, B, ctypes.POINTER(ctypes.c_int)])):
    getattr(lib, name).restype = res
    getattr(lib, name).argtypes = args
X25519 = 1034  # NID_X25519
key = lib.EVP_PKEY_new_raw_private_key(X25519, None, os.urandom(32), 32)
raw, size = ctypes.create_string_buffer(32), N(32)
lib.EVP_PKEY_get_raw_public_key(key, raw, ctypes.byref(size))
ctx = lib.EVP_PKEY_CTX_new(key, None)
lib.EVP_PKEY_derive_init(ctx)
lib.EVP_PKEY_derive_set_peer(ctx, lib.EVP_PKEY_new_raw_public_key(X25519, None, raw.raw, 32))
shared, size = ctypes.create_string_buffer(32), N(32)
assert lib.EVP_PKEY_derive(ctx, shared, ctypes.byref(size)) == 1
cipher = lib.EVP_CIPHER_CTX_new()
lib.EVP_CipherInit_ex(cipher, lib.EVP_chacha20_poly1305(), None, os.urandom(32), bytes(12), 1)
out, length = ctypes.create_string_buffer(1500), ctypes.c_int()
lib.EVP_CipherUpdate(cipher, out, ctypes.byref(length), bytes(1420), 1420)
assert lib.EVP_CipherFinal_ex(cipher, out, ctypes.byref(length)) == 1
sealed = out.raw
"""
FLOOR_VARIANTS = [
    ("the interpreter alone", "print(status())"),
    ("cryptography, one process",
     _FLOOR_COMMON + _FLOOR_CRYPTOGRAPHY_LOAD + _FLOOR_CRYPTOGRAPHY_USE + _FLOOR_REST
     + "print(status())"),
    # As `wgedge IFNAME` runs: the command loads everything and forks the daemon, which maps
    # the file pages its parent touched only as it touches them again.
    ("cryptography, forked after loading",
     _FLOOR_COMMON + _FLOOR_CRYPTOGRAPHY_LOAD + "pid = os.fork()\nif pid == 0:\n"
     + "".join("    %s\n" % line
               for line in (_FLOOR_CRYPTOGRAPHY_USE + _FLOOR_REST).strip().splitlines())
     + "    print(status(), flush=True)\n    os._exit(0)\nos.waitpid(pid, 0)"),
    ("libcrypto through ctypes, one process",
     _FLOOR_COMMON + _FLOOR_LIBCRYPTO + _FLOOR_REST + "print(status())"),
]


def measure_floor(n=3):
    """Each variant of FLOOR_VARIANTS run `n` times in a fresh interpreter -> [{"name",
    "hwm_kb", "rss_kb", "anon_kb" (medians), "runs" (each VmHWM)} or {"name", "error"}]."""
    results = []
    for name, body in FLOOR_VARIANTS:
        runs = []
        for _ in range(n):
            res = subprocess.run([sys.executable, "-c", _FLOOR_STATUS + body],
                                 capture_output=True, text=True, timeout=120)
            if res.returncode != 0 or len(res.stdout.split()) != 3:
                runs = (res.stderr.strip().splitlines() or ["no output"])[-1]
                break
            hwm, rss, anon = (int(v) for v in res.stdout.split())  # /proc/PID/status's order
            runs.append({"VmHWM": hwm, "VmRSS": rss, "RssAnon": anon})
        if isinstance(runs, str):
            results.append({"name": name, "error": runs})
            continue
        med = {k: sorted(r[k] for r in runs)[n // 2] for k in ("VmHWM", "VmRSS", "RssAnon")}
        results.append({"name": name, "hwm_kb": med["VmHWM"], "rss_kb": med["VmRSS"],
                        "anon_kb": med["RssAnon"], "runs": [r["VmHWM"] for r in runs]})
    return results


def floor(n=3):
    results = measure_floor(n)
    print("%-40s %9s %9s %9s" % ("runtime floor, median of %d" % n, "VmHWM kB", "VmRSS kB",
                                 "anon kB"))
    for r in results:
        if "error" in r:
            print("%-40s failed: %s" % (r["name"], r["error"]))
        else:
            print("%-40s %9d %9d %9d" % (r["name"], r["hwm_kb"], r["rss_kb"], r["anon_kb"]))
    sys.stdout.write("@@MEMORY %s@@\n" % json.dumps(results, sort_keys=True))


def main(argv):
    if argv[:1] == ["daemon"] and argv[1:] in ([], ["round"]):
        daemon(argv[1:] == ["round"])
    elif argv[:1] == ["start"] and len(argv) <= 2:
        start(int(argv[1]) if len(argv) == 2 else 3)
    elif argv == ["imports"]:
        imports()
    elif argv[:1] == ["floor"] and len(argv) <= 2:
        floor(int(argv[1]) if len(argv) == 2 else 3)
    else:
        print("usage: python3 -m tests.bench.arm.memory daemon [round]|start [N]|imports|floor [N]",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
