"""The control socket: /var/run/wireguard/IFNAME.sock, speaking the userspace API.

The server lives inside the interface's event loop (io/loop.py), beside the tunnel's packets,
so nothing a client does may make the loop wait or grow without bound. About 470 lines, on
purpose: every rule below is kept by the methods of one class (ControlServer), and each
bound is only as good as all of them together. Rules kept here:

- The socket is created under umask 077 and chmod 0600: root only. A stale socket file (left
  by a crashed run) is replaced; one that still answers is not.
- Requests end with a blank line; several may follow each other on one connection. They are
  taken in order, one at a time, and handed over line by line as they arrive: a request's
  first line goes to `begin(op) -> request`, its further lines (decoded as UTF-8, bad bytes
  replaced) to `request.feed(lines)` as each read completes them, and at its blank line
  `request.finish() -> (reply, keep)` answers it: `reply` is bytes or an iterator of bytes
  pieces (a large `get`), `keep=False` closes after the reply. So a large `set` is parsed
  over the wake-ups its bytes take to arrive, and only its apply is left for the blank line.
- Backpressure, not buffering: while a connection's reply is unsent, its further requests are
  neither read nor taken, and an iterator reply is advanced only as the client takes what
  was made before. A client that does not read fills its own socket buffers, not our memory.
- Nothing blocks and every wake-up is bounded: sockets are non-blocking, and `service(now)`
  per connection reads at most READ_CHUNK bytes, hands at most READ_CHUNK bytes of lines to
  `feed` (a line longer than that goes whole: MAX_REQUEST bounds it) and makes at most
  REPLY_STEP bytes of reply (plus one piece). `finish` runs at most once a wake-up for a
  request over REPLY_STEP bytes (a set's apply is whole: all or nothing).
- Deadlines, with time an argument (`service(now)`, `next_deadline()`): an idle connection is
  closed after IDLE_TIMEOUT; a request must be complete REQUEST_TIMEOUT after its first byte
  (a client that stops writing, or trickles); a client must read some of its reply at least
  every REPLY_TIMEOUT (a client that stops reading; checked with SIOCOUTQ, since the kernel
  reports a socket writable again only once most of its buffer is read).
- At most MAX_CONNECTIONS at once. When the table is full a new connection evicts the one that
  has been idle longest, so idle clients cannot lock `wg` out; only when none is idle is the
  new one closed (the busy ones end by their deadlines).
- Memory: a request may be MAX_REQUEST bytes (8 MiB) up to its blank line, and all
  connections' unfinished requests together MAX_BUFFERED (16 MiB), counting what was read and
  what was handed to `feed`; a read beyond either closes its connection. What a request keeps
  of the lines it was fed is the handler's: the daemon's set parser keeps at most 4/3 of
  their size, under half for usual peer lines (uapi.SetParser). A connection holds at most
  REPLY_STEP plus one piece (under 32 KiB) of unsent reply, and decodes at most READ_CHUNK
  (or one longer line) at once. So the buffers stay under 19 MiB (16 MiB of requests, up to
  an eighth more for bytearray growth, 16 x 32 KiB of replies), or 25 MiB if all of the
  16 MiB were set lines of the least favourable kind, already parsed; plus what the kernel
  holds in the sockets' own buffers.
- Log lines say what a client did wrong, never what it sent (a key may be in it).

The server watches its listener and connections with its own epoll, whose descriptor
(`fileno()`) the loop watches: readable whenever a connection can be read or written.
"""

import errno
import fcntl
import os
import select
import socket
import struct
import termios

from wgedge.io.logger import log

SOCKET_DIR = "/var/run/wireguard"
MAX_CONNECTIONS = 16
MAX_REQUEST = 8 << 20  # one request, up to its blank line (a setconf of about 25k peers)
MAX_BUFFERED = 16 << 20  # all connections' unfinished requests together
READ_CHUNK = 64 << 10  # read from one connection per wake-up
REPLY_STEP = 16 << 10  # reply made for one connection per wake-up (about 0.6 ms of a get)
IDLE_TIMEOUT = 30.0  # seconds a connection may sit between requests
REQUEST_TIMEOUT = 10.0  # seconds from a request's first byte to its blank line
REPLY_TIMEOUT = 10.0  # seconds a client may read none of its reply

