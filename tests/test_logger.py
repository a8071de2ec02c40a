"""wgedge/io/logger.py: the lines the standard `logging` package wrote with the daemon's formats
(the reference here), LOG_LEVEL's levels, and a log that never raises into its caller."""

import io
import logging
import time

import pytest

from wgedge.io import logger as L
from wgedge.router import daemon

CREATED_NS = 1764512135250000000  # .25 s: the same milliseconds as a float and as ns
MESSAGES = [("interface %s is up; control socket %s", ("wg0", "/var/run/wireguard/wg0.sock")),
            ("peer 2Qx: handshake completed \u00e9", ()),
            ("%d more like this suppressed in %d s: %s%s", (40, 60.0, "dropped", " [x]")),
            ("100%", ())]


def _theirs(fmt, level, msg, args, monkeypatch):
    """The line `logging` made of it, the daemon's old setup: a Formatter of `fmt` and a
    Filter that set record.ifname."""
    monkeypatch.setattr(time, "time", lambda: 1764512135.25)  # logging until 3.12
    monkeypatch.setattr(time, "time_ns", lambda: CREATED_NS)  # logging since 3.13
    record = logging.LogRecord("wgedge", level, __file__, 1, msg, args, None)
    monkeypatch.undo()
    record.ifname = "wg0"
    return logging.Formatter(fmt).format(record)


@pytest.mark.parametrize("fmt", [daemon.FILE_FORMAT, daemon.STDERR_FORMAT,
                                 daemon.SYSLOG_FORMAT])
@pytest.mark.parametrize("level", [L.DEBUG, L.INFO, L.WARNING, L.ERROR, L.CRITICAL, 25])
def test_each_destination_gets_the_line_logging_wrote(fmt, level, monkeypatch):
    for msg, args in MESSAGES:
        ours = L.Sink(fmt, "wg0").format(L.Record(level, L._message(msg, args), CREATED_NS))
        assert ours == _theirs(fmt, level, msg, args, monkeypatch)


def test_the_file_line_reads_as_documented(tmp_path):
    path = tmp_path / "wg0.log"
    path.write_text("an older line\n")
    log = L.Logger()
    log.configure(L.INFO, [L.FileSink(str(path), daemon.FILE_FORMAT, "wg0")])
    log.info("interface %s is up", "wg0")
    log.configure(L.INFO, [])  # closes the file
    older, line = path.read_text().splitlines()
    assert older == "an older line"  # appended
    stamp, rest = line[:23], line[23:]
    assert time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S") and stamp[19] == "," \
        and stamp[20:].isdigit()
    assert rest.startswith(" wgedge[") and rest.endswith("] wg0: INFO: interface wg0 is up")


@pytest.mark.parametrize("name, written", [
    ("debug", ["DEBUG", "INFO", "WARNING", "ERROR"]),
    ("verbose", ["DEBUG", "INFO", "WARNING", "ERROR"]),
    ("info", ["INFO", "WARNING", "ERROR"]),
    ("error", ["ERROR"]),
    ("silent", []),
])
def test_log_level_decides_what_is_written(name, written, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", name)
    stream = io.StringIO()
    log = L.Logger()
    log.configure(daemon.log_level(False), [L.StreamSink(stream, daemon.STDERR_FORMAT, "wg0")])
    for method in (log.debug, log.info, log.warning, log.error):
        method("a line")
    assert stream.getvalue() == "".join("%s: (wg0) a line\n" % w for w in written)
    assert [log.enabled(level) for level in (L.DEBUG, L.INFO, L.WARNING, L.ERROR)] == \
        [level in written for level in ("DEBUG", "INFO", "WARNING", "ERROR")]


def test_verbose_is_debug_and_a_wrong_log_level_is_refused(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "error")
    assert daemon.log_level(True) == L.DEBUG
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(ValueError, match="LOG_LEVEL must be one of"):
        daemon.log_level(False)


def test_before_a_destination_is_set_warnings_go_to_stderr_bare(capsys):
    """As `logging`'s last resort: the message alone, WARNING and above."""
    log = L.Logger()
    log.info("not this")
    log.warning("this %s", "one")
    log.error("and this")
    assert capsys.readouterr().err == "this one\nand this\n"


def test_a_message_whose_arguments_do_not_fit_is_written_without_them():
    stream = io.StringIO()
    log = L.Logger()
    log.configure(L.DEBUG, [L.StreamSink(stream, "%(message)s")])
    log.info("peer %s: %d", "private_key=secret")  # a bug: one argument short
    assert stream.getvalue() == "peer %s: %d [a log line whose arguments do not fit its " \
        "format]\n"


def test_a_destination_that_fails_counts_the_line_and_never_raises():
    stream = io.StringIO()
    sink = L.StreamSink(stream, "%(message)s")
    log = L.Logger()
    log.configure(L.DEBUG, [sink])
    stream.close()
    log.error("lost")
    assert sink.dropped == 1


def test_asctime_rows(monkeypatch):
    """(nanoseconds, the timestamp a file line starts with), in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        rows = [(0, "1970-01-01 00:00:00,000"),
                (CREATED_NS, "2025-11-30 14:15:35,250"),
                (CREATED_NS + 749999999, "2025-11-30 14:15:35,999"),  # truncated, not rounded
                (CREATED_NS + 750000000, "2025-11-30 14:15:36,000")]
        for i, (ns, want) in enumerate(rows, 1):
            assert L.asctime(ns) == want, "row %d" % i
    finally:
        monkeypatch.undo()
        time.tzset()
