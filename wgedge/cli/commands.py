"""What each command does, as the command line sees it: read the file, print its problems,
call the router side (wgedge/router/lifecycle.py, status.py) and print what it reports.
Every import that costs time or memory is made inside the command that needs it, so
`check`, `info` and the daemon load only their own (tests/test_entry_imports.py).
"""

import os
import sys


def _backend():
    from wgedge import crypto

    return crypto.load()


def cmd_info(args):
    from wgedge.router.sysinfo import describe_lines, offload_lines, warning_lines

    backend = _backend()
    for line in describe_lines(backend) + offload_lines() + warning_lines(backend):
        print(line)
    return 0


def cmd_demo(args):
    from wgedge.cli import demo

    return 0 if demo.run(_backend()) else 1


def _print_problems(loaded):
    for w in loaded.warnings:
        print("warning: %s" % w, file=sys.stderr)
    for e in loaded.errors:
        print("error: %s" % e, file=sys.stderr)


def _dns_warnings(loaded):
    from wgedge.router.endpoints import unresolved_warnings

    for w in unresolved_warnings(loaded):
        print("warning: %s" % w, file=sys.stderr)


def _key_file_warning(path):
    """The config file itself. The key files it names are checked by the loader
    (wgedge/config/validate.py), whose warnings _print_problems prints with file, line, option."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & 0o077:
        print("warning: %s holds private keys and is readable by group or others (mode %o): "
              "chmod 600 it" % (path, mode & 0o777), file=sys.stderr)


def cmd_export(path):
    """`check --export FILE`: the file as wgedge read it, printed as `uci export` prints it
    (byte for byte the same for a file uci reads). Only the UCI syntax is read here."""
    from wgedge.config import export, loader, uci

    if path.endswith(".conf"):
        print("wgedge: --export reads UCI files; %s is a wg-quick file" % path, file=sys.stderr)
        return 1
    try:
        text = loader.read_text(path)
    except OSError as exc:
        print("error: %s: cannot read: %s" % (path, exc.strerror), file=sys.stderr)
        return 1
    warnings = []
    sections, errors = uci.parse(text, path, warnings)
    for w in warnings:
        print("warning: %s" % w, file=sys.stderr)
    for e in errors:
        print("error: %s" % e, file=sys.stderr)
    if errors:
        return 1
    out = export.export(sections, os.path.basename(path))
    sys.stdout.flush()
    sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()
    return 0


def cmd_check(args):
    from wgedge.config import loader

    if args.export:
        return cmd_export(args.file)
    loaded = loader.load(args.file)
    _print_problems(loaded)
    if loaded.summary():  # the rest of a router file: one line, whatever it holds
        print(loaded.summary())
    if not loaded.errors:
        _key_file_warning(args.file)
        _dns_warnings(loaded)
        names = ", ".join(i.name for i in loaded.interfaces) or "none"
        print("%s: OK (wireguard interfaces: %s)" % (args.file, names))
    return 1 if loaded.errors else 0


def cmd_up(args):
    from wgedge.config import loader
    from wgedge.router import firstboot, keys, lifecycle

    _verbose(args)
    if args.install_default:
        try:
            if firstboot.install_default(args.file, args.install_default):
                print("wgedge: installed the default config %s as %s"
                      % (args.install_default, args.file))
        except firstboot.FirstBootError as exc:
            print("wgedge: %s" % exc, file=sys.stderr)
            return 1
    loaded = loader.load(args.file)
    _print_problems(loaded)
    if loaded.errors:
        return 1
    _key_file_warning(args.file)
    if not loaded.interfaces:
        print("wgedge: %s has no wireguard interface to bring up" % args.file, file=sys.stderr)
        return 1
    logfile = args.log and os.path.abspath(args.log)
    if logfile and not _log_file_writable(logfile):
        return 1
    _dns_warnings(loaded)
    keys.generate_keys(loaded)  # on the disk before any key runs or is shown
    if args.console:
        firstboot.announce(loaded, args.console)
    # The watchdog runs from / and reads the file again after each restart: give it the path
    # as the command line meant it, relative to where the command was run.
    path = os.path.abspath(args.file)
    report = lifecycle.Report(_emit)
    for iface in loaded.interfaces:
        lifecycle.up_one(path, iface, args.no_watchdog, report, logfile,
                         loaded.settings.nice)
    return report.code


def _emit(text, is_error):
    print(text, file=sys.stderr if is_error else sys.stdout, flush=True)


def _log_file_writable(path):
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        print("wgedge: cannot write the log file %s: %s" % (path, exc.strerror or exc),
              file=sys.stderr)
        return False
    return True


def cmd_down(args):
    """Only what wgedge runs (lifecycle.down): without a name, every interface `up` brought
    up; with one, that interface, refused when wgedge does not run it (exit 1)."""
    from wgedge.router import lifecycle, runfiles

    report = lifecycle.Report(_emit)
    if args.ifname:
        lifecycle.down_one(args.ifname, True, report)
        return report.code
    names = runfiles.brought_up()
    if not names:
        print("no interface brought up by `wgedge up` is running")
    for name in names:
        lifecycle.down_one(name, False, report)
    return report.code


def _verbose(args):
    """`-v`: the watchdog and the daemons it starts inherit LOG_LEVEL (wgedge/router/daemon.py)."""
    if getattr(args, "verbose", False):
        os.environ["LOG_LEVEL"] = "debug"


def cmd_reload(args):
    """Make what runs from the file equal to it (lifecycle.reload; docs/configuration.md,
    "Reload"): a file with errors changes nothing."""
    from wgedge.config import loader, schema
    from wgedge.router import keys, lifecycle

    _verbose(args)
    report = lifecycle.Report(_emit)
    path, only = lifecycle.reload_target(args.target, schema.DEFAULT_PATH, report)
    if path is None:
        return 1
    loaded = loader.load(path)
    _print_problems(loaded)
    if loaded.errors:
        print("wgedge: reload refused: the running configuration is unchanged", file=sys.stderr)
        return 1
    _dns_warnings(loaded)
    keys.generate_keys(loaded)
    logfile = args.log and os.path.abspath(args.log)
    if logfile and not _log_file_writable(logfile):
        return 1
    lifecycle.reload(loaded, only, args.no_watchdog, report, logfile)
    return report.code


def cmd_status(args):
    import json

    from wgedge.router import status, statusview
    from wgedge.router.manage import ManageError

    try:
        info = status.status(args.ifname)
    except ManageError as exc:
        print("wgedge: %s" % exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info, indent=2))
    elif args.prometheus:
        sys.stdout.write(statusview.prometheus(info))
    else:
        sys.stdout.write(statusview.text(info))
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
