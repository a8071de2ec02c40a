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
- Every refusal after `classify` is also an event (Output.refused: reason, the public key
  when one is known, the source), except handshake-overload, a drop only: beyond the batch's
  bound nothing is looked at. A completed handshake and a cookie received are events too.
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
        if verdict == C.DROP_HANDSHAKE_OVERLOAD:
            out.drop(verdict)
        else:
            out.refused(verdict, None, endpoint)
        return None
    if mtype == C.MSG_INITIATION:
        peer = _initiation(device, data, endpoint, now, out)
    elif mtype == C.MSG_RESPONSE:
        peer = _response(device, data, endpoint, now, out)
    else:
        return _cookie_reply(device, data, endpoint, now, out)
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
    looked_up = []  # the static key the initiation carried, so a refusal can name it

    def find_peer(public_key):
        looked_up.append(public_key)
        return device.peers.get(public_key)

    peer, reason = device.noise.consume_initiation(sender, eph, enc_static, enc_ts, find_peer,
                                                   now)
    if peer is None:
        out.refused(reason, looked_up[0] if looked_up else None, endpoint)
        return None
    peer.endpoint = endpoint  # the response goes where the initiation came from
    peer.send_response(now, out)
    return peer


def _response(device, data, endpoint, now, out):
    sender, receiver, eph, enc_nothing = wire.parse_response(data)
    peer = device.indices.handshake(receiver)
    if peer is None:
        out.refused(C.DROP_UNKNOWN_INDEX, None, endpoint)
        return None
    if not device.noise.consume_response(peer.handshake, sender, eph, enc_nothing):
        out.refused(C.DROP_BAD_HANDSHAKE, peer.public_key, endpoint)
        return None
    peer.endpoint = endpoint
    if peer.begin_session(now) is not None:
        peer.handshake_complete(now)
        out.event(C.EVENT_HANDSHAKE_COMPLETED, peer.public_key, None, endpoint)
        peer.send_keepalive(now, out)  # confirms the session to the responder
    return peer


def _cookie_reply(device, data, endpoint, now, out):
    receiver, nonce, encrypted = wire.parse_cookie_reply(data)
    peer = device.indices.handshake(receiver)
    if peer is None:
        kp = device.indices.keypair(receiver)
        peer = kp.peer if kp is not None else None
    if peer is None:
        out.refused(C.DROP_UNKNOWN_INDEX, None, endpoint)
        return None
    if not peer.cookie.consume_reply(nonce, encrypted, now):
        out.refused(C.DROP_BAD_COOKIE, peer.public_key, endpoint)
        return None
    out.event(C.EVENT_HANDSHAKE_FAILED, peer.public_key, C.REASON_COOKIE_REQUIRED, endpoint)
    return peer
