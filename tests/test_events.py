"""Handshake events: what the core reports in Output.events (in memory, a hand-stepped clock),
and how io/events.py logs them: with the reason, rate-limited, with no key material."""

import binascii

from tests.memnet import Net, ipv4_packet
from wgedge.core import consts as C
from wgedge.core.device import Output
from wgedge.io import events as E
from wgedge.io.logger import DEBUG, WARNING


def failures(node):
    return [(key, reason, ep) for kind, key, reason, ep in node.events
            if kind == C.EVENT_HANDSHAKE_FAILED]


def kinds(node):
    return [e[0] for e in node.events]


def test_a_handshake_reports_sent_and_completed_on_both_sides():
    net = Net()
    a, b = net.pair()
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2")])
    net.pump()
    assert a.events[0] == (C.EVENT_INITIATION_SENT, b.public, None, b.endpoint)
    assert (C.EVENT_HANDSHAKE_COMPLETED, b.public, None, b.endpoint) in a.events
    # the responder's handshake completes with the first data message (key confirmation)
    assert (C.EVENT_HANDSHAKE_COMPLETED, a.public, None, a.endpoint) in b.events
    assert failures(a) == failures(b) == []


def test_an_unknown_peer_is_reported_with_its_key_and_source():
    net = Net()
    a, b = net.pair()
    c = net.node("carol", "192.0.2.3")
    c.peer_with(b, ["10.0.0.2/32"])  # carol knows bob; bob does not know carol
    net.send(c, [ipv4_packet("10.0.0.3", "10.0.0.2")])
    net.pump()
    assert failures(b) == [(c.public, C.DROP_UNKNOWN_PEER, c.endpoint)]
    assert b.device.drops == {C.DROP_UNKNOWN_PEER: 1}


def test_bad_mac_replayed_timestamp_and_wrong_psk_are_reported():
    net = Net()
    a, b = net.pair(psk_a=b"\x01" * 32)  # bob has no preshared key: the response fails
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2")])
    initiation = a.sent[0][0]
    net.pump()
    assert (b.public, C.DROP_BAD_HANDSHAKE, b.endpoint) in failures(a)
    b.events.clear()
    net.inject(b, initiation, a.endpoint)  # the same initiation again
    assert failures(b) == [(a.public, C.DROP_REPLAYED_TIMESTAMP, a.endpoint)]
    b.events.clear()
    forged = bytearray(initiation)
    forged[-20] ^= 1  # inside mac1
    net.inject(b, bytes(forged), ("198.51.100.7", 4000))
    assert failures(b) == [(None, C.DROP_BAD_MAC1, ("198.51.100.7", 4000))]


def test_cookie_required_is_reported_on_both_sides():
    net = Net()
    a, b = net.pair()
    b.device.gate.force_under_load = True
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2")])
    net.pump()
    assert failures(b) == [(None, C.DROP_NEED_COOKIE, a.endpoint)]
    assert failures(a) == [(b.public, C.REASON_COOKIE_REQUIRED, b.endpoint)]


def test_giving_up_is_reported_once():
    net = Net()
    a, b = net.pair()
    net.drop = lambda node, datagram, dst: True  # bob never hears anything
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2")])
    net.advance(C.REKEY_ATTEMPT_TIME + 30)
    assert failures(a) == [(b.public, C.REASON_NO_RESPONSE, b.endpoint)]
    retries = [e for e in a.events if e[0] == C.EVENT_INITIATION_SENT]
    assert retries[0][2] is None and all(e[2] == C.REASON_RETRY for e in retries[1:])
    assert len(retries) > C.MAX_TIMER_HANDSHAKES


def test_data_messages_make_no_events():
    net = Net()
    a, b = net.pair()
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2")])
    net.pump()
    a.events.clear()
    b.events.clear()
    for _ in range(3):
        net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2", b"x" * 100)] * 50)
    data = [d for d, _ in a.sent if d[0] == C.MSG_DATA][-1]
    broken = bytes(data[:-1]) + bytes([data[-1] ^ 1])
    out = b.device.receive_datagrams([(broken, a.endpoint)] * 20, net.now)
    net.pump()
    assert a.events == [] and b.events == [] and out.events == []
    assert out.dropped == [C.DROP_DECRYPT] * 20


