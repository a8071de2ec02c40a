"""The handshake receive path: every datagram that is not transport data for the fast path
(kernel receive.c wg_receive_handshake_packet; wireguard-go RoutineHandshake).

    classify  -> a drop reason for anything malformed
    gate.admit -> ALLOW, SEND_COOKIE (a cookie reply goes back) or a drop reason
    initiation:   noise.consume_initiation -> peer.send_response (session as responder)
    response:     indices.handshake(receiver) -> noise.consume_response -> peer.begin_session
    cookie reply: the index's peer -> peer.cookie.consume_reply

Rules kept here:
- Only a message that authenticated (the Noise AEADs, or the cookie's) moves anything of a
  peer; a refused one is a counted drop (the gate may move its own load and rate-limit
  state). A cookie reply only stores the cookie: the retransmit timer sends the next
  initiation with mac2 (kernel).
- An authenticated initiation or response makes its source the peer's endpoint (paper 6.5),
  counts its bytes and fires the timers' any_authenticated_packet_received/_traversal events.
"""

from wgedge.core import consts as C
from wgedge.core import gate, wire


def receive(device, data, endpoint, now, out):
    """Handle one such datagram (bytes) from `endpoint`; -> the peer it authenticated for,
    or None."""
    mtype, reason = wire.classify(data)
    if mtype == C.MSG_DATA:  # only reached when too short for the fast path
        reason = C.DROP_BAD_LENGTH
    if reason is not None:
        out.drop(reason)
        return None
    verdict = device.gate.admit(data, mtype, endpoint, now)
    if verdict is not gate.ALLOW:
        if verdict is gate.SEND_COOKIE:
            out.udp.append((device.gate.cookie_reply(data, mtype, endpoint, now), endpoint))
            verdict = C.DROP_NEED_COOKIE
        out.drop(verdict)
        return None
    if mtype == C.MSG_INITIATION:
        peer = _initiation(device, data, endpoint, now, out)
    elif mtype == C.MSG_RESPONSE:
        peer = _response(device, data, endpoint, now, out)
    else:
        return _cookie_reply(device, data, now, out)
    if peer is not None:
        peer.endpoint = endpoint
        out.authenticated.append(endpoint)
        peer.rx_bytes += len(data)
        t = peer.timers
        t.any_authenticated_packet_received(now)
        t.any_authenticated_packet_traversal(now)
    return peer


def _initiation(device, data, endpoint, now, out):
    sender, eph, enc_static, enc_ts = wire.parse_initiation(data)
    peer, reason = device.noise.consume_initiation(sender, eph, enc_static, enc_ts,
                                                   device.peers.get, now)
    if peer is None:
        out.drop(reason)
        return None
    peer.endpoint = endpoint  # the response goes where the initiation came from
    peer.send_response(now, out)
    return peer


def _response(device, data, endpoint, now, out):
    sender, receiver, eph, enc_nothing = wire.parse_response(data)
    peer = device.indices.handshake(receiver)
    if peer is None:
        out.drop(C.DROP_UNKNOWN_INDEX)
        return None
    if not device.noise.consume_response(peer.handshake, sender, eph, enc_nothing):
        out.drop(C.DROP_BAD_HANDSHAKE)
        return None
    peer.endpoint = endpoint
    if peer.begin_session(now) is not None:
        peer.handshake_complete(now)
        peer.send_keepalive(now, out)  # confirms the session to the responder
    return peer


def _cookie_reply(device, data, now, out):
    receiver, nonce, encrypted = wire.parse_cookie_reply(data)
    peer = device.indices.handshake(receiver)
    if peer is None:
        kp = device.indices.keypair(receiver)
        peer = kp.peer if kp is not None else None
    if peer is None:
        out.drop(C.DROP_UNKNOWN_INDEX)
        return None
    if not peer.cookie.consume_reply(nonce, encrypted, now):
        out.drop(C.DROP_BAD_COOKIE)
        return None
    return peer
