"""Log lines to the local syslog daemon (/dev/log), as the interface daemon sends them.

What logging.handlers.SysLogHandler does for a local socket, in the same bytes
("<PRI>message\\0", PRI = facility * 8 + severity, RFC 3164 section 4.1.1), as a sink of
the daemon's own logger (wgedge/io/logger.py): neither `logging` nor `logging.handlers`
(pickle, queue and the network handlers, 0.8 MB of the daemon's RSS on x86,
docs/performance.md) is imported for it.

Rules kept here:
- Sending never blocks the event loop: the socket is non-blocking, and a message the syslog
  daemon has no room for is dropped and counted (`dropped`), not waited for.
- A syslog daemon that restarts (a new /dev/log) is reconnected to on the next message.
- A datagram socket is preferred; a stream socket (some syslog daemons) gets the same bytes.
"""

import socket

from wgedge.io.logger import CRITICAL, DEBUG, ERROR, INFO, WARNING, Sink

LOG_DAEMON = 3  # facility (syslog.h)
# log level -> syslog severity (syslog.h), as SysLogHandler maps the level names: any other
# level is sent as a warning.
SEVERITY = {DEBUG: 7, INFO: 6, WARNING: 4, ERROR: 3, CRITICAL: 2}
OTHER_SEVERITY = 4


def severity(levelno):
    return SEVERITY.get(levelno, OTHER_SEVERITY)


class SyslogSink(Sink):
    def __init__(self, address, fmt, ifname="", facility=LOG_DAEMON):
        Sink.__init__(self, fmt, ifname)
        self.address = address
        self.facility = facility
        self.sock = None  # Sink.dropped: what the syslog daemon had no room for, or refused
        self._connect()

    def _connect(self):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
            try:
                sock.connect(self.address)
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            self.sock = sock
            return True
        return False

    def _send(self, data):
        sent = self.sock.send(data)
        if sent != len(data):  # a stream took part of it: start afresh, framing intact
            self.sock.close()
            self.sock = None
            raise BlockingIOError

    def write(self, levelno, line):
        data = ("<%d>%s\0" % (self.facility * 8 + severity(levelno), line)).encode(
            "utf-8", "backslashreplace")
        for _ in (0, 1):
            if self.sock is None and not self._connect():
                break
            try:
                self._send(data)
                return
            except BlockingIOError:
                break  # the syslog daemon is behind: drop, never wait in the event loop
            except OSError:
                if self.sock is not None:
                    self.sock.close()  # it went away (restarted?): connect again, once
                self.sock = None
        self.dropped += 1

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
