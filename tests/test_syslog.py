"""wgedge/io/syslog.py: the bytes logging.handlers.SysLogHandler sends (the reference here; the
daemon no longer imports it), never a blocked loop."""

import logging
import logging.handlers
import signal
import socket
import time

import pytest

from wgedge.io.logger import CRITICAL, DEBUG, ERROR, INFO, WARNING, Record
from wgedge.io.syslog import SyslogSink
from wgedge.router.daemon import SYSLOG_FORMAT as FORMAT


def _server(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(5)
    return s


def _record(level, msg):
    return Record(level, msg, time.time_ns())


@pytest.mark.parametrize("level", [DEBUG, INFO, WARNING, ERROR, CRITICAL, 25, 5])
def test_same_bytes_as_the_standard_library(tmp_path, level):
    server = _server(tmp_path / "log")
    ours = SyslogSink(str(tmp_path / "log"), FORMAT, "wg0")
    theirs = logging.handlers.SysLogHandler(str(tmp_path / "log"),
                                            logging.handlers.SysLogHandler.LOG_DAEMON)
    theirs.setFormatter(logging.Formatter(FORMAT))
    message = "peer 2Qx: handshake completed \u00e9"
    record = logging.LogRecord("wgedge", level, __file__, 1, message, None, None)
    record.ifname = "wg0"  # what the daemon's logging.Filter added
    try:
        ours.emit(_record(level, message))
        theirs.emit(record)
        got = server.recv(4096)
        assert got == server.recv(4096)
        assert b": wg0: peer 2Qx" in got
    finally:
        ours.close()
        theirs.close()
        server.close()


def _alarm(*_):
    raise AssertionError("emit blocked")


def test_a_full_syslog_queue_drops_instead_of_blocking(tmp_path):
    server = _server(tmp_path / "log")  # never reads
    handler = SyslogSink(str(tmp_path / "log"), FORMAT)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)  # a blocking send would hang here; fail instead
    try:
        for i in range(5000):
            handler.emit(_record(INFO, "message %d " % i + "x" * 200))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        handler.close()
        server.close()
    assert handler.dropped > 0


def test_a_restarted_syslog_daemon_gets_the_next_message(tmp_path):
    path = tmp_path / "log"
    first = _server(path)
    handler = SyslogSink(str(path), "%(message)s")
    try:
        handler.emit(_record(INFO, "one"))
        assert first.recv(4096) == b"<30>one\0"
        first.close()
        path.unlink()
        second = _server(path)
        try:
            handler.emit(_record(WARNING, "two"))
            assert second.recv(4096) == b"<28>two\0"
        finally:
            second.close()
    finally:
        handler.close()


def test_no_syslog_daemon_counts_a_drop(tmp_path):
    handler = SyslogSink(str(tmp_path / "nobody"), FORMAT)
    handler.emit(_record(INFO, "lost"))
    assert handler.dropped == 1
    handler.close()