def test_events_per_call_are_bounded():
    """A batch of initiations: only MAX_HANDSHAKES_PER_BATCH are looked at, so only they make
    events; the rest are drops."""
    net = Net()
    a, b = net.pair()
    c = net.node("carol", "192.0.2.3")
    peer = c.peer_with(b, ["10.0.0.2/32"])
    batch = []
    for _ in range(200):
        out = Output(c.device)
        peer.last_sent_handshake = None
        peer.send_initiation(net.now, out)
        batch.append((out.udp[0][0], c.endpoint))
    out = b.device.receive_datagrams(batch, net.now)
    assert len(out.events) == C.MAX_HANDSHAKES_PER_BATCH
    assert out.dropped.count(C.DROP_HANDSHAKE_OVERLOAD) == 200 - C.MAX_HANDSHAKES_PER_BATCH
    # and the cap holds whatever a caller does
    for _ in range(C.MAX_EVENTS_PER_CALL + 5):
        out.event(C.EVENT_HANDSHAKE_FAILED, None, C.DROP_BAD_MAC1, None)
    assert len(out.events) == C.MAX_EVENTS_PER_CALL and out.events_lost > 0


# --- io/events.py: the log ------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.t = 500.0

    def __call__(self):
        return self.t


def _unknown_peer_flood(net, b, count):
    c = net.node("carol", "192.0.2.3")
    peer = c.peer_with(b, ["10.0.0.2/32"])
    outs = []
    for _ in range(count):
        out = Output(c.device)
        peer.last_sent_handshake = None
        peer.send_initiation(net.now, out)
        outs.append(b.device.receive_datagrams([(out.udp[0][0], c.endpoint)], net.now))
    return c, outs


def test_unknown_peer_is_logged_with_reason_short_id_and_no_key(daemon_log):
    net = Net()
    a, b = net.pair()
    clock = Clock()
    elog = E.EventLog(b.device, clock=clock, wall=lambda: 1.7e9)
    c, outs = _unknown_peer_flood(net, b, 1)
    elog.handle(outs[0])
    lines = [message for _, message in daemon_log.records]
    assert len(lines) == 1 and daemon_log.records[0][0] == WARNING
    short = binascii.b2a_base64(c.public).decode()[:8]
    assert "192.0.2.3:51820" in lines[0] and short in lines[0] and "unknown-peer" in lines[0]
    full = binascii.b2a_base64(c.public).decode().strip()
    for secret in (full, c.public.hex(), binascii.b2a_base64(b.device.private_key).decode()[:8],
                   b.device.private_key.hex()):
        assert secret not in lines[0]


def test_a_flood_is_rate_limited_and_summarised(daemon_log):
    net = Net()
    a, b = net.pair()
    clock = Clock()
    elog = E.EventLog(b.device, clock=clock, wall=lambda: 1.7e9)
    _, outs = _unknown_peer_flood(net, b, 300)
    for out in outs:
        elog.handle(out)
    assert len(daemon_log.records) == E.BURST
    assert elog.next_deadline() == clock.t + E.INTERVAL
    elog.flush(clock.t + 1)
    assert len(daemon_log.records) == E.BURST  # the window is not over yet
    clock.t += E.INTERVAL
    elog.flush(clock.t)
    summary = daemon_log.records[-1][1]
    assert len(daemon_log.records) == E.BURST + 1
    assert summary.startswith("%d more like this suppressed in 60 s" % (300 - E.BURST))
    assert "unknown-peer" in summary and elog.next_deadline() is None


def test_data_drops_are_debug_lines_and_flood_overload_a_warning(daemon_log):
    net = Net()
    a, b = net.pair()
    elog = E.EventLog(b.device, clock=Clock(), wall=lambda: 1.7e9)
    out = Output(b.device)
    for _ in range(5):
        out.drop(C.DROP_DECRYPT)
    out.drop(C.DROP_HANDSHAKE_OVERLOAD)
    elog.handle(out)
    got = {message: level for level, message in daemon_log.records}
    assert got == {"dropped 5 datagram(s) or packet(s): decrypt-failed": DEBUG,
                   "dropped 1 datagram(s) or packet(s): handshake-overload": WARNING}


def test_status_lines_carry_drops_and_last_failures_of_configured_peers():
    net = Net()
    a, b = net.pair(psk_a=b"\x01" * 32)
    elog = E.EventLog(a.device, clock=Clock(), wall=lambda: 1.7e9 + 5)
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2")])
    net.pump()  # bob's response does not decrypt at alice (the preshared keys differ)
    out = Output(a.device)
    out.events = list(a.events)  # what alice's calls reported, as the loop would hand them
    elog.handle(out)
    text = "".join(elog.status_lines())
    assert "drop=bad-handshake:1\n" in text
    assert "public_key=%s\nhandshake_failures=1\nlast_failure_time=1700000005.000\n" \
           "last_failure_reason=bad-handshake\n" % b.public.hex() in text
    assert "last_failure_peer=%s\n" % E.short_id(b.public) in text
    a.device.remove_peer(a.device.peers[b.public])
    assert "public_key=" not in "".join(elog.status_lines())
