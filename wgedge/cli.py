"""Command line: arguments and user-facing messages only.

    wgedge [-f|--foreground] [-v] [--log FILE] IFNAME    run an interface (as wireguard-go)
    wgedge up [FILE] [--no-watchdog] [-v] [--log FILE]  bring up every interface in FILE
    wgedge down [IFNAME]                                undo `up` (all it brought up if none given)
    wgedge reload [FILE|IFNAME] [--no-watchdog] [-v] [--log FILE]  make what runs equal to FILE
    wgedge status [IFNAME] [--json|--prometheus]        interfaces, peers, handshakes, drops
    wgedge check FILE                                   report every error in FILE
    wgedge check --export FILE                          print FILE as read, like `uci export`
    wgedge info                                         version, Python, crypto, CPU features
    wgedge demo                                         an in-memory handshake and exchange

A command or an interface name: the rule that keeps `wgedge IFNAME` working as wg-quick
(WG_QUICK_USERSPACE_IMPLEMENTATION=wgedge) and scripts call wireguard-go, while a mistyped
command never creates an interface. The word in the IFNAME place (the first argument, or the
one after the daemon's options) is:
- a command when it is one of COMMANDS, exactly;
- refused, exit 2, creating nothing, when it is
  - a word of `wg`, `wg-quick` or an init script (show, set, stop, ...: NOT_IFNAMES), or a
    command in another case (Status): "unknown command 'show'; did you mean 'status'?";
  - one edit (a letter added, dropped, changed, or two neighbours swapped) from a command,
    or the first three or more letters of one: "unknown command 'stauts'; did you mean
    'status'?";
  - a command name after daemon options (`wgedge -f status`);
  - a config file name (ending in .conf or .uci): use `wgedge up FILE`;
  - a name Linux refuses (empty, over 15 bytes, '/', ':', '%', whitespace, '.' or '..');
- otherwise an interface name, run as wireguard-go would run it.
So these words can never name an interface that wgedge runs; the usual names (wg0, wg1, vpn,
home, office, tun0) are nowhere near a command. Every refusal exits 2 with one line on stderr.
"""

import os
import sys

from wgedge import __version__


def _backend():
    from wgedge import crypto

    return crypto.load()


def cmd_info(args):
    from wgedge.sysinfo import describe_lines, offload_lines, warning_lines

    backend = _backend()
    for line in describe_lines(backend) + offload_lines() + warning_lines(backend):
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


def cmd_export(path):
    """`check --export FILE`: the file as wgedge read it, printed as `uci export` prints it
    (byte for byte the same for a file uci reads). Only the UCI syntax is read here."""
    from wgedge.config import model, uci

    if path.endswith(".conf"):
        print("wgedge: --export reads UCI files; %s is a wg-quick file" % path, file=sys.stderr)
        return 1
    try:
        text = model.read_text(path)
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
    out = uci.export(sections, os.path.basename(path))
    sys.stdout.flush()
    sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()
    return 0


def cmd_check(args):
    from wgedge.config import model

    if args.export:
        return cmd_export(args.file)
    loaded = model.load(args.file)
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
    from wgedge import manage
    from wgedge.config import model

    _verbose(args)
    loaded = model.load(args.file)
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
    manage.generate_keys(loaded)
    # The watchdog runs from / and reads the file again after each restart: give it the path
    # as the command line meant it, relative to where the command was run.
    path = os.path.abspath(args.file)
    code = 0
    for iface in loaded.interfaces:
        code |= _up_one(path, iface, args.no_watchdog, logfile)
    return code


def _log_file_writable(path):
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        print("wgedge: cannot write the log file %s: %s" % (path, exc.strerror or exc),
              file=sys.stderr)
        return False
    return True


def _up_one(path, iface, no_watchdog, logfile=None):
    """Bring up one interface of the file at `path` (absolute: the watchdog runs from / and
    reads the file again after each restart) -> exit code (0 when up)."""
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
        return _start_without_watchdog(iface, lock, logfile)
    return _start_watchdog(path, iface.name, lock, logfile)


