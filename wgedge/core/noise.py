"""Noise_IKpsk2 as WireGuard uses it (paper section 5.4), one handshake state per peer.

Rules kept here:
- A handshake is in one of these states, each holding only the fields valid in it:

      None (zeroed) --create_initiation--> InitiationSent --consume_response--> Finished
      None or any   --consume_initiation--> InitiationConsumed --create_response--> Finished
      Finished --derive_keys--> None, and the transport keys go to a new keypair

  An initiation that authenticates replaces whatever state the peer's handshake was in (both
  sides initiated at once: the kernel does the same). Any state can be cleared to None.
- Consuming a message works on local values and stores a new state only when every check
  passed: a forged, replayed or flooding message leaves the handshake exactly as it was.
- On a peer's misbehaviour functions return None, False or (None, DROP_* reason); they
  raise only on misuse.
- No clock, no randomness of its own: `now` (monotonic), the TAI64N timestamp and ephemeral
  private keys are passed in.
- DH(our static, their static) is a per-peer cache, computed at the first handshake message
  that needs it (`static_static`), not when the peer is added: adding 10k peers costs no
  X25519 at all, and the handshake path, which bounds its work per wake-up, pays one X25519
  once per peer. Filling the cache is no state change (its value follows from the two keys);
  `forget_static_static` empties it when our key changes.
"""

from wgedge.core import consts as C
from wgedge.core import tai64n

ZERO_KEY = bytes(32)
ZERO_NONCE = bytes(12)
_ONE = b"\x01"
_TWO = b"\x02"
_THREE = b"\x03"
# Handshake.precomputed_static_static before it is needed: distinct from None, which means
# that DH gave all zeros (the peer's key is a low-order point: no handshake is possible).
NOT_YET = "not computed yet"


def clamp(private):
    """RFC 7748 clamping, as `wg genkey` applies it."""
    k = bytearray(private)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


class InitiationSent:
    """We sent an initiation (paper 5.4.2) and wait for its response."""

    __slots__ = ("local_index", "hash", "chaining_key", "ephemeral_private")

    def __init__(self, local_index, hash, chaining_key, ephemeral_private):
        self.local_index = local_index
        self.hash = hash
        self.chaining_key = chaining_key
        self.ephemeral_private = ephemeral_private  # as the backend's private_key() prepared it


class InitiationConsumed:
    """We accepted the peer's initiation and have not answered yet."""

    __slots__ = ("remote_index", "hash", "chaining_key", "remote_ephemeral")

    def __init__(self, remote_index, hash, chaining_key, remote_ephemeral):
        self.remote_index = remote_index
        self.hash = hash
        self.chaining_key = chaining_key
        self.remote_ephemeral = remote_ephemeral


class Finished:
    """Both messages exchanged (we sent or consumed the response): keys can be derived."""

    __slots__ = ("i_am_initiator", "local_index", "remote_index", "chaining_key")

    def __init__(self, i_am_initiator, local_index, remote_index, chaining_key):
        self.i_am_initiator = i_am_initiator
        self.local_index = local_index
        self.remote_index = remote_index
        self.chaining_key = chaining_key


class Handshake:
    """Per-peer handshake: the peer's static identity as the handshake needs it, the replay
    and flood state of its initiations, and `state` (None when zeroed)."""

    def __init__(self, remote_static, preshared_key=None):
        self.remote_static = remote_static
        self.preshared_key = preshared_key or ZERO_KEY
        # DH(our static, their static): NOT_YET until a handshake needs it, None if invalid
        self.precomputed_static_static = NOT_YET
        self.latest_timestamp = bytes(C.TIMESTAMP_LEN)
        self.last_initiation_consumption = None
        self.state = None

    def clear(self):
        """Forget everything ephemeral (the timestamp and flood state survive, as in the kernel)."""
        self.state = None


