"""wgedge/io/syslog.py: the bytes logging.handlers.SysLogHandler sends, never a blocked loop."""

import logging
import logging.handlers
import signal
import socket

import pytest

from wgedge.io.syslog import SyslogHandler

FORMAT = "wgedge[%(process)d]: %(message)s"


def _server(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(5)
    return s


def _record(level, msg):
    return logging.LogRecord("wgedge", level, __file__, 1, msg, None, None)


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR,
                                   logging.CRITICAL, 25, 5])
def test_same_bytes_as_the_standard_library(tmp_path, level):
    server = _server(tmp_path / "log")
    ours = SyslogHandler(str(tmp_path / "log"))
    theirs = logging.handlers.SysLogHandler(str(tmp_path / "log"),
                                            logging.handlers.SysLogHandler.LOG_DAEMON)
    try:
        for h in (ours, theirs):
            h.setFormatter(logging.Formatter(FORMAT))
            h.emit(_record(level, "peer 2Qx: handshake completed \u00e9"))
        assert server.recv(4096) == server.recv(4096)
    finally:
        ours.close()
        theirs.close()
        server.close()


def _alarm(*_):
    raise AssertionError("emit blocked")


def test_a_full_syslog_queue_drops_instead_of_blocking(tmp_path):
    server = _server(tmp_path / "log")  # never reads
    handler = SyslogHandler(str(tmp_path / "log"))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)  # a blocking send would hang here; fail instead
    try:
        for i in range(5000):
            handler.emit(_record(logging.INFO, "message %d " % i + "x" * 200))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        handler.close()
        server.close()
    assert handler.dropped > 0


def test_a_restarted_syslog_daemon_gets_the_next_message(tmp_path):
    path = tmp_path / "log"
    first = _server(path)
    handler = SyslogHandler(str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        handler.emit(_record(logging.INFO, "one"))
        assert first.recv(4096) == b"<30>one\0"
        first.close()
        path.unlink()
        second = _server(path)
        try:
            handler.emit(_record(logging.WARNING, "two"))
            assert second.recv(4096) == b"<28>two\0"
        finally:
            second.close()
    finally:
        handler.close()


def test_no_syslog_daemon_counts_a_drop(tmp_path):
    handler = SyslogHandler(str(tmp_path / "nobody"))
    handler.emit(_record(logging.INFO, "lost"))
    assert handler.dropped == 1
    handler.close()
