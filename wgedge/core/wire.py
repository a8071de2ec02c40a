"""Pack and parse the four WireGuard messages (paper section 5.4).

Rules kept here:
- Every message starts with a little-endian u32 whose low byte is the type and whose upper three
  (reserved) bytes are zero; anything else is rejected.
- Handshake messages have one exact length each; transport data is at least 32 bytes
  (header + Poly1305 tag) and otherwise any length.
- Parsing never raises on peer input: `classify` returns the message type, or 0 and a drop
  reason, and the per-type parsers are only called on classified input.
"""

import struct

from wgedge.core import consts as C

try:
    Struct = struct.Struct
except AttributeError:  # MicroPython's struct has no Struct class: same interface, format kept

    class Struct:
        def __init__(self, fmt):
            self.format = fmt
            self.size = struct.calcsize(fmt)

        def pack(self, *values):
            return struct.pack(self.format, *values)

        def unpack(self, data):
            return struct.unpack(self.format, data)

        def unpack_from(self, data, offset=0):
            return struct.unpack_from(self.format, data, offset)

        def pack_into(self, buf, offset, *values):
            struct.pack_into(self.format, buf, offset, *values)


_U32 = Struct("<I")
_INIT = Struct("<II32s48s28s16s16s")
_RESP = Struct("<III32s16s16s16s")
_COOKIE = Struct("<II24s32s")
DATA_HEADER = Struct("<IIQ")  # type, receiver index, counter
NONCE = Struct("<IQ")  # 4 zero bytes + little-endian 64-bit counter (paper 5.4.6)

_EXACT = {
    C.MSG_INITIATION: C.INITIATION_LEN,
    C.MSG_RESPONSE: C.RESPONSE_LEN,
    C.MSG_COOKIE_REPLY: C.COOKIE_REPLY_LEN,
}


def classify(data):
    """-> (message type 1-4, None) for a well-formed datagram, or (0, DROP_* reason)."""
    n = len(data)
    if n < 4:
        return 0, C.DROP_SHORT
    word = _U32.unpack_from(data, 0)[0]
    mtype = word & 0xFF
    if mtype < C.MSG_INITIATION or mtype > C.MSG_DATA:
        return 0, C.DROP_BAD_TYPE
    if word >> 8:
        return 0, C.DROP_BAD_RESERVED
    if mtype == C.MSG_DATA:
        length_ok = n >= C.DATA_MIN_LEN
    else:
        length_ok = n == _EXACT[mtype]
    if not length_ok:
        return 0, C.DROP_BAD_LENGTH
    return mtype, None


def pack_initiation(sender, ephemeral, encrypted_static, encrypted_timestamp):
    """A 148-byte initiation with zero mac1/mac2, to be filled in by the cookie module."""
    return bytearray(
        _INIT.pack(C.MSG_INITIATION, sender, ephemeral, encrypted_static, encrypted_timestamp,
                   b"", b"")
    )


def parse_initiation(data):
    """-> (sender, ephemeral, encrypted_static, encrypted_timestamp)."""
    _, sender, eph, enc_static, enc_ts, _, _ = _INIT.unpack_from(data, 0)
    return sender, eph, enc_static, enc_ts


def pack_response(sender, receiver, ephemeral, encrypted_nothing):
    return bytearray(
        _RESP.pack(C.MSG_RESPONSE, sender, receiver, ephemeral, encrypted_nothing, b"", b"")
    )


def parse_response(data):
    """-> (sender, receiver, ephemeral, encrypted_nothing)."""
    _, sender, receiver, eph, enc_nothing, _, _ = _RESP.unpack_from(data, 0)
    return sender, receiver, eph, enc_nothing


def pack_cookie_reply(receiver, nonce, encrypted_cookie):
    return _COOKIE.pack(C.MSG_COOKIE_REPLY, receiver, nonce, encrypted_cookie)


def parse_cookie_reply(data):
    """-> (receiver, nonce, encrypted_cookie)."""
    _, receiver, nonce, enc = _COOKIE.unpack_from(data, 0)
    return receiver, nonce, enc


def mac1_offset(mtype):
    return C.INITIATION_MAC1_OFFSET if mtype == C.MSG_INITIATION else C.RESPONSE_MAC1_OFFSET
