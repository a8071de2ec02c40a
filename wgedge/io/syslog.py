"""Log records to the local syslog daemon (/dev/log), as the interface daemon sends them.

What logging.handlers.SysLogHandler does for a local socket, in the same bytes
("<PRI>message\\0", PRI = facility * 8 + severity, RFC 3164 section 4.1.1), without importing
logging.handlers: that module brings pickle, queue and the network handlers with it, 0.8 MB
of the daemon's RSS (x86, docs/performance.md), for the one class the daemon uses.

Rules kept here:
- Sending never blocks the event loop: the socket is non-blocking, and a message the syslog
  daemon has no room for is dropped and counted (`dropped`), not waited for.
- A syslog daemon that restarts (a new /dev/log) is reconnected to on the next message.
- A datagram socket is preferred; a stream socket (some syslog daemons) gets the same bytes.
"""

import logging
import socket

LOG_DAEMON = 3  # facility (syslog.h)
# logging level -> syslog severity (syslog.h), as SysLogHandler maps the level names: any
# other level is sent as a warning.
SEVERITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
            logging.CRITICAL: 2}
OTHER_SEVERITY = 4


def severity(levelno):
    return SEVERITY.get(levelno, OTHER_SEVERITY)


class SyslogHandler(logging.Handler):
    def __init__(self, address, facility=LOG_DAEMON):
        logging.Handler.__init__(self)
        self.address = address
        self.facility = facility
        self.sock = None
        self.dropped = 0  # messages the syslog daemon had no room for, or could not take
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

    def emit(self, record):
        try:
            pri = self.facility * 8 + severity(record.levelno)
            data = ("<%d>%s\0" % (pri, self.format(record))).encode("utf-8")
        except Exception:  # noqa: BLE001 - logging's own convention for a broken record
            self.handleError(record)
            return
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
        logging.Handler.close(self)
