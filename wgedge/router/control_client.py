"""A client for the userspace API socket (what `wg` does), used by up/reload/status/watchdog."""

import socket

from wgedge.io.control import socket_path


class ControlClientError(Exception):
    def __init__(self, message, errno=0):
        Exception.__init__(self, message)
        self.errno = errno  # the daemon's refusal (negative, as wireguard-go's), else 0


def request(ifname, text, timeout=5.0):
    """Send one request ('get=1' or 'set=1\\n...') and return the reply's key=value lines
    (without errno). Raises ControlClientError on a non-zero errno or a dead socket."""
    path = socket_path(ifname)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(text.rstrip("\n").encode() + b"\n\n")
        buf = b""
        while not buf.endswith(b"\n\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as exc:
        raise ControlClientError("control socket %s: %s" % (path, exc.strerror or exc))
    finally:
        s.close()
    lines = buf.decode(errors="replace").strip("\n").split("\n")
    if not lines or not lines[-1].startswith("errno="):
        raise ControlClientError("control socket %s: no answer" % path)
    errno = int(lines[-1][6:])
    if errno:
        raise ControlClientError("control socket %s refused the request: errno=%d"
                                 % (path, errno), errno)
    return lines[:-1]


def get(ifname, timeout=5.0):
    """-> (interface dict, [peer dicts]) from `get=1`; allowed_ip values collected in lists."""
    iface, peers, cur = {}, [], None
    for line in request(ifname, "get=1", timeout):
        key, _, value = line.partition("=")
        if key == "public_key":
            cur = {"public_key": value, "allowed_ip": []}
            peers.append(cur)
        elif cur is None:
            iface[key] = value
        elif key == "allowed_ip":
            cur["allowed_ip"].append(value)
        else:
            cur[key] = value
    return iface, peers