class Noise:
    """Device-wide handshake context: our static identity and the derived constants."""

    def __init__(self, crypto):
        self.crypto = crypto
        h = crypto.hash
        self.initial_chaining_key = h(C.CONSTRUCTION)
        self.initial_hash = h(self.initial_chaining_key + C.IDENTIFIER)
        self.static_private = None
        self.static_key = None  # the backend's prepared form of static_private
        self.static_public = None
        self.responder_hash = None  # HASH(initial_hash || our static public)

    def set_static_private(self, private):
        if private is None:
            self.static_private = self.static_key = self.static_public = None
            self.responder_hash = None
            return
        self.static_private = clamp(private)
        self.static_key = self.crypto.private_key(self.static_private)
        self.static_public = self.crypto.x25519_public(self.static_key)
        self.responder_hash = self.crypto.hash(self.initial_hash + self.static_public)

    def forget_static_static(self, hs):
        """Empty the peer's DH(our static, their static) cache (our key changed)."""
        hs.precomputed_static_static = NOT_YET

    def static_static(self, hs):
        """DH(our static, their static), computed on first need and kept; None when we have
        no private key or the result is all zeros (an invalid peer key)."""
        ss = hs.precomputed_static_static
        if ss is NOT_YET:
            if self.static_private is None:
                return None  # not kept: a key set later empties the cache anyway
            ss = hs.precomputed_static_static = self.crypto.x25519(self.static_key,
                                                                   hs.remote_static)
        return ss

    # --- KDF (paper 5.4: HKDF with HMAC-BLAKE2s) ------------------------------------------
    def kdf1(self, key, data):
        hmac = self.crypto.hmac
        return hmac(hmac(key, data), _ONE)

    def kdf2(self, key, data):
        hmac = self.crypto.hmac
        prk = hmac(key, data)
        t1 = hmac(prk, _ONE)
        return t1, hmac(prk, t1 + _TWO)

    def kdf3(self, key, data):
        hmac = self.crypto.hmac
        prk = hmac(key, data)
        t1 = hmac(prk, _ONE)
        t2 = hmac(prk, t1 + _TWO)
        return t1, t2, hmac(prk, t2 + _THREE)

    def _seal(self, key, plaintext, ad):
        return self.crypto.aead(key).encrypt(ZERO_NONCE, plaintext, ad)

    def _open(self, key, ciphertext, ad):
        try:
            return self.crypto.aead(key).decrypt(ZERO_NONCE, ciphertext, ad)
        except self.crypto.AuthError:
            return None

    # --- Initiator: first message (paper 5.4.2) -------------------------------------------
    def create_initiation(self, hs, local_index, ephemeral_private, timestamp):
        """Fill `hs` for a new initiation; return its fields, or None if DH is impossible."""
        static_static = self.static_static(hs)
        if static_static is None:
            return None
        crypto = self.crypto
        h = crypto.hash(self.initial_hash + hs.remote_static)
        ephemeral = crypto.private_key(ephemeral_private)  # prepared once, used two or three times
        eph_pub = crypto.x25519_public(ephemeral)
        h = crypto.hash(h + eph_pub)
        ck = self.kdf1(self.initial_chaining_key, eph_pub)
        dh = crypto.x25519(ephemeral, hs.remote_static)
        if dh is None:
            return None
        ck, key = self.kdf2(ck, dh)
        enc_static = self._seal(key, self.static_public, h)
        h = crypto.hash(h + enc_static)
        ck, key = self.kdf2(ck, static_static)
        enc_ts = self._seal(key, timestamp, h)
        h = crypto.hash(h + enc_ts)
        hs.state = InitiationSent(local_index, h, ck, ephemeral)
        return local_index, eph_pub, enc_static, enc_ts

    # --- Responder: consume the first message ---------------------------------------------
    def consume_initiation(self, sender_index, ephemeral, enc_static, enc_timestamp, find_peer,
                           now):
        """-> (peer, None) with the peer's handshake now InitiationConsumed, or (None, reason)
        with nothing changed. `find_peer(static_public)` maps a decrypted static key to the
        peer (or None)."""
        if self.static_private is None:
            return None, C.DROP_NO_PRIVATE_KEY
        crypto = self.crypto
        h = crypto.hash(self.responder_hash + ephemeral)
        ck = self.kdf1(self.initial_chaining_key, ephemeral)
        dh = crypto.x25519(self.static_key, ephemeral)
        if dh is None:
            return None, C.DROP_BAD_HANDSHAKE
        ck, key = self.kdf2(ck, dh)
        static = self._open(key, enc_static, h)
        if static is None:
            return None, C.DROP_BAD_HANDSHAKE
        h = crypto.hash(h + enc_static)
        peer = find_peer(static)
        if peer is None:
            return None, C.DROP_UNKNOWN_PEER
        hs = peer.handshake
        static_static = self.static_static(hs)
        if static_static is None:
            return None, C.DROP_BAD_HANDSHAKE
        ck, key = self.kdf2(ck, static_static)
        timestamp = self._open(key, enc_timestamp, h)
        if timestamp is None:
            return None, C.DROP_BAD_HANDSHAKE
        h = crypto.hash(h + enc_timestamp)
        # Replay: the timestamp must be newer than any accepted before (paper 5.1). Flood: at
        # most INITIATIONS_PER_SECOND accepted per peer, whatever their timestamps.
        if not tai64n.is_after(timestamp, hs.latest_timestamp):
            return None, C.DROP_REPLAYED_TIMESTAMP
        last = hs.last_initiation_consumption
        if last is not None and now - last < 1.0 / C.INITIATIONS_PER_SECOND:
            return None, C.DROP_HANDSHAKE_FLOOD
        hs.state = InitiationConsumed(sender_index, h, ck, ephemeral)
        hs.latest_timestamp = timestamp
        hs.last_initiation_consumption = now
        return peer, None

    # --- Responder: second message (paper 5.4.3) ------------------------------------------
    def create_response(self, hs, local_index, ephemeral_private):
        """Answer the consumed initiation: -> (sender, receiver, ephemeral, encrypted_nothing)
        with `hs` Finished, or None (DH impossible) with `hs` unchanged."""
        st = hs.state
        if type(st) is not InitiationConsumed:
            return None
        crypto = self.crypto
        ephemeral = crypto.private_key(ephemeral_private)  # prepared once, used twice
        eph_pub = crypto.x25519_public(ephemeral)
        h = crypto.hash(st.hash + eph_pub)
        ck = self.kdf1(st.chaining_key, eph_pub)
        dh1 = crypto.x25519(ephemeral, st.remote_ephemeral)
        dh2 = crypto.x25519(ephemeral, hs.remote_static)
        if dh1 is None or dh2 is None:
            return None
        ck = self.kdf1(ck, dh1)
        ck = self.kdf1(ck, dh2)
        ck, tau, key = self.kdf3(ck, hs.preshared_key)
        h = crypto.hash(h + tau)
        enc_nothing = self._seal(key, b"", h)
        hs.state = Finished(False, local_index, st.remote_index, ck)
        return local_index, st.remote_index, eph_pub, enc_nothing

    # --- Initiator: consume the second message --------------------------------------------
    def consume_response(self, hs, sender, ephemeral, enc_nothing):
        """Verify a response for handshake `hs`: True with `hs` Finished, or False with `hs`
        unchanged."""
        st = hs.state
        if type(st) is not InitiationSent or self.static_private is None:
            return False
        crypto = self.crypto
        h = crypto.hash(st.hash + ephemeral)
        ck = self.kdf1(st.chaining_key, ephemeral)
        dh1 = crypto.x25519(st.ephemeral_private, ephemeral)
        dh2 = crypto.x25519(self.static_key, ephemeral)
        if dh1 is None or dh2 is None:
            return False
        ck = self.kdf1(ck, dh1)
        ck = self.kdf1(ck, dh2)
        ck, tau, key = self.kdf3(ck, hs.preshared_key)
        h = crypto.hash(h + tau)
        if self._open(key, enc_nothing, h) is None:
            return False
        hs.state = Finished(True, st.local_index, sender, ck)
        return True

    # --- Both: transport keys (paper 5.4.5) -----------------------------------------------
    def derive_keys(self, hs):
        """-> (sending_key, receiving_key, i_am_initiator, local_index, remote_index), or None
        when `hs` is not Finished. Zeroes the handshake: its chaining key is never needed
        again."""
        st = hs.state
        if type(st) is not Finished:
            return None
        hs.state = None
        first, second = self.kdf2(st.chaining_key, b"")
        if st.i_am_initiator:
            return first, second, True, st.local_index, st.remote_index
        return second, first, False, st.local_index, st.remote_index
