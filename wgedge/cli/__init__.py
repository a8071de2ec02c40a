"""Command line: arguments and user-facing messages only (each command's body is in
commands.py; what it does to interfaces in wgedge/router/).

    wgedge [-f|--foreground] [-v] [--log FILE] IFNAME    run an interface (as wireguard-go)
    wgedge up [FILE] [--no-watchdog] [-v] [--log FILE]  bring up every interface in FILE
              [--install-default DEFAULT] [--console DEV]  first boot: a config, keys shown
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
from wgedge.cli.commands import COMMANDS


def _ifname_argument(text):
    """An IFNAME argument of a command: a name Linux takes (it also names files)."""
    import argparse

    from wgedge.io.tun import TunError, validate_ifname

    try:
        return validate_ifname(text)
    except TunError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sub_arguments(name, sub):
    from wgedge.config.schema import DEFAULT_PATH

    if name == "up":
        sub.add_argument("file", nargs="?", default=DEFAULT_PATH,
                         help="UCI file, or a wg-quick IFNAME.conf (default %s)" % DEFAULT_PATH)
    if name == "reload":
        sub.add_argument("target", nargs="?", metavar="FILE|IFNAME",
                         help="UCI or wg-quick file (default %s), or an interface `up` "
                         "brought up: reloaded from its file" % DEFAULT_PATH)
    if name == "up":
        sub.add_argument("--install-default", metavar="DEFAULT",
                         help="when FILE does not exist, install DEFAULT as FILE (mode 0600) "
                         "first: the first boot of a router image")
        sub.add_argument("--console", metavar="DEV",
                         help="write each interface's public key to DEV (e.g. /dev/console)")
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
    from wgedge.router.privileges import CAP_NET_ADMIN

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
        from wgedge.router.manage import ManageError

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
    from wgedge.router import daemon

    foreground = args.foreground or os.environ.get("WG_PROCESS_FOREGROUND") == "1"
    # The background daemon runs from /: a relative --log is where the command was run.
    logfile = args.log and os.path.abspath(args.log)
    return daemon.run(args.ifname, foreground, args.verbose, logfile)