def _start_without_watchdog(iface, lock, logfile=None):
    from wgedge import manage, runlock

    try:
        manage.start_daemon(iface.name, lock, logfile)
        manage.configure(iface, first=True)
    except Exception as exc:  # noqa: BLE001 - reported, and the half-made link removed
        print("wgedge: %s: %s" % (iface.name, exc), file=sys.stderr)
        manage.down(iface.name, lock)
        return 1
    runlock.release(lock)  # the daemon holds the interface from now on
    print("%s is up" % iface.name)
    return 0


def _start_watchdog(path, ifname, lock, logfile=None):
    from wgedge import daemon, manage, runlock, watchdog

    def body(ready):
        try:
            daemon.setup_logging(ifname, daemon.log_level(False), False, logfile)
            wd = watchdog.Watchdog(path, ifname, lock, logfile=logfile)
        except BaseException:
            runlock.release(lock, ifname)
            raise
        try:
            wd.run(ready)  # on failure it has undone everything and removed the lock
        except manage.ManageError as exc:  # named as `up --no-watchdog` names it
            raise manage.ManageError("%s: %s" % (ifname, exc)) from None

    code = daemon.detach(body)
    # This copy of the lock only: the watchdog holds it (and cleaned up if it failed).
    runlock.release(lock)
    if code == 0:
        print("%s is up (under the watchdog)" % ifname)
    return code


def cmd_down(args):
    """Only what wgedge runs (manage.down): without a name, every interface `up` brought up;
    with one, that interface, refused when wgedge does not run it (exit 1)."""
    from wgedge import manage

    if args.ifname:
        return _down_one(args.ifname, named=True)
    names = manage.brought_up()
    if not names:
        print("no interface brought up by `wgedge up` is running")
    code = 0
    for name in names:
        code |= _down_one(name, named=False)
    return code


def _down_one(name, named):
    from wgedge import manage, runlock

    running = manage.runs(name)
    if not running and not manage.own_files(name):
        if manage.socket_answers(name):
            print("wgedge: %s is not run by wgedge (another program, e.g. wireguard-go, answers "
                  "on its control socket): left alone" % name, file=sys.stderr)
        else:
            print("wgedge: %s is not running" % name, file=sys.stderr)
        return 1
    if not manage.down(name):
        pid = runlock.holder_pid(name)
        print("wgedge: %s: still held by %s: not down" % (
            name, "another wgedge" if pid is None else "pid %d" % pid), file=sys.stderr)
        return 1
    if running:
        print("%s is down" % name)
        return 0
    print("%s%s was not running; removed what its last run left behind"
          % ("wgedge: " if named else "", name), file=sys.stderr if named else sys.stdout)
    return 1 if named else 0


def _verbose(args):
    """`-v`: the watchdog and the daemons it starts inherit LOG_LEVEL (wgedge/daemon.py)."""
    if getattr(args, "verbose", False):
        os.environ["LOG_LEVEL"] = "debug"


def cmd_reload(args):
    """Make what runs from the file equal to it (docs/configuration.md, "Reload"): a file
    with errors changes nothing; otherwise interfaces no longer in it are brought down, then
    the changed ones reloaded, then the new ones brought up, each on its own and all or
    nothing; one that fails is left as it ran (a new one not running) and named."""
    from wgedge import manage
    from wgedge.config import model

    _verbose(args)
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
    logfile = args.log and os.path.abspath(args.log)
    if logfile and not _log_file_writable(logfile):
        return 1
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
        code |= _up_one(os.path.abspath(path), iface, args.no_watchdog, logfile)
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

    from wgedge import manage, statusview

    try:
        info = manage.status(args.ifname)
    except manage.ManageError as exc:
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


