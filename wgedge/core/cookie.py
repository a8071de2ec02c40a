"""MAC1/MAC2 and cookie replies: WireGuard's DoS defence (paper sections 5.3 and 5.4.7).

Rules kept here:
- Every handshake message carries mac1 = MAC(HASH(LABEL_MAC1 || receiver's static public),
  message up to mac1). A message with a bad mac1 is dropped before any DH is computed.
- Under load the responder also wants mac2 = MAC(cookie, message up to mac2), where
  cookie = MAC(secret, source address || port) and the secret rotates every 120 s. A sender
  without one gets a cookie reply (XChaCha20-Poly1305 under HASH(LABEL_COOKIE || responder's
  static public), with the message's mac1 as associated data) instead of an answer.
- `CookieChecker.validate` answers one of three states (bad mac1, valid mac1 without a
  valid cookie, valid with one); what to do with them, under load or not, is decided in one
  place: the handshake gate (gate.py).
- An initiator stores a received cookie for COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY
  and accepts a cookie reply only for the last mac1 it sent, once.
"""

from wgedge.core import consts as C
from wgedge.core import wire

INVALID_MAC = 0
VALID_MAC_BUT_NO_COOKIE = 1
VALID_MAC_WITH_COOKIE = 2

_ZERO_MAC = bytes(C.MAC_LEN)


def source_bytes(endpoint):
    """The bytes a cookie is bound to: the sender's address and port (paper 5.4.7)."""
    return ("%s|%d" % (endpoint[0], endpoint[1])).encode()


class CookieChecker:
    """Responder side, one per device: checks macs and makes cookie replies."""

    def __init__(self, crypto):
        self.crypto = crypto
        self.mac1_key = None
        self.cookie_key = None
        self.secret = None
        self.secret_birth = None

    def set_static_public(self, public):
        if public is None:
            self.mac1_key = self.cookie_key = None
            return
        self.mac1_key = self.crypto.hash(C.LABEL_MAC1 + public)
        self.cookie_key = self.crypto.hash(C.LABEL_COOKIE + public)

    def _cookie(self, endpoint, now, rng):
        if self.secret is None or now - self.secret_birth >= C.COOKIE_SECRET_MAX_AGE:
            self.secret = rng(32)
            self.secret_birth = now
        return self.crypto.mac(self.secret, source_bytes(endpoint))

    def validate(self, msg, mac1_offset, endpoint, check_cookie, now, rng):
        """One of the three states; mac2 is looked at only when `check_cookie` (under load)."""
        if self.mac1_key is None:
            return INVALID_MAC
        mac = self.crypto.mac
        mac2_offset = mac1_offset + C.MAC_LEN
        equal = self.crypto.equal
        if not equal(mac(self.mac1_key, msg[:mac1_offset]), msg[mac1_offset:mac2_offset]):
            return INVALID_MAC
        if not check_cookie:
            return VALID_MAC_BUT_NO_COOKIE
        mac2 = msg[mac2_offset:mac2_offset + C.MAC_LEN]
        if mac2 == _ZERO_MAC:
            # The sender holds no cookie (what a flood sends): whether mac2 is zero is the
            # sender's own knowledge, so skipping the two hashes below reveals nothing.
            return VALID_MAC_BUT_NO_COOKIE
        cookie = self._cookie(endpoint, now, rng)
        if not equal(mac(cookie, msg[:mac2_offset]), mac2):
            return VALID_MAC_BUT_NO_COOKIE
        return VALID_MAC_WITH_COOKIE

    def make_reply(self, msg, mac1_offset, sender_index, endpoint, now, rng):
        """The 64-byte cookie reply answering handshake message `msg` from `endpoint`."""
        cookie = self._cookie(endpoint, now, rng)
        nonce = rng(C.COOKIE_NONCE_LEN)
        mac1 = bytes(msg[mac1_offset:mac1_offset + C.MAC_LEN])
        encrypted = self.crypto.xaead_encrypt(self.cookie_key, nonce, cookie, mac1)
        return wire.pack_cookie_reply(sender_index, nonce, encrypted)


class CookieState:
    """Initiator side, one per peer: adds macs to our messages, keeps the peer's cookie."""

    def __init__(self, crypto, remote_static):
        self.crypto = crypto
        self.mac1_key = crypto.hash(C.LABEL_MAC1 + remote_static)
        self.cookie_key = crypto.hash(C.LABEL_COOKIE + remote_static)
        self.cookie = None
        self.cookie_birth = None
        self.last_mac1 = None
        self.have_sent_mac1 = False

    def add_macs(self, msg, mac1_offset, now):
        """Fill mac1 and (if we hold a fresh cookie) mac2 of bytearray `msg` in place."""
        mac = self.crypto.mac
        mac1 = mac(self.mac1_key, msg[:mac1_offset])
        msg[mac1_offset:mac1_offset + C.MAC_LEN] = mac1
        self.last_mac1 = mac1
        self.have_sent_mac1 = True
        mac2_offset = mac1_offset + C.MAC_LEN
        if self.cookie is not None and (
            now - self.cookie_birth < C.COOKIE_SECRET_MAX_AGE - C.COOKIE_SECRET_LATENCY
        ):
            msg[mac2_offset:mac2_offset + C.MAC_LEN] = mac(self.cookie, msg[:mac2_offset])
        else:
            msg[mac2_offset:mac2_offset + C.MAC_LEN] = _ZERO_MAC
        return msg

    def consume_reply(self, nonce, encrypted_cookie, now):
        """Store the cookie from a reply to our last message; False if it is not for us."""
        if not self.have_sent_mac1:
            return False
        try:
            cookie = self.crypto.xaead_decrypt(self.cookie_key, nonce, encrypted_cookie,
                                               self.last_mac1)
        except self.crypto.AuthError:
            return False
        self.cookie = cookie
        self.cookie_birth = now
        self.have_sent_mac1 = False
        return True
