"""Core benchmarks: per-packet engine cost and handshakes per second, for each backend.

Run with `make bench` (or `python -m tests.bench.core_bench`). Figures are medians of several
rounds; the machine is noisy, so compare backends within one run.
"""

import os
import statistics
import struct
import time

from wgedge import crypto
from wgedge.core.device import Device
from wgedge.core.ipaddr import parse_cidr

PAYLOAD = 1420 - 20  # a full 1420-byte inner IPv4 packet


def _packet(i):
    body = os.urandom(PAYLOAD)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + PAYLOAD, i & 0xFFFF, 0, 64, 17, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + body


def _pair(backend):
    a = Device(backend, os.urandom, os.urandom(32))
    b = Device(backend, os.urandom, os.urandom(32))
    pa, pb = a.add_peer(b.public_key), b.add_peer(a.public_key)
    a.allowed_ips.insert(*parse_cidr("10.0.0.2/32"), pa)
    b.allowed_ips.insert(*parse_cidr("10.0.0.1/32"), pb)
    ea, eb = ("192.0.2.1", 1), ("192.0.2.2", 2)
    pa.endpoint = eb
    now = 10.0
    queue = [(d, dst, ea) for d, dst in a.send_packets([_packet(0)], now).datagrams()]
    while queue:  # initiation -> response -> staged data: settle the handshake
        d, dst, src = queue.pop(0)
        dev = b if dst == eb else a
        queue += [(x, y, dst) for x, y in dev.receive_datagrams([(d, src)], now).datagrams()]
    return a, b, ea, now


def _gro_reads(datagrams, endpoint):
    """Equal-sized datagrams as UDP GRO reads hand them over: trains of at most 44 (what
    fits 65000 bytes at 1452 bytes each), as views."""
    size = len(datagrams[0][0])
    per = 65000 // size
    return [(memoryview(b"".join(bytes(d) for d, _ in datagrams[i:i + per])), size, endpoint)
            for i in range(0, len(datagrams), per)]


def per_packet(backend, batch=64, rounds=7, batches=60):
    """-> median µs per packet: send, receive one datagram at a time, receive GRO reads."""
    a, b, ea, now = _pair(backend)
    packets = [_packet(i) for i in range(batch)]
    send_times, recv_times, gro_times = [], [], []
    for _ in range(rounds):
        sent = []
        t0 = time.perf_counter()
        for _ in range(2 * batches):
            sent.append(a.send_packets(packets, now))
        t1 = time.perf_counter()
        # Cut up outside the timing: half one by one, half as GRO reads.
        singles = [[(d, ea) for d, _ in out.datagrams()] for out in sent[:batches]]
        reads = [_gro_reads(out.datagrams(), ea) for out in sent[batches:]]
        t2 = time.perf_counter()
        delivered = 0
        for datagrams in singles:
            delivered += len(b.receive_datagrams(datagrams, now).tun)
        t3 = time.perf_counter()
        for trains in reads:
            delivered += len(b.receive_trains(trains, now).tun)
        t4 = time.perf_counter()
        n = batch * batches
        assert delivered == 2 * n, (delivered, b.drops)
        send_times.append((t1 - t0) / (2 * n) * 1e6)
        recv_times.append((t3 - t2) / n * 1e6)
        gro_times.append((t4 - t3) / n * 1e6)
    return (statistics.median(send_times), statistics.median(recv_times),
            statistics.median(gro_times))


def handshakes_per_second(backend, seconds=1.0):
    """Complete handshakes (initiation, response, confirmation keepalive) between two engines."""
    a, b, ea, now = _pair(backend)
    pa = a.peers[b.public_key]
    eb = pa.endpoint
    count = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        now += 1.0  # beyond the 1/50 s flood limit and REKEY_TIMEOUT rate limit each time
        pa.last_sent_handshake = None
        out = a.send_packets([], now)
        pa.send_initiation(now, out)
        init = out.udp[-1][0]
        resp = b.receive_datagrams([(init, ea)], now).udp[0][0]
        keepalive = a.receive_datagrams([(resp, eb)], now).datagrams()[0][0]
        b.receive_datagrams([(keepalive, ea)], now)
        count += 1
    return count / (time.perf_counter() - t0)


def run(names=("fast", "pure")):
    results = {}
    for name in names:
        try:
            backend = crypto.load(name)
        except (ValueError, ImportError) as exc:
            results[name] = {"error": str(exc)}
            continue
        fast = name == "fast"
        send, recv, gro = per_packet(backend, batches=60 if fast else 2,
                                     rounds=7 if fast else 3)
        hs = handshakes_per_second(backend, 1.0 if fast else 3.0)
        results[name] = {"send_us": send, "recv_us": recv, "recv_gro_us": gro,
                         "handshakes_per_s": hs}
    return results


def report(results):
    lines = ["| backend | send 1420 B (µs/packet) | receive 1420 B (µs/packet) | "
             "receive, GRO reads (µs/packet) | send+receive (µs) | handshakes/s |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "error" in r:
            lines.append("| %s | %s | | | | |" % (name, r["error"]))
            continue
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %.0f |" % (
            name, r["send_us"], r["recv_us"], r["recv_gro_us"], r["send_us"] + r["recv_us"],
            r["handshakes_per_s"]))
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
