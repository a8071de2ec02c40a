"""Command line: arguments and user-facing messages only.

    wgedge [-f|--foreground] [-v] [--log FILE] IFNAME    run an interface (as wireguard-go)
    wgedge up [FILE] [--no-watchdog]                    bring up every interface in FILE
    wgedge down [IFNAME]                                undo `up` (all interfaces if none given)
    wgedge reload [FILE|IFNAME] [--no-watchdog]         make what runs from FILE equal to it
    wgedge status [--json]                              interfaces, peers, handshakes, health
    wgedge check FILE                                   report every error in FILE
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


def _print_problems(loaded):
    for w in loaded.warnings:
        print("warning: %s" % w, file=sys.stderr)
    for e in loaded.errors:
        print("error: %s" % e, file=sys.stderr)


def _dns_warnings(loaded):
    from wgedge import manage

    for w in manage.unresolved_warnings(loaded):
        print("warning: %s" % w, file=sys.stderr)


def _key_file_warning(path):
    """The config file itself. The key files it names are checked by the loader
    (wgedge/config/model.py), whose warnings _print_problems prints with file, line, option."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & 0o077:
        print("warning: %s holds private keys and is readable by group or others (mode %o): "
              "chmod 600 it" % (path, mode & 0o777), file=sys.stderr)


def cmd_check(args):
    from wgedge.config import model

    loaded = model.load(args.file)
    _print_problems(loaded)
    if not loaded.errors:
        _key_file_warning(args.file)
        _dns_warnings(loaded)
        names = ", ".join(i.name for i in loaded.interfaces) or "none"
        print("%s: OK (wireguard interfaces: %s)" % (args.file, names))
    return 1 if loaded.errors else 0


def cmd_up(args):
    from wgedge import manage
    from wgedge.config import model

    loaded = model.load(args.file)
    _print_problems(loaded)
    if loaded.errors:
        return 1
    _key_file_warning(args.file)
    if not loaded.interfaces:
        print("wgedge: %s has no wireguard interface to bring up" % args.file, file=sys.stderr)
        return 1
    _dns_warnings(loaded)
    manage.generate_keys(loaded)
    code = 0
    for iface in loaded.interfaces:
        code |= _up_one(args.file, iface, args.no_watchdog)
    return code


def _up_one(path, iface, no_watchdog):
    """Bring up one interface of the file at `path` -> exit code (0 when up)."""
    from wgedge import manage, runlock

    # The interface's lock first: of two `up` at once exactly one gets past this line,
    # and a loser changes nothing (wgedge/runlock.py).
    try:
        lock = runlock.acquire(iface.name)
    except runlock.LockBusy as exc:
        print("wgedge: %s is already up or being brought up by %s: use reload, or down "
              "first" % (iface.name, exc.holder()), file=sys.stderr)
        return 1
    if os.path.exists(manage.socket_path(iface.name)) and manage.wait_socket(iface.name, 0.5):
        # run by something that takes no lock, e.g. wireguard-go
        runlock.release(lock, iface.name)
        print("wgedge: %s is already up (use reload)" % iface.name, file=sys.stderr)
        return 1
    if no_watchdog:
        return _start_without_watchdog(iface, lock)
    return _start_watchdog(path, iface.name, lock)


def _start_without_watchdog(iface, lock):
    from wgedge import manage, runlock

    try:
        manage.start_daemon(iface.name, lock)
        manage.configure(iface, first=True)
    except Exception as exc:  # noqa: BLE001 - reported, and the half-made link removed
        print("wgedge: %s: %s" % (iface.name, exc), file=sys.stderr)
        manage.down(iface.name, lock)
        return 1
    runlock.release(lock)  # the daemon holds the interface from now on
    print("%s is up" % iface.name)
    return 0


def _start_watchdog(path, ifname, lock):
    from wgedge import daemon, runlock, watchdog

    def body(ready):
        try:
            daemon.setup_logging(ifname, daemon.log_level(False), False, None)
            wd = watchdog.Watchdog(path, ifname, lock)
        except BaseException:
            runlock.release(lock, ifname)
            raise
        wd.run(ready)  # on failure it has undone everything and removed the lock

    code = daemon.detach(body)
    # This copy of the lock only: the watchdog holds it (and cleaned up if it failed).
    runlock.release(lock)
    if code == 0:
        print("%s is up (under the watchdog)" % ifname)
    return code


def cmd_down(args):
    from wgedge import manage, runlock

    names = [args.ifname] if args.ifname else manage.running_interfaces()
    code = 0
    for name in names:
        if manage.down(name):
            print("%s is down" % name)
        else:
            pid = runlock.holder_pid(name)
            print("wgedge: %s: still held by %s: not down" % (
                name, "another wgedge" if pid is None else "pid %d" % pid), file=sys.stderr)
            code = 1
    return code


