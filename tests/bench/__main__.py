"""`make bench`: every benchmark in one run; results to stdout and docs/benchmarks.md."""

import datetime
import os
import platform
import sys

from tests.bench import core_bench, tunnel_bench

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "docs", "benchmarks.md")


def main():
    sections = []
    print("core engine benchmarks ...", flush=True)
    core = core_bench.report(core_bench.run())
    print(core, flush=True)
    sections.append("## Core engine (in memory, no sockets)\n\nPer-packet cost of a full "
                    "1420-byte packet through the engine (routing, padding, counters, AEAD, "
                    "replay window, source check), batches of 64; handshakes per second are "
                    "complete initiation-response-confirmation exchanges between two engines."
                    "\n\n" + core)
    if os.geteuid() == 0:
        print("tunnel benchmarks (iperf3 through namespaces) ...", flush=True)
        idle = tunnel_bench.idle_cpu()
        tunnel = tunnel_bench.report(tunnel_bench.run(), idle)
        print(tunnel, flush=True)
        sections.append("## Tunnel throughput (iperf3 TCP, two namespaces joined by veth)\n\n"
                        "Rounds interleave the candidates; medians of 3 rounds of 5 s. "
                        "wireguard-go is Debian's package.\n\n" + tunnel)
    else:
        print("tunnel benchmarks skipped: they need root", file=sys.stderr)
    header = ("# Benchmarks\n\nProduced by `make bench` on %s (%s, %d cores, Python %s).\n" % (
        datetime.date.today().isoformat(), platform.machine(), os.cpu_count(),
        platform.python_version()))
    with open(DOC, "w") as f:
        f.write(header + "\n" + "\n\n".join(sections) + "\n")
    print("written to %s" % DOC)


if __name__ == "__main__":
    main()
