"""wgedge/watchdog.py pieces that need no root: what the log says about host names."""

import logging

from wgedge.watchdog import DNS_LOG_EVERY, HostLog

WARN, INFO, DEBUG = logging.WARNING, logging.INFO, logging.DEBUG


def levels(lines):
    return [level for level, _ in lines]


def test_host_log_rows():
    """(now, result) -> levels logged, in order: a numbered table of one host's history."""
    h = HostLog("site_b", "b.example.net")
    rows = [
        (0, None, [WARN]),            # 1: the first failure, at once
        (10, None, [DEBUG]),           # 2: retries within DNS_LOG_EVERY: debug only
        (DNS_LOG_EVERY - 1, None, [DEBUG]),
        (DNS_LOG_EVERY, None, [WARN]),  # 4: still failing: one warning with the count
        (DNS_LOG_EVERY + 10, None, [DEBUG]),
        (DNS_LOG_EVERY + 20, "10.0.0.2:51820", [INFO]),  # 6: recovery
        (DNS_LOG_EVERY + 30, "10.0.0.2:51820", [DEBUG]),  # 7: the same answer again
        (DNS_LOG_EVERY + 40, "10.0.0.3:51820", [INFO]),  # 8: a new address
        (DNS_LOG_EVERY + 50, None, [WARN]),  # 9: a new failure is logged at once
    ]
    for i, (now, result, want) in enumerate(rows, 1):
        assert levels(h.lines(result, now)) == want, "row %d" % i


def test_host_log_messages_name_peer_host_count_and_address():
    h = HostLog("site_b", "b.example.net")
    (_, first), = h.lines(None, 0)
    assert "peer site_b: b.example.net does not resolve" in first
    for t in range(1, 30):
        h.lines(None, t * 10)
    (_, still), = h.lines(None, DNS_LOG_EVERY)
    assert "still does not resolve (31 attempts in %d s)" % DNS_LOG_EVERY in still
    (_, again), = h.lines("10.0.0.2:51820", DNS_LOG_EVERY + 1)
    assert "resolves again after 31 failed attempts: 10.0.0.2:51820" in again
    (_, new), = h.lines("[fd00::2]:51820", DNS_LOG_EVERY + 2)
    assert new == "peer site_b: b.example.net resolves to [fd00::2]:51820"


def test_a_flood_of_failures_logs_few_warnings():
    """A host failing every second for a day: one warning per DNS_LOG_EVERY, no more."""
    h = HostLog("p", "h.example.net")
    warnings = sum(levels(h.lines(None, t)).count(WARN) for t in range(86400))
    assert warnings == 86400 // DNS_LOG_EVERY  # at 0, 300, ..., 86100 s
