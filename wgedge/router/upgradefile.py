"""The upgrade file: a new root file system image, then a fixed 84-byte trailer.

    offset   size  field
    0        N     payload: the root file system image (squashfs: it starts with b"hsqs")
    N        8     magic b"WGEDGEUP"
    N+8      4     format version, unsigned big-endian: 1
    N+12     32    board name, ASCII letters, digits, '.', '_', '-', padded with NUL bytes
    N+44     8     payload length N, unsigned big-endian
    N+52     32    SHA-256 of the payload
    N+84           end of file

The trailer is at the end so the image can be written and hashed as it streams by, and so a
file cut short loses its trailer (refused: no magic at the end) rather than part of a payload
that would still look whole. Written by board/common/mkupgrade on the build host, read by
wgedge-upgrade on the router (wgedge/router/upgrade.py); docs/firmware.md describes both.
This module needs the standard library only: mkupgrade imports it from the source tree.
"""

import hashlib
import re
import struct

MAGIC = b"WGEDGEUP"
VERSION = 1
TRAILER = struct.Struct(">8sI32sQ32s")  # 84 bytes, no padding (">")
BOARD_BYTES = 32
SQUASHFS_MAGIC = b"hsqs"
CHUNK = 256 * 1024  # what is read at a time: the image never sits in memory whole
BOARD_NAME = re.compile(r"[A-Za-z0-9._-]{1,%d}\Z" % BOARD_BYTES)


class UpgradeFileError(Exception):
    """The file is not an upgrade this board can take; the text says why, in one line."""


class Trailer:
    __slots__ = ("board", "length", "sha256")

    def __init__(self, board, length, sha256):
        self.board, self.length, self.sha256 = board, length, sha256


def check_board_name(name):
    if not BOARD_NAME.match(name):
        raise ValueError("a board name is 1 to %d of A-Z a-z 0-9 . _ -, not %r"
                         % (BOARD_BYTES, name))
    return name


def pack_trailer(board, length, sha256):
    check_board_name(board)
    if len(sha256) != 32:
        raise ValueError("a SHA-256 is 32 bytes")
    return TRAILER.pack(MAGIC, VERSION, board.encode("ascii"), length, sha256)


def parse_trailer(raw):
    """The last TRAILER.size bytes of a file -> Trailer. Raises UpgradeFileError."""
    magic, version, board, length, sha256 = TRAILER.unpack(raw)
    if magic != MAGIC:
        raise UpgradeFileError("no upgrade trailer at its end: not a wgedge upgrade file, "
                               "or cut short")
    if version != VERSION:
        raise UpgradeFileError("upgrade file format %d: this wgedge-upgrade reads format %d"
                               % (version, VERSION))
    name = board.rstrip(b"\0")
    try:
        name = check_board_name(name.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise UpgradeFileError("damaged trailer: the board name is not one") from None
    return Trailer(name, length, sha256)


def read_trailer(f, size):
    """The trailer of the open file `f` of `size` bytes, checked against that size."""
    if size < TRAILER.size:
        raise UpgradeFileError("%d bytes: too short to be an upgrade file (its trailer alone "
                               "is %d)" % (size, TRAILER.size))
    f.seek(size - TRAILER.size)
    trailer = parse_trailer(f.read(TRAILER.size))
    if trailer.length != size - TRAILER.size:
        raise UpgradeFileError("cut short or damaged: its trailer says %d bytes of image, the "
                               "file holds %d" % (trailer.length, size - TRAILER.size))
    return trailer


def stream(f, length, buf=None):
    """Yield memoryviews over the next `length` bytes of `f`, CHUNK at a time (one buffer,
    reused: use each before taking the next). Raises UpgradeFileError if `f` ends early."""
    buf = buf or bytearray(CHUNK)
    view = memoryview(buf)
    left = length
    while left:
        n = f.readinto(view[:min(left, len(buf))])
        if not n:
            raise UpgradeFileError("ended %d bytes early" % left)
        left -= n
        yield view[:n]


def payload_digest(f, length):
    """SHA-256 of the first `length` bytes of `f` (from its start), and whether they begin
    like a squashfs image."""
    f.seek(0)
    digest, head = hashlib.sha256(), b""
    for chunk in stream(f, length):
        if len(head) < len(SQUASHFS_MAGIC):
            head += bytes(chunk[:len(SQUASHFS_MAGIC) - len(head)])
        digest.update(chunk)
    return digest.digest(), head == SQUASHFS_MAGIC
