"""The control socket: /var/run/wireguard/IFNAME.sock, speaking the userspace API.

Rules kept here:
- The socket is created under umask 077 and chmod 0600: root only.
- A stale socket file (left by a crashed run) is replaced; one that still answers is not.
- Requests end with a blank line; several may follow each other on one connection.
- Limits: MAX_CONNECTIONS at once, MAX_REQUEST bytes buffered per connection; beyond them the
  connection is closed. A request is answered by `handler(op, lines) -> reply bytes`.
- Log lines never quote what a client sent (a key may be in it).
"""

import errno
import os
import socket
import traceback

SOCKET_DIR = "/var/run/wireguard"
MAX_CONNECTIONS = 16
MAX_REQUEST = 8 << 20


def socket_path(ifname, directory=SOCKET_DIR):
    return os.path.join(directory, ifname + ".sock")


class ControlError(Exception):
    pass


def where_it_failed(exc):
    """A bug's type and the files, lines and functions it passed, without its message (which
    may quote a value from a request, a key among them)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return "%s at %s" % (type(exc).__name__, " < ".join(
        "%s:%d in %s" % (os.path.basename(f.filename), f.lineno, f.name)
        for f in reversed(frames)) or "?")


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


class ControlServer:
    def __init__(self, path, handler):
        self.path = path
        self.handler = handler
        self.conns = {}  # fd -> [socket, buffer]
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

    def fileno(self):
        return self.listener.fileno()

    def accept(self):
        """Accept pending connections; returns the new sockets (for the loop to watch)."""
        new = []
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return new
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
                    return new
                raise
            if len(self.conns) >= MAX_CONNECTIONS:
                conn.close()
                continue
            conn.setblocking(False)
            self.conns[conn.fileno()] = [conn, b""]
            new.append(conn)

    def readable(self, fd):
        """Read from a connection and answer every complete request. Returns False when the
        connection is finished and has been closed."""
        entry = self.conns.get(fd)
        if entry is None:
            return False
        conn = entry[0]
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.close(fd)
            return False
        buf = entry[1] + chunk
        while True:
            end = buf.find(b"\n\n")
            if end < 0:
                break
            request, buf = buf[:end], buf[end + 2:]
            lines = request.decode("utf-8", "replace").split("\n")
            reply, keep = self.handler(lines[0], lines[1:])
            if not self._send(conn, reply) or not keep:
                self.close(fd)
                return False
        if len(buf) > MAX_REQUEST:
            self.close(fd)
            return False
        entry[1] = buf
        return True

    @staticmethod
    def _send(conn, data):
        conn.setblocking(True)
        conn.settimeout(5.0)
        try:
            conn.sendall(data)
            return True
        except OSError:
            return False
        finally:
            conn.setblocking(False)

    def close(self, fd):
        entry = self.conns.pop(fd, None)
        if entry is not None:
            entry[0].close()

    def shutdown(self):
        for fd in list(self.conns):
            self.close(fd)
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
