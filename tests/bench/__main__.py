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
        results = tunnel_bench.run()
        mem = tunnel_bench.memory()
        tunnel = tunnel_bench.report(results, idle, mem)
        print(tunnel, flush=True)
        png = os.path.join(os.path.dirname(DOC), "throughput.png")
        plotted = tunnel_bench.plot(results, png)
        sections.append("## Tunnel (iperf3 and ping through two namespaces joined by veth)\n\n"
                        "Rounds interleave the candidates; medians of 3 rounds of 5 s each. "
                        "wireguard-go is Debian's package. The two cores are shared by both "
                        "tunnel ends, iperf3 and the kernel."
                        "\n\n" + tunnel + ("\n\n![throughput](throughput.png)" if plotted
                                            else ""))
    else:
        print("tunnel benchmarks skipped: they need root", file=sys.stderr)
    header = ("# Benchmarks\n\nProduced by `make bench` (`python -m tests.bench`, as root) on %s (%s, %d cores, Python %s).\n" % (
        datetime.date.today().isoformat(), platform.machine(), os.cpu_count(),
        platform.python_version()))
    with open(DOC, "w") as f:
        f.write(header + "\n" + "\n\n".join(sections) + "\n")
    print("written to %s" % DOC)
    print("command: make bench")


if __name__ == "__main__":
    main()