def _ifname_argument(text):
    """An IFNAME argument of a command: a name Linux takes (it also names files)."""
    import argparse

    from wgedge.io.tun import TunError, validate_ifname

    try:
        return validate_ifname(text)
    except TunError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        sub.add_argument("--log", metavar="FILE",
                         help="the watchdog and daemon log to FILE instead of syslog")
        sub.add_argument("-v", "--verbose", action="store_true",
                         help="debug logging in the watchdog and daemons started (LOG_LEVEL=debug)")
    if name == "check":
        sub.add_argument("file")
        sub.add_argument("--export", action="store_true",
                         help="print the file as read, in the format of `uci export`")
    if name == "down":
        sub.add_argument("ifname", nargs="?", type=_ifname_argument)
    if name == "status":
        sub.add_argument("ifname", nargs="?", metavar="IFNAME", help="only this interface")
        form = sub.add_mutually_exclusive_group()
        form.add_argument("--json", action="store_true",
                          help="the same fields as JSON (docs/status.md)")
        form.add_argument("--prometheus", action="store_true",
                          help="the Prometheus text exposition format")


def daemon_parser():
    import argparse

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


# Words other tools take (wg, wg-quick, init scripts) that are never an interface name here:
# the command meant, and a hint. The rule at the top of this file.
NOT_IFNAMES = {
    "show": ("status", "`wg show IFNAME` shows what a running interface holds"),
    "showconf": ("status", "`wg showconf IFNAME` prints a running interface's settings"),
    "list": ("status", None),
    "set": ("reload", "`wg set IFNAME ...` changes a running interface"),
    "setconf": ("reload", None),
    "addconf": ("reload", None),
    "syncconf": ("reload", None),
    "genkey": (None, "`wg genkey` makes a private key"),
    "genpsk": (None, "`wg genpsk` makes a preshared key"),
    "pubkey": (None, "`wg pubkey` derives a public key"),
    "save": (None, "`wg-quick save IFNAME` saves a running interface"),
    "strip": (None, "`wg-quick strip IFNAME` prints the part wg understands"),
    "start": ("up", None),
    "stop": ("down", None),
    "restart": ("reload", "or down, then up"),
    "help": (None, "`wgedge --help` lists the commands"),
    "version": ("info", "or `wgedge --version`"),
}
NEEDS_ROOT = ("up", "down", "reload")


def _edits(a, b):
    """Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`."""
    before, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], before[j - 2] + 1)
        before, prev = prev, cur
    return prev[-1]


def _near_command(word):
    """The command `word` is likely a typo of, or None."""
    low = word.lower()
    close = [(_edits(low, c), c) for c in COMMANDS
             if _edits(low, c) <= 1 or (len(low) >= 3 and c.startswith(low))]
    return min(close)[1] if close else None


def _ifname_problem(word, after_options):
    """None when `word` may name an interface to run, else why not (the rule at the top)."""
    from wgedge.io.tun import TunError, validate_ifname

    if word in COMMANDS and after_options:
        return ("'%s' is a command, not an interface name: options go after it "
                "(wgedge %s --help)" % (word, word))
    meant, hint = NOT_IFNAMES.get(word.lower(), (None, None))
    if word.lower() not in NOT_IFNAMES:
        meant = _near_command(word)
    if meant or hint:
        return "unknown command '%s'%s%s" % (
            word, "; did you mean '%s'?" % meant if meant else "",
            " (%s)" % hint if hint else "")
    if word.lower().endswith((".conf", ".uci")):
        return ("'%s' is a config file, not an interface name: `wgedge up %s` brings up its "
                "interfaces" % (word, word))
    try:
        validate_ifname(word)
    except TunError as exc:
        return str(exc)
    return None


def _usage_error(message):
    print("wgedge: %s" % message, file=sys.stderr)
    return 2


