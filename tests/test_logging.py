"""Where the daemon's log goes in the background: syslog when a daemon listens on /dev/log,
else a file; never nowhere (Python 3.11's SysLogHandler no longer fails without a listener,
it drops every message)."""

import logging
import socket

from wgedge import daemon


def _log_one(monkeypatch, tmp_path, message):
    monkeypatch.setattr(daemon, "SYSLOG_SOCKET", str(tmp_path / "log.sock"))
    monkeypatch.setattr(daemon, "FALLBACK_LOG", str(tmp_path / "wgedge-%s.log"))
    monkeypatch.delenv("WGEDGE_SYSLOG", raising=False)
    daemon.setup_logging("wgt0", logging.INFO, foreground=False, logfile=None)
    log = logging.getLogger("wgedge")
    try:
        log.info(message)
    finally:
        for handler in log.handlers:
            handler.close()
        log.handlers[:] = []


def test_without_a_syslog_daemon_the_log_goes_to_the_fallback_file(monkeypatch, tmp_path):
    _log_one(monkeypatch, tmp_path, "nobody listens")
    assert "wgt0: INFO: nobody listens" in (tmp_path / "wgedge-wgt0.log").read_text()


def test_with_a_syslog_daemon_the_log_goes_to_syslog(monkeypatch, tmp_path):
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        syslogd.bind(str(tmp_path / "log.sock"))
        syslogd.settimeout(5)
        _log_one(monkeypatch, tmp_path, "to syslog")
        record = syslogd.recv(4096)
    finally:
        syslogd.close()
    assert record.startswith(b"<30>wgedge[") and record.endswith(b": wgt0: to syslog\x00")
    assert not (tmp_path / "wgedge-wgt0.log").exists()
