"""Every WireGuard constant and wire size, in one place.

Rules of this file: plain ints, bytes and strings only (MicroPython-safe); names follow the
WireGuard paper (section 6.1 table) and the kernel's messages.h; nothing here computes anything.
"""

# --- Noise protocol identity (paper section 5.4) --------------------------------------------
CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"

KEY_LEN = 32  # X25519 keys, symmetric keys, BLAKE2s-256 digests
HASH_LEN = 32
TAG_LEN = 16  # Poly1305 tag
MAC_LEN = 16  # keyed BLAKE2s-128 (mac1, mac2, cookie)
TIMESTAMP_LEN = 12  # TAI64N
COOKIE_NONCE_LEN = 24  # XChaCha20-Poly1305

# --- Message types and exact sizes (paper section 5.4.2 - 5.4.7) ----------------------------
MSG_INITIATION = 1
MSG_RESPONSE = 2
MSG_COOKIE_REPLY = 3
MSG_DATA = 4

INITIATION_LEN = 148  # 4 type/reserved + 4 sender + 32 ephemeral + 48 static + 28 timestamp + 32 macs
RESPONSE_LEN = 92  # 4 + 4 sender + 4 receiver + 32 ephemeral + 16 empty + 32 macs
COOKIE_REPLY_LEN = 64  # 4 + 4 receiver + 24 nonce + 32 encrypted cookie
DATA_HEADER_LEN = 16  # 4 + 4 receiver + 8 counter
DATA_MIN_LEN = DATA_HEADER_LEN + TAG_LEN  # a keepalive: 32 bytes
# Offsets of mac1 within each handshake message: mac1 covers everything before it, mac2
# everything before mac2 (paper 5.4.4).
INITIATION_MAC1_OFFSET = 116
RESPONSE_MAC1_OFFSET = 60

PADDING_MULTIPLE = 16  # plaintext padded to a multiple of 16 (paper 5.4.6)
DEFAULT_MTU = 1420

# --- Timers and limits (paper section 6.1, "Timers" table) ----------------------------------
REKEY_AFTER_MESSAGES = 1 << 60
REJECT_AFTER_MESSAGES = (1 << 64) - (1 << 13) - 1  # 2^64 - 2^C - 1, C = 13 (window bits)
REKEY_AFTER_TIME = 120.0
REJECT_AFTER_TIME = 180.0
REKEY_ATTEMPT_TIME = 90.0
REKEY_TIMEOUT = 5.0
REKEY_TIMEOUT_JITTER_MAX = 0.333  # up to 333 ms added to each retransmission (paper 6.1)
KEEPALIVE_TIMEOUT = 10.0
MAX_TIMER_HANDSHAKES = 18  # REKEY_ATTEMPT_TIME / REKEY_TIMEOUT
ZERO_KEYS_AFTER = REJECT_AFTER_TIME * 3  # 540 s without a new handshake

# --- Cookies and load (paper section 5.3, 5.4.7; kernel cookie.c and ratelimiter.c) --------
COOKIE_SECRET_MAX_AGE = 120.0
COOKIE_SECRET_LATENCY = 5.0  # a received cookie is trusted for MAX_AGE - LATENCY
INITIATIONS_PER_SECOND = 50  # per peer: a second initiation within 1/50 s is a flood
UNDER_LOAD_AFTER = 1.0  # stay in cookie mode this long after the load ends
RATELIMIT_PACKETS_PER_SECOND = 20  # per source address, handshake messages under load
RATELIMIT_BURST = 5
RATELIMIT_MAX_SOURCES = 8192  # table cap; beyond it new sources are refused under load
# Handshake messages handled per received batch (the kernel bounds its handshake queue the
# same way): beyond it they are dropped unread and the device counts as under load, so a flood
# cannot crowd transport data out of a batch.
MAX_HANDSHAKES_PER_BATCH = 16
MAX_TIMERS_PER_CALL = 64  # peers whose timers one handle_timer call acts on; the rest wait

# --- Queues (bounded so a small router cannot be pushed into OOM) ---------------------------
MAX_STAGED_PACKETS = 128  # per peer, while no session exists; oldest dropped first
MAX_PEERS = 1 << 16