def _root_problem():
    """Why up/down/reload and the daemon cannot work for this process, or None: they create
    and delete links, addresses and routes (CAP_NET_ADMIN). Writing root's /var/run/wgedge
    without being root is caught where it fails (PermissionError)."""
    from wgedge.privileges import CAP_NET_ADMIN

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    has = int(line.split()[1], 16) >> CAP_NET_ADMIN & 1
                    return None if has else "needs root (CAP_NET_ADMIN)"
    except (OSError, ValueError, IndexError):
        pass
    return None if os.geteuid() == 0 else "needs root (CAP_NET_ADMIN)"


def _os_error_text(exc):
    where = " (%s)" % exc.filename if exc.filename else ""
    return "%s%s" % (exc.strerror or exc, where)


def run_command(name, argv):
    import argparse

    sub = argparse.ArgumentParser(prog="wgedge " + name, description=COMMANDS[name][1])
    _sub_arguments(name, sub)
    args = sub.parse_args(argv)
    problem = _root_problem() if name in NEEDS_ROOT else None
    if problem:
        print("wgedge %s: %s: run it as root" % (name, problem), file=sys.stderr)
        return 1
    try:
        return COMMANDS[name][0](args)
    except ValueError as exc:  # configuration the operator must fix, e.g. WGEDGE_CRYPTO
        print("wgedge: %s" % exc, file=sys.stderr)
    except PermissionError as exc:
        print("wgedge %s: needs root (CAP_NET_ADMIN): %s" % (name, _os_error_text(exc)),
              file=sys.stderr)
    except OSError as exc:
        print("wgedge %s: %s" % (name, _os_error_text(exc)), file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - never a traceback to the operator
        from wgedge.manage import ManageError

        if isinstance(exc, ManageError):
            print("wgedge %s: %s" % (name, exc), file=sys.stderr)
        else:
            print("wgedge %s: unexpected error, please report it: %s: %s"
                  % (name, type(exc).__name__, exc), file=sys.stderr)
    return 1


class _DaemonArgs:
    def __init__(self, foreground, verbose, log, ifname):
        self.foreground, self.verbose, self.log, self.ifname = foreground, verbose, log, ifname


def _plain_daemon_args(argv):
    """The daemon's arguments when they are spelled exactly as the watchdog, `up` and
    wg-quick spell them (-f, --foreground, -v, --verbose, --log FILE, one IFNAME), else None
    and argparse reads them (help, abbreviations, errors). argparse and what it imports
    (gettext, locale, shutil with bz2 and lzma) would stay in the daemon's memory for its
    whole life: 1 MB of RSS (x86, docs/performance.md)."""
    flags = {"-f": "foreground", "--foreground": "foreground", "-v": "verbose",
             "--verbose": "verbose"}
    got = {"foreground": False, "verbose": False}
    log = ifname = None
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in flags:
            got[flags[word]] = True
        elif word == "--log" and log is None and i + 1 < len(argv) \
                and not argv[i + 1].startswith("-"):
            log = argv[i + 1]
            i += 1
        elif not word.startswith("-") and ifname is None:
            ifname = word
        else:
            return None
        i += 1
    if ifname is None:
        return None
    return _DaemonArgs(got["foreground"], got["verbose"], log, ifname)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        return run_command(argv[0], argv[1:])
    if argv and not argv[0].startswith("-"):
        problem = _ifname_problem(argv[0], after_options=False)
        if problem:  # before argparse, which would complain about the arguments after it
            return _usage_error(problem)
    args = _plain_daemon_args(argv) or daemon_parser().parse_args(argv)
    problem = _ifname_problem(args.ifname, after_options=True)
    if problem:
        return _usage_error(problem)
    problem = _root_problem()
    if problem:
        print("wgedge: %s: %s: run it as root" % (args.ifname, problem), file=sys.stderr)
        return 1
    from wgedge import daemon

    foreground = args.foreground or os.environ.get("WG_PROCESS_FOREGROUND") == "1"
    # The background daemon runs from /: a relative --log is where the command was run.
    logfile = args.log and os.path.abspath(args.log)
    return daemon.run(args.ifname, foreground, args.verbose, logfile)
