"""Fixtures shared by several test files (keep each one small and documented)."""

import os
import sys

import pytest

from tests import mpy_helper


def pytest_configure(config):
    """As root, enter a private mount namespace now, while pytest has one thread (unshare
    needs that): every `Namespaces` then mounts its own run directories (tests/netns.py)."""
    if os.geteuid() == 0 and sys.platform.startswith("linux"):
        from tests.netns import private_mounts

        private_mounts()


@pytest.fixture(autouse=True)
def no_dns_queries(monkeypatch):
    """In this process a host name (not an IP address, not localhost) never resolves, and
    no query leaves the machine: `wgedge check` and `up` look up endpoint host names, and
    tests send no traffic outside the namespaces they make. Commands a test runs inside its
    namespaces resolve there (through the namespace's own /etc/netns files)."""
    import socket

    real = socket.getaddrinfo

    def numeric_only(host, port, family=0, type=0, proto=0, flags=0):
        if host in (None, "localhost"):
            return real(host, port, family, type, proto, flags)
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)


@pytest.fixture(scope="session")
def micropython():
    """`run_micropython(script_text, timeout=...) -> stdout` (see tests/mpy_helper.py).

    A missing node or MicroPython package fails the test: the subset promise is checked on
    every run, CI included. WGEDGE_SKIP_MICROPYTHON=1 turns that into a skip, for a
    developer who knowingly runs without it.
    """
    problem = mpy_helper.micropython_problem()
    if problem:
        if os.environ.get("WGEDGE_SKIP_MICROPYTHON") == "1":
            pytest.skip(problem)
        pytest.fail(problem + " (or set WGEDGE_SKIP_MICROPYTHON=1 to skip knowingly)")
    return mpy_helper.run_micropython


@pytest.fixture
def nets():
    """Throwaway network namespaces (tests/netns.py), always removed, even on failure, and
    private run directories (/var/run/wireguard, /var/run/wgedge) while they exist."""
    from tests.netns import Namespaces

    if os.geteuid() != 0:
        pytest.fail("namespace tests need root (CI runs as root)")
    n = Namespaces()
    try:
        yield n
    finally:
        n.cleanup()


@pytest.fixture
def run():
    """Private /var/run/wgedge and /var/run/wireguard for the commands a test runs through it
    (tests/private_run.py), removed afterwards."""
    from tests.private_run import PrivateRun

    r = PrivateRun()
    try:
        yield r
    finally:
        r.close()


# The QEMU image test boots emulated ARM guests (minutes): only `make qemu-test` runs it, by
# setting WGEDGE_QEMU_ARCHES. It is not part of `make test`.
collect_ignore = [] if os.environ.get("WGEDGE_QEMU_ARCHES") else ["qemu"]


@pytest.fixture
def udp():
    """A wgedge.io.udp.Udp on a free port, closed after the test."""
    from wgedge.io.udp import Udp

    u = Udp(0)
    try:
        yield u
    finally:
        u.close()


@pytest.fixture
def daemon_log():
    """What the daemon's logger (wgedge/io/logger.py) writes during the test, from DEBUG up:
    `.records`, [(level, message)], and `.text`, every line as "LEVEL: message". The logger's
    level and sinks are put back afterwards."""
    from wgedge.io.logger import DEBUG, Sink, log

    class Recorder(Sink):
        def __init__(self):
            Sink.__init__(self, "%(levelname)s: %(message)s")
            self.records, self.lines = [], []

        def emit(self, record):
            self.records.append((record.levelno, record.message))
            Sink.emit(self, record)

        def write(self, levelno, line):
            self.lines.append(line)

        @property
        def text(self):
            return "".join(line + "\n" for line in self.lines)

    saved = log.level, log.sinks
    recorder = Recorder()
    log.level, log.sinks = DEBUG, [recorder]
    try:
        yield recorder
    finally:
        log.level, log.sinks = saved