# --- Replay window (RFC 6479 ring of 64-bit blocks, as the kernel and wireguard-go) --------
REPLAY_BLOCK_BITS = 64
REPLAY_RING_BLOCKS = 128
REPLAY_WINDOW = (REPLAY_RING_BLOCKS - 1) * REPLAY_BLOCK_BITS  # 8128 packets

# --- Drop reasons: every datagram or packet the engine refuses is counted under one -------
DROP_SHORT = "short"  # too short for any message
DROP_BAD_TYPE = "bad-type"  # unknown message type
DROP_BAD_LENGTH = "bad-length"  # wrong length for its type
DROP_BAD_RESERVED = "bad-reserved"  # reserved bytes not zero
DROP_BAD_MAC1 = "bad-mac1"
DROP_NEED_COOKIE = "cookie-sent"  # under load, valid mac1 but no mac2: answered with a cookie
DROP_RATELIMITED = "ratelimited"
DROP_BAD_HANDSHAKE = "bad-handshake"  # decryption or DH failed
DROP_UNKNOWN_PEER = "unknown-peer"  # initiation from a static key we do not know
DROP_REPLAYED_TIMESTAMP = "replayed-timestamp"
DROP_HANDSHAKE_FLOOD = "handshake-flood"  # more than INITIATIONS_PER_SECOND from one peer
DROP_UNKNOWN_INDEX = "unknown-index"  # receiver index matches nothing of ours
DROP_BAD_COOKIE = "bad-cookie"
DROP_EXPIRED_KEYPAIR = "expired-keypair"
DROP_DECRYPT = "decrypt-failed"
DROP_REPLAY = "replayed-counter"
DROP_BAD_INNER = "bad-inner-packet"  # decrypted payload is not a valid IPv4/IPv6 packet
DROP_SOURCE_NOT_ALLOWED = "source-not-allowed"  # inner source outside the peer's allowed IPs
DROP_NO_ROUTE = "no-route"  # outgoing packet to an address no peer owns
DROP_NO_ENDPOINT = "no-endpoint"  # peer has no endpoint to send to
DROP_STAGED_OVERFLOW = "staged-overflow"
DROP_HANDSHAKE_GAVE_UP = "handshake-gave-up"  # staged packets cleared after REKEY_ATTEMPT_TIME
DROP_NO_PRIVATE_KEY = "no-private-key"
DROP_HANDSHAKE_OVERLOAD = "handshake-overload"  # over MAX_HANDSHAKES_PER_BATCH in one batch
# An outgoing packet that is our own UDP datagram to a peer's endpoint, routed back into the
# tunnel to that same peer: encrypting it would loop forever (device.py, send_packets).
DROP_ROUTING_LOOP = "routing-loop"
# A datagram of ours whose route leads into another tunnel interface, too large for its MTU:
# nested tunnels are not fragmented, so a loop through two tunnels ends (io/udp.py).
DROP_NESTED_TOO_BIG = "nested-too-big"

# --- ICMP errors for packets no peer's allowed IPs cover (core/icmp.py) --------------------
# Kernel device.c wg_xmit answers ICMP_HOST_UNREACH (IPv4) / ICMPV6_ADDR_UNREACH (IPv6).
ICMP_RATE = 1000  # errors per second, all destinations together (net.ipv4.icmp_msgs_per_sec)
ICMP_BURST = 50  # net.ipv4.icmp_msgs_burst

# --- Events: what happened to handshakes, for the I/O layer to log (Output.events) ---------
# One (event, public key or None, reason or None, endpoint or None) per handshake message
# sent or refused and per handshake completed or given up: never one per data packet. The
# public key is the peer's, or for EVENT_HANDSHAKE_FAILED with DROP_UNKNOWN_PEER the key the
# initiation carried; None when no key is known (a bad mac1, say).
EVENT_INITIATION_SENT = "initiation-sent"  # reason: None, or REASON_RETRY
EVENT_HANDSHAKE_COMPLETED = "handshake-completed"
EVENT_HANDSHAKE_FAILED = "handshake-failed"  # reason: a DROP_* or one of the REASON_* below
REASON_RETRY = "retry"  # the retransmit timer sent this initiation again
REASON_COOKIE_REQUIRED = "cookie-required"  # the peer is under load: answered with a cookie
REASON_NO_RESPONSE = "no-response"  # MAX_TIMER_HANDSHAKES initiations went unanswered
MAX_EVENTS_PER_CALL = 128  # beyond it an entry point counts them in Output.events_lost
