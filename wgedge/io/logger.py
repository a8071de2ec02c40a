"""The log of the interface daemon and its watchdog, without the standard `logging` package.

`logging` and what it imports (traceback with linecache and tokenize, threading, weakref,
string) would stay in the daemon's memory for its whole life: about 1 MB of its RSS in the
arm64 guest (docs/performance.md, "Memory"). The daemon uses a small part of it: one logger,
a level, and one destination chosen at start-up (wgedge/router/daemon.py setup_logging), each
with a fixed line format. This module is that part, and writes the lines `logging` wrote:

    stderr (-f)                  LEVEL: (IFNAME) message
    a file (--log, or the        2026-11-30 15:15:35,123 wgedge[PID] IFNAME: LEVEL: message
      fallback without syslog)
    syslog (/dev/log)            <PRI>wgedge[PID]: IFNAME: message NUL  (wgedge/io/syslog.py)

Rules kept here:
- Levels are `logging`'s numbers and names (DEBUG 10 to CRITICAL 50), so LOG_LEVEL and the
  levels tests look for mean what they meant. A line below the logger's level costs one
  comparison; its message is formatted only when it is written.
- Until a destination is set (`log.sinks` empty), WARNING and above go to stderr as the bare
  message, as `logging`'s last resort wrote them; lower levels go nowhere.
- Writing never raises into the caller (the event loop, the watchdog): a line its
  destination cannot take is counted in that sink's `dropped`. A message whose arguments do
  not fit its format (a bug) is written as the format alone with a note, never with the
  arguments, which might hold a key.
- Each line is flushed as it is written, so a crash loses none. One process, one thread.
"""

import os
import sys
import time

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
LEVEL_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR",
               CRITICAL: "CRITICAL"}


def level_name(levelno):
    """logging.getLevelName for a number: 'INFO', or 'Level 25' for a level without a name."""
    return LEVEL_NAMES.get(levelno) or "Level %s" % levelno


def asctime(created_ns):
    """`logging`'s default %(asctime)s of a time in nanoseconds: local time, comma,
    milliseconds (truncated, as logging does since Python 3.13, which reads time_ns too)."""
    seconds, ns = divmod(created_ns, 1000000000)
    return "%s,%03d" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)),
                        ns // 1000000)


def _message(msg, args):
    if not args:
        return str(msg)
    try:
        return str(msg) % args
    except (TypeError, ValueError, KeyError):
        return "%s [a log line whose arguments do not fit its format]" % msg


class Record:
    """One line to write: its level, its message (formatted) and when it was made
    (time.time_ns())."""

    __slots__ = ("levelno", "message", "created")

    def __init__(self, levelno, message, created):
        self.levelno, self.message, self.created = levelno, message, created

    @property
    def levelname(self):
        return level_name(self.levelno)


class Sink:
    """Lines of one format to one destination. `fmt` is a %-format over the fields `logging`
    named the same way: asctime, process, ifname, levelname, message. A subclass writes
    the line (`write`); errors it raises count as `dropped`."""

    def __init__(self, fmt, ifname=""):
        self.fmt = fmt
        self.ifname = ifname
        self.dropped = 0
        self._asctime = "%(asctime)" in fmt

    def format(self, record):
        fields = {"message": record.message, "levelname": record.levelname,
                  "ifname": self.ifname, "process": os.getpid()}
        if self._asctime:
            fields["asctime"] = asctime(record.created)
        return self.fmt % fields

    def emit(self, record):
        try:
            self.write(record.levelno, self.format(record))
        except (OSError, ValueError):  # a full disk, a closed stream: never the caller's
            self.dropped += 1

    def write(self, levelno, line):
        raise NotImplementedError

    def close(self):
        pass


class StreamSink(Sink):
    """To an open text stream (stderr in the foreground)."""

    def __init__(self, stream, fmt, ifname=""):
        Sink.__init__(self, fmt, ifname)
        self.stream = stream

    def write(self, levelno, line):
        self.stream.write(line + "\n")
        self.stream.flush()


class FileSink(StreamSink):
    """Appended to a file, opened once (as logging.FileHandler: a file moved away keeps
    getting the lines until the daemon restarts)."""

    def __init__(self, path, fmt, ifname=""):
        StreamSink.__init__(self, open(path, "a", encoding="utf-8", errors="backslashreplace"),
                            fmt, ifname)

    def close(self):
        self.stream.close()


class Logger:
    """The process's log: `level` and `sinks` are set once, at start-up."""

    def __init__(self):
        self.level = WARNING
        self.sinks = []

    def enabled(self, level):
        return level >= self.level

    def log(self, level, msg, *args):
        if level < self.level:
            return
        record = Record(level, _message(msg, args), time.time_ns())
        if not self.sinks:
            if level >= WARNING:
                try:
                    sys.stderr.write(record.message + "\n")
                    sys.stderr.flush()
                except (OSError, ValueError, AttributeError):  # no stderr at all
                    pass
            return
        for sink in self.sinks:
            sink.emit(record)

    def debug(self, msg, *args):
        self.log(DEBUG, msg, *args)

    def info(self, msg, *args):
        self.log(INFO, msg, *args)

    def warning(self, msg, *args):
        self.log(WARNING, msg, *args)

    def error(self, msg, *args):
        self.log(ERROR, msg, *args)

    def configure(self, level, sinks):
        """Start writing to `sinks` from `level` on; the sinks written to before are closed."""
        for sink in self.sinks:
            if sink not in sinks:
                sink.close()
        self.level = level
        self.sinks = list(sinks)


log = Logger()
