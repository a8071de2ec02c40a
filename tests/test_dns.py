"""Endpoint host names, without root: the warnings of `check` (router/endpoints.py unresolved_warnings)
and what the watchdog's log says about each resolution (watchdog.HostLog). In this process
no name resolves and no query is sent (tests/conftest.py); the namespace tests of the same
behaviour are in tests/test_reload.py."""

from wgedge import cli
from wgedge.io import logger
from wgedge.router.watchdog import DNS_LOG_EVERY, HostLog

WARN, INFO, DEBUG = logger.WARNING, logger.INFO, logger.DEBUG


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


KEY_A = "YAnm0ICxcgyCZPXJXaRv1tNfqDA3o1UWgMBt+ky6nnY="
KEY_B = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="


def test_check_warns_about_a_host_that_does_not_resolve(tmp_path, capsys):
    uci = tmp_path / "wgedge"
    uci.write_text("config interface 'wg0'\n\toption proto 'wireguard'\n"
                   "\toption private_key '%s'\n\nconfig wireguard_wg0 'site_b'\n"
                   "\toption public_key '%s'\n\tlist allowed_ips '10.0.0.2/32'\n"
                   "\toption endpoint_host 'b.invalid'\n"
                   "\nconfig wireguard_wg0\n\toption public_key '%s'\n"
                   "\toption endpoint_host '10.0.0.3'\n\tlist allowed_ips '10.0.0.3/32'\n"
                   % (KEY_A, KEY_B, KEY_A.replace("Y", "Z", 1)))
    uci.chmod(0o600)
    assert cli.main(["check", str(uci)]) == 0  # a warning, not an error
    out = capsys.readouterr()
    assert out.err == ("warning: %s:5: option 'endpoint_host': peer site_b of wg0: host "
                       "'b.invalid' does not resolve now; the peer gets its endpoint once it "
                       "does (the watchdog retries)\n" % uci)  # the literal one: no warning
    assert "OK" in out.out

    conf = tmp_path / "wg1.conf"
    conf.write_text("[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\n"
                    "AllowedIPs = 10.0.0.2/32\nEndpoint = b.invalid:51821\n" % (KEY_A, KEY_B))
    conf.chmod(0o600)
    assert cli.main(["check", str(conf)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: %s:4: option 'Endpoint': peer at line 4 of wg1: host "
                          "'b.invalid' does not resolve now" % conf), err