_SPENT = -1  # _take: the next line does not fit in this wake-up's budget
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT


def socket_path(ifname, directory=SOCKET_DIR):
    return os.path.join(directory, ifname + ".sock")


class ControlError(Exception):
    pass


def where_it_failed(exc):
    """A bug's type and the files, lines and functions it passed, innermost first, without
    its message (which may quote a value from a request, a key among them). Read from the
    traceback's frames themselves: the `traceback` module (with linecache and tokenize, which
    also reads the source files into memory) would cost the daemon 0.4 MB for its life."""
    where = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        where.append("%s:%s in %s" % (os.path.basename(code.co_filename), tb.tb_lineno,
                                      code.co_name))
        tb = tb.tb_next
    return "%s at %s" % (type(exc).__name__, " < ".join(reversed(where)) or "?")


def _unread(sock):
    """How much of what was sent on `sock` the client has not read yet (SIOCOUTQ; in the
    kernel's accounting, which falls as the client reads whole writes)."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


def _still_alive(path):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class _Conn:
    """One client: what it sent, what it is owed, and by when it must move."""

    __slots__ = ("sock", "fd", "inbuf", "scan", "request", "taken", "owing", "out", "pieces",
                 "keep", "eof", "deadline", "idle_since", "mask", "unread")

    def __init__(self, sock, now, idle_timeout):
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()  # bytes read and not yet taken (a line is taken whole)
        self.scan = 0  # inbuf before this holds no newline (a long line arriving)
        self.request = None  # the request being taken (begun at its first line)
        self.taken = 0  # bytes of it taken so far (counted in `buffered` until answered)
        self.owing = False  # a request was taken and its reply is not all sent
        self.out = bytearray()  # reply bytes made but not yet taken by the kernel
        self.pieces = None  # the rest of an iterator reply
        self.keep = True
        self.eof = False  # the client will send nothing more
        self.deadline = now + idle_timeout
        self.idle_since = now
        self.mask = _IN
        self.unread = 0  # _unread() when the kernel last refused more of the reply

    def idle(self):
        return not self.inbuf and self.request is None and not self.owing


class ControlServer:
    def __init__(self, path, begin, idle_timeout=IDLE_TIMEOUT,
                 request_timeout=REQUEST_TIMEOUT, reply_timeout=REPLY_TIMEOUT):
        self.path = path
        self.begin = begin
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.reply_timeout = reply_timeout
        self.conns = {}  # fd -> _Conn
        self.buffered = 0  # every connection's inbuf and the taken part of its request
        self._ready = set()  # fds with whole lines waiting for the next wake-up
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        if os.path.exists(path):
            if _still_alive(path):
                raise ControlError("%s is in use by a running daemon" % path)
            os.unlink(path)  # stale, from a crashed run
        old_umask = os.umask(0o077)
        try:
            self.listener = socket.socket(socket.AF_UNIX,
                                          socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                                          | socket.SOCK_CLOEXEC)
            self.listener.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self.listener.listen(16)
        self.epoll = select.epoll()
        self.epoll.register(self.listener.fileno(), _IN)

    def fileno(self):
        """Readable when `service` has something to do (the loop watches this)."""
        return self.epoll.fileno()

    def next_deadline(self):
        """The monotonic time by which `service` must run even without an event, or None."""
        if self._ready:
            return 0.0
        if not self.conns:
            return None
        return min(c.deadline for c in self.conns.values())

    def service(self, now):
        """Accept, read, answer, write and enforce deadlines: a bounded amount of each."""
        served = set()
        for fd, mask in self.epoll.poll(0, MAX_CONNECTIONS + 1):
            if fd == self.listener.fileno():
                self._accept(now)
            elif fd in self.conns:
                served.add(fd)
                self._serve(self.conns[fd], now, mask)
        for fd in list(self._ready - served):
            if fd in self.conns:
                self._serve(self.conns[fd], now, 0)
        for conn in list(self.conns.values()):
            if conn.deadline <= now and not self._reading_still(conn, now):
                self._expire(conn)

    # --- connections ---------------------------------------------------------------------------
    def _accept(self, now):
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED, errno.ENOBUFS,
                                 errno.ENOMEM):
                    return
                raise
            if len(self.conns) >= MAX_CONNECTIONS and not self._evict_idle():
                log.debug("control: refused a connection: all %d are busy", MAX_CONNECTIONS)
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, now, self.idle_timeout)
            self.conns[conn.fd] = conn
            self.epoll.register(conn.fd, _IN)

    def _evict_idle(self):
        idle = [c for c in self.conns.values() if c.idle()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since)
        log.debug("control: closed the connection idle longest to let a new one in")
        self.close(oldest.fd)
        return True

    def _reading_still(self, conn, now):
        """A client owed a reply that read some since the kernel was last full has a new
        deadline (the kernel wakes us only once it has read most of its buffer)."""
        if not conn.owing:
            return False
        unread = _unread(conn.sock)
        if unread >= conn.unread:
            return False
        conn.unread = unread
        conn.deadline = now + self.reply_timeout
        return True

    def _expire(self, conn):
        if conn.owing:
            log.info("control: closed a connection that read none of its reply for %gs",
                     self.reply_timeout)
        elif conn.inbuf or conn.request is not None:
            log.info("control: closed a connection that did not finish its request (%d bytes) "
                     "within %gs", conn.taken + len(conn.inbuf), self.request_timeout)
        else:
            log.debug("control: closed a connection idle for %gs", self.idle_timeout)
        self.close(conn.fd)

    def close(self, fd):
        conn = self.conns.pop(fd, None)
        if conn is None:
            return
        self._ready.discard(fd)
        self.buffered -= len(conn.inbuf) + conn.taken
        conn.request = None
        try:
            self.epoll.unregister(fd)
        except OSError:
            pass
        conn.sock.close()
        conn.pieces = None

    # --- one connection's turn -----------------------------------------------------------------
    def _serve(self, conn, now, mask):
        """Send what is owed, then read once and take in requests, within the budgets."""
        self._ready.discard(conn.fd)
        budget = REPLY_STEP  # reply made, and requests answered (by their size)
        lines = READ_CHUNK  # request lines handed to `feed`
        may_read = bool(mask & (_IN | select.EPOLLHUP | select.EPOLLERR))
        while True:
            if conn.owing:
                budget = self._send(conn, now, budget)
                if budget is None:
                    return  # closed
                if conn.out or conn.pieces is not None:
                    break  # the kernel is full (EPOLLOUT wakes us) or the budget is spent
                conn.owing = False
                if not conn.keep:
                    self.close(conn.fd)
                    return
                conn.idle_since = now
                conn.deadline = now + (self.request_timeout if conn.inbuf else self.idle_timeout)
            if budget <= 0 or lines <= 0:
                if conn.inbuf.find(b"\n", conn.scan) >= 0:
                    self._ready.add(conn.fd)  # taken at the next wake-up
                break
            request = conn.request
            took = self._take(conn, lines)
            if took is None:
                return  # closed
            if took == _SPENT:
                lines = 0  # the next line is for the next wake-up
                continue
            if took == 0:  # nothing whole in inbuf
                if conn.eof:
                    self.close(conn.fd)  # and nothing more will come
                    return
                if not may_read:
                    break
                may_read = False
                if not self._read(conn, now):
                    return  # closed
                continue
            lines -= took
            if request is None or conn.request is not None:
                continue  # a request began, or more of it was fed
            budget -= conn.taken  # its blank line came: it is answered
            if not self._answer(conn, request, now):
                return  # closed
        want = _OUT if conn.owing else _IN
        if want != conn.mask:
            conn.mask = want
            self.epoll.modify(conn.fd, want)

    def _read(self, conn, now):
        try:
            chunk = conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            chunk = b""
        if not chunk:
            conn.eof = True
            return True
        if not conn.inbuf and conn.request is None:
            conn.deadline = now + self.request_timeout  # a request begins
        conn.inbuf += chunk
        self.buffered += len(chunk)
        if self.buffered > MAX_BUFFERED:
            log.info("control: closed a connection: unfinished requests hold over %d bytes",
                     MAX_BUFFERED)
            self.close(conn.fd)
            return False
        return True

    def _take(self, conn, most):
        """Take the next whole lines of the request in inbuf, at most `most` bytes of them
        (or one longer line, when `most` is a whole READ_CHUNK): its first line begins it, the
        others are fed to it, its blank line ends it (then `conn.request` is None again,
        `conn.taken` its size). -> the bytes taken, 0 if inbuf holds no whole line, _SPENT if
        the next line is longer than `most`, or None if the connection was closed."""
        buf = conn.inbuf
        if conn.request is None:
            end = buf.find(b"\n", conn.scan)
            if end < 0:
                return self._wait_for_line(conn)
            op = buf[:end].decode("utf-8", "replace")
            del buf[:end + 1]
            conn.scan = 0
            conn.taken = end + 1
            try:
                conn.request = self.begin(op)
            except Exception as exc:  # noqa: BLE001 - a bug must not take the loop down
                self._bug(conn, exc, "beginning a request")
                return None
            return end + 1
        if buf[:1] == b"\n":
            blank = 0
        else:
            blank = buf.find(b"\n\n", max(0, conn.scan - 1))
            if blank >= 0:
                blank += 1
        if blank >= 0 and blank <= most:
            end = blank  # up to the blank line, which ends the request
        else:
            end = buf.rfind(b"\n", 0, most if blank < 0 else min(blank, most)) + 1
            if end == 0:  # no whole line within `most` bytes
                end = buf.find(b"\n", conn.scan) + 1
                if end == 0:
                    return self._wait_for_line(conn)
                if most < READ_CHUNK:
                    return _SPENT
                # a line longer than READ_CHUNK goes whole (MAX_REQUEST bounds it)
        if end:
            text = buf[:end].decode("utf-8", "replace")
            try:
                conn.request.feed(text.split("\n")[:-1])
            except Exception as exc:  # noqa: BLE001 - a bug must not take the loop down
                self._bug(conn, exc, "reading a request")
                return None
        conn.scan = 0
        if end == blank:
            del buf[:end + 1]
            conn.taken += end + 1
            conn.request = None
            return end + 1
        del buf[:end]
        conn.taken += end
        return end

    def _wait_for_line(self, conn):
        """inbuf holds part of a line: -> 0 (read more), or None when the request has grown
        over MAX_REQUEST (the connection is then closed)."""
        if conn.taken + len(conn.inbuf) > MAX_REQUEST:
            log.info("control: closed a connection: request over %d bytes", MAX_REQUEST)
            self.close(conn.fd)
            return None
        conn.scan = len(conn.inbuf)
        return 0

    def _bug(self, conn, exc, doing):
        log.error("control: internal error %s: %s", doing, where_it_failed(exc))
        self.close(conn.fd)

    def _answer(self, conn, request, now):
        """Its blank line came: `request` answers. -> False if the connection was closed."""
        self.buffered -= conn.taken
        conn.taken = 0
        try:
            reply, keep = request.finish()
        except Exception as exc:  # noqa: BLE001 - a bug must not take the loop down
            self._bug(conn, exc, "answering a request")
            return False
        if isinstance(reply, (bytes, bytearray)):
            conn.out += reply
        else:
            conn.pieces = iter(reply)
        conn.keep = keep
        conn.owing = True
        conn.deadline = now + self.reply_timeout
        return True

    def _send(self, conn, now, budget):
        """Make reply pieces while under REPLY_STEP and the budget, and hand them to the
        kernel until it is full. -> the budget left, or None if the connection was closed."""
        while True:
            while conn.pieces is not None and len(conn.out) < REPLY_STEP and budget > 0:
                try:
                    piece = next(conn.pieces)
                except StopIteration:
                    conn.pieces = None
                    break
                except Exception as exc:  # noqa: BLE001 - a bug must not take the loop down
                    log.error("control: internal error making a reply: %s",
                              where_it_failed(exc))
                    self.close(conn.fd)
                    return None
                conn.out += piece
                budget -= len(piece)
            if not conn.out:
                return budget
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                conn.unread = _unread(conn.sock)
                return budget
            except OSError:
                self.close(conn.fd)  # the client went away
                return None
            del conn.out[:sent]
            conn.deadline = now + self.reply_timeout
            if conn.out:
                conn.unread = _unread(conn.sock)  # the kernel is full
                return budget
            if conn.pieces is None or budget <= 0:
                return budget

    def shutdown(self):
        for fd in list(self.conns):
            self.close(fd)
        self.epoll.close()
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
