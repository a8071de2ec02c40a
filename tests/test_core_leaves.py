"""Small leaf modules: rate limiter, TAI64N, inner packet headers, cookie checks."""

import random

from wgedge.core import consts as C
from wgedge.core import packet, tai64n
from wgedge.core.ratelimiter import RateLimiter


def test_ratelimiter_burst_then_rate():
    r = RateLimiter()
    now = 100.0
    assert [r.allow("a", now) for _ in range(C.RATELIMIT_BURST + 2)] == \
        [True] * C.RATELIMIT_BURST + [False, False]
    assert r.allow("b", now)  # sources are independent
    now += 1.0 / C.RATELIMIT_PACKETS_PER_SECOND
    assert r.allow("a", now) and not r.allow("a", now)
    # Over a long stretch the rate converges to PACKETS_PER_SECOND.
    allowed = sum(r.allow("a", now + i * 0.001) for i in range(10000))
    assert abs(allowed - 10 * C.RATELIMIT_PACKETS_PER_SECOND) <= C.RATELIMIT_BURST + 1


def test_ratelimiter_table_is_bounded_and_swept():
    r = RateLimiter(max_sources=100)
    now = 5.0
    assert all(r.allow(i, now) for i in range(100))
    assert not r.allow("new", now)  # full: refused
    assert r.allow("new", now + 2.0)  # idle entries swept
    assert len(r.table) <= 100
    assert RateLimiter.key_for(bytes(16)) == bytes(8)
    assert RateLimiter.key_for(bytes([1, 2, 3, 4])) == bytes([1, 2, 3, 4])


def test_tai64n_ordering_and_whitening():
    t1 = tai64n.timestamp(1700000000.0)
    assert len(t1) == 12 and t1[:8] == ((1 << 62) + 10 + 1700000000).to_bytes(8, "big")
    assert tai64n.timestamp(1700000000.010) == t1  # within one 2^24 ns step
    t2 = tai64n.timestamp(1700000000.02)
    assert tai64n.is_after(t2, t1) and not tai64n.is_after(t1, t2)
    assert not tai64n.is_after(t1, t1)
    assert int.from_bytes(t2[8:], "big") % (1 << 24) == 0


def test_inner_packet_lengths():
    v4 = bytes([0x45, 0, 0, 28]) + bytes(24)
    assert packet.inner_len(v4 + bytes(4)) == 28  # padding trimmed
    assert packet.inner_len(v4[:27]) == -1  # truncated
    assert packet.inner_len(bytes([0x44, 0, 0, 28]) + bytes(24)) == -1  # IHL < 5
    v6 = bytes([0x60, 0, 0, 0, 0, 8]) + bytes(34) + bytes(8)
    assert packet.inner_len(v6 + bytes(8)) == 48
    assert packet.inner_len(v6[:47]) == -1
    assert packet.inner_len(bytes([0x70]) + bytes(40)) == -1
    assert packet.source_address(v4) == bytes(4) and packet.destination_address(v6) == bytes(16)
    assert packet.source_address(b"\x50") is None


def test_both_backends_compare_macs_alike():
    from wgedge import crypto as backends

    fast, pure = backends.load("fast"), backends.load("pure")
    rnd = random.Random(5)
    for _ in range(300):
        a = bytes(rnd.randrange(256) for _ in range(rnd.choice((0, 1, 16, 32))))
        b = bytearray(a) if rnd.random() < 0.5 else bytearray(
            rnd.randrange(256) for _ in range(rnd.choice((0, 1, 16, 32))))
        if b and rnd.random() < 0.3:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        b = bytes(b)
        assert fast.equal(a, b) == pure.equal(a, b) == (a == b)
        assert fast.equal(memoryview(a), b) == pure.equal(memoryview(a), b) == (a == b)


def test_cookie_checker_mac2_states():
    """Under load only a mac2 made with this source's cookie counts; an all-zero mac2 (what
    a sender without a cookie sends, and what a flood sends) is the no-cookie state."""
    from wgedge import crypto as backends
    from wgedge.core import cookie as ck

    crypto = backends.load()
    checker = ck.CookieChecker(crypto)
    checker.set_static_public(bytes(range(32)))
    rng = random.Random(9).randbytes
    body = bytes(116)
    mac1 = crypto.mac(checker.mac1_key, body)
    src, now = ("192.0.2.7", 1234), 50.0

    def state(mac2):
        return checker.validate(body + mac1 + mac2, 116, src, True, now, rng)

    cookie = checker._cookie(src, now, rng)
    good = crypto.mac(cookie, body + mac1)
    assert state(bytes(16)) == ck.VALID_MAC_BUT_NO_COOKIE
    assert state(bytes(15) + b"\x01") == ck.VALID_MAC_BUT_NO_COOKIE
    assert state(good) == ck.VALID_MAC_WITH_COOKIE
    other = crypto.mac(checker._cookie(("192.0.2.8", 1234), now, rng), body + mac1)
    assert state(other) == ck.VALID_MAC_BUT_NO_COOKIE
    assert checker.validate(body + bytes(16) + good, 116, src, True, now,
                            rng) == ck.INVALID_MAC
