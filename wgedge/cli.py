"""Command line: arguments and user-facing messages only.

    wgedge [-f|--foreground] [-v] [--log FILE] IFNAME    run an interface (as wireguard-go)
    wgedge info                                         version, Python, crypto, CPU features
    wgedge demo                                         an in-memory handshake and exchange
"""

import argparse
import os
import sys

from wgedge import __version__


def _backend():
    from wgedge import crypto

    return crypto.load()


def cmd_info(args):
    from wgedge.sysinfo import describe_lines, offload_lines

    for line in describe_lines(_backend()) + offload_lines():
        print(line)
    return 0


def cmd_demo(args):
    from wgedge import demo

    return 0 if demo.run(_backend()) else 1


COMMANDS = {
    "info": (cmd_info, "print version, Python, crypto backend, CPU features and offloads"),
    "demo": (cmd_demo, "run an in-memory handshake and exchange packets"),
}


def daemon_parser():
    p = argparse.ArgumentParser(
        prog="wgedge",
        usage="wgedge [-f|--foreground] [-v] [--log FILE] IFNAME\n       wgedge {%s} ..."
        % ",".join(COMMANDS),
        description="Userspace WireGuard for routers; a drop-in for `wireguard-go IFNAME`.",
        epilog="commands: " + "; ".join("%s: %s" % (k, v[1]) for k, v in COMMANDS.items()))
    p.add_argument("-f", "--foreground", action="store_true",
                   help="stay in the foreground (also WG_PROCESS_FOREGROUND=1)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (or LOG_LEVEL)")
    p.add_argument("--log", metavar="FILE", help="log to FILE instead of syslog")
    p.add_argument("--version", action="version", version="wgedge " + __version__)
    p.add_argument("ifname", metavar="IFNAME", help="interface to create")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        sub = argparse.ArgumentParser(prog="wgedge " + argv[0],
                                      description=COMMANDS[argv[0]][1])
        args = sub.parse_args(argv[1:])
        try:
            return COMMANDS[argv[0]][0](args)
        except ValueError as exc:  # configuration the operator must fix, e.g. WGEDGE_CRYPTO
            print("wgedge: %s" % exc, file=sys.stderr)
            return 1
    args = daemon_parser().parse_args(argv)
    from wgedge import daemon

    foreground = args.foreground or os.environ.get("WG_PROCESS_FOREGROUND") == "1"
    return daemon.run(args.ifname, foreground, args.verbose, args.log)