def cmd_reload(args):
    """Make what runs from the file equal to it (docs/configuration.md, "Reload"): a file
    with errors changes nothing; otherwise interfaces no longer in it are brought down, then
    the changed ones reloaded, then the new ones brought up, each on its own and all or
    nothing; one that fails is left as it ran (a new one not running) and named."""
    from wgedge import manage
    from wgedge.config import model

    path, only = _reload_target(args.target)
    if path is None:
        return 1
    loaded = model.load(path)
    _print_problems(loaded)
    if loaded.errors:
        print("wgedge: reload refused: the running configuration is unchanged", file=sys.stderr)
        return 1
    _dns_warnings(loaded)
    manage.generate_keys(loaded)
    plan = manage.ReloadPlan(loaded, only)
    code = 0
    for name in plan.remove:
        if manage.down(name):
            print("%s is down (no longer in %s)" % (name, path))
        else:
            print("wgedge: %s: no longer in %s, but still held by another process: not down"
                  % (name, path), file=sys.stderr)
            code = 1
    for iface in plan.change:
        if manage.clear_abandoned(iface.name):
            print("%s had stopped (nothing ran it any more): bringing it up again" % iface.name)
            plan.add.append(iface)
            continue
        ok, message = _reload_one(iface)
        if ok:
            print("%s reloaded" % iface.name)
        else:
            print("wgedge: %s: reload failed, the running configuration is unchanged: %s"
                  % (iface.name, message), file=sys.stderr)
            code = 1
    for iface, other in plan.elsewhere:
        print("wgedge: %s runs from %s, left as it is: reload that file, or down it and "
              "reload this one" % (iface.name, other), file=sys.stderr)
        code = 1
    for iface in plan.add:  # the watchdog re-reads the file from another directory
        code |= _up_one(os.path.abspath(path), iface, args.no_watchdog)
    return code


def _reload_target(arg):
    """`reload [FILE|IFNAME]` -> (file, None), or (the file it runs from, IFNAME) for an
    interface `up` brought up; (None, None) once an error is printed. A word without '/'
    that names such an interface is the interface; anything else is a file."""
    from wgedge import manage
    from wgedge.config.model import DEFAULT_PATH

    if arg is None:
        return DEFAULT_PATH, None
    if "/" in arg:
        return arg, None
    state = manage.read_state(arg)
    if state is not None:
        if not state.get("config"):
            print("wgedge: %s: its state file names no config file: reload the file" % arg,
                  file=sys.stderr)
            return None, None
        return state["config"], arg
    if not os.path.exists(arg):
        if os.path.exists(manage.socket_path(arg)):
            print("wgedge: %s was not brought up by `wgedge up`: nothing records its file "
                  "(reload it with `wg syncconf`)" % arg, file=sys.stderr)
        else:
            print("wgedge: %s is neither a file nor an interface wgedge brought up" % arg,
                  file=sys.stderr)
        return None, None
    return arg, None


def _reload_one(iface):
    """-> (ok, message). Under a watchdog the watchdog does it (its copy of the configuration
    must stay the one that runs); otherwise manage.configure, all or nothing either way."""
    from wgedge import manage

    wd = manage.read_pid(manage.watchdog_pid_path(iface.name))
    if wd is not None:
        running_from = (manage.read_state(iface.name) or {}).get("config")
        if running_from and os.path.realpath(running_from) != os.path.realpath(iface.path):
            return False, ("it runs from %s under its watchdog: reload that file, or down "
                           "and up this one" % running_from)
        return manage.reload_through_watchdog(iface.name, wd)
    try:
        manage.configure(iface, first=False)
    except Exception as exc:  # noqa: BLE001 - reported; configure changed nothing
        return False, str(exc)
    return True, ""


def cmd_status(args):
    import json

    from wgedge import manage

    info = manage.status()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if not info:
        print("no wgedge interfaces are running")
    for i in info:
        print("interface: %s  (daemon pid %s, watchdog pid %s)" % (
            i["interface"], i["daemon_pid"], i["watchdog_pid"]))
        if "error" in i:
            print("  error: %s" % i["error"])
            continue
        print("  public key: %s" % i.get("public_key", "(none)"))
        print("  listening port: %s" % i.get("listen_port"))
        for p in i["peers"]:
            age = p["latest_handshake_seconds_ago"]
            print("  peer: %s  [%s]" % (p["public_key"], p["health"]))
            print("    endpoint: %s" % (p["endpoint"] or "(none)"))
            print("    allowed ips: %s" % (", ".join(p["allowed_ips"]) or "(none)"))
            print("    latest handshake: %s" % ("never" if age is None else "%d s ago" % age))
            print("    transfer: %d B received, %d B sent" % (p["rx_bytes"], p["tx_bytes"]))
    return 0


COMMANDS = {
    "up": (cmd_up, "bring up the interfaces of a UCI or wg-quick file"),
    "down": (cmd_down, "undo up (every interface if none is named)"),
    "reload": (cmd_reload, "make what runs from the file equal to it: add, change, remove; "
               "a bad file changes nothing"),
    "status": (cmd_status, "interfaces and peers with handshake age, endpoint, transfer, health"),
    "check": (cmd_check, "validate a config file and report every error"),
    "info": (cmd_info, "print version, Python, crypto backend, CPU features and offloads"),
    "demo": (cmd_demo, "run an in-memory handshake and exchange packets"),
}


def _sub_arguments(name, sub):
    from wgedge.config.model import DEFAULT_PATH

    if name == "up":
        sub.add_argument("file", nargs="?", default=DEFAULT_PATH,
                         help="UCI file, or a wg-quick IFNAME.conf (default %s)" % DEFAULT_PATH)
    if name == "reload":
        sub.add_argument("target", nargs="?", metavar="FILE|IFNAME",
                         help="UCI or wg-quick file (default %s), or an interface `up` "
                         "brought up: reloaded from its file" % DEFAULT_PATH)
    if name in ("up", "reload"):
        sub.add_argument("--no-watchdog", action="store_true",
                         help="do not supervise the daemon%s" % (
                             "s of interfaces the file adds" if name == "reload" else ""))
    if name == "check":
        sub.add_argument("file")
    if name == "down":
        sub.add_argument("ifname", nargs="?")
    if name == "status":
        sub.add_argument("--json", action="store_true")


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
        _sub_arguments(argv[0], sub)
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
