"""The control socket (wgedge/io/control.py): a real server on a socket in tmp_path, its clock
stepped by hand, clients in this thread; then the daemon in namespaces under the same clients,
with pings across its tunnel.

The clients here are the hostile ones found in issue 12: one that pipelines gets and never
reads, idle ones filling the table, a slow reader of a large get, requests that never end or
stop half-way, and control lines carrying a key where none belongs.
"""

import base64
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import tracemalloc

import pytest

from tests.memnet import SeededRng
from tests.netns import ROOT, genkey
from tests.private_run import PrivateRun
from wgedge import crypto
from wgedge.core import uapi, uapi_get
from wgedge.core.device import Device, Output
from wgedge.io import control
from wgedge.io.control import ControlServer

T0 = 1000.0
REPLY_END = re.compile(rb"(^|\n)errno=-?\d+\n\n$")


def whole(reply):
    """Whether `reply` ends with its errno line (looks at the tail only: replies are large)."""
    return REPLY_END.search(bytes(reply[-48:])) is not None
# A key-shaped canary: 32 bytes in base64 and in hex, as a pasted key would look.
CANARY_RAW = bytes(range(0xA0, 0xC0))
CANARY = base64.b64encode(CANARY_RAW).decode()
CANARY_FORMS = (CANARY, CANARY[:16], CANARY_RAW.hex(), CANARY_RAW.hex()[:16],
                CANARY_RAW.hex()[-16:])


@pytest.fixture
def no_hang():
    """A blocking write in the server would hang these tests forever (the client that should
    read is this same thread): turn that into a failure after a generous 120 s."""
    def fire(signum, frame):
        raise TimeoutError("the control server blocked")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


class Handler:
    """Answers as the daemon does: `get=1` with a reply of `pieces` pieces (an iterator,
    advanced only as the server asks), `set=1` with errno=0, anything else with -EPROTO and
    a close. Counts what it made, so a test can bound the work of one wake-up."""

    def __init__(self, pieces=50, piece_size=1000):
        self.pieces = pieces
        self.piece_size = piece_size
        self.ops = []
        self.made = 0

    def __call__(self, op, lines):
        self.ops.append(op)
        if op == "get=1":
            return self._get(len(self.ops)), True
        if op == "set=1":
            return b"errno=0\n\n", True
        return b"errno=-71\n\n", False

    def _get(self, n):
        for i in range(self.pieces):
            head = b"request=%d piece=%d " % (n, i)
            piece = head + b"x" * (self.piece_size - len(head) - 1) + b"\n"
            self.made += len(piece)
            yield piece
        yield b"errno=0\n\n"

    def expected(self, n):
        return b"".join(self._get(n))


class _Whole:
    """A request answered whole at its blank line by `handler(op, lines)`."""

    def __init__(self, handler, op):
        self.handler, self.op, self.lines = handler, op, []

    def feed(self, lines):
        self.lines.extend(lines)

    def finish(self):
        return self.handler(self.op, self.lines)


def serve(tmp_path, handler=None, begin=None, **kwargs):
    """A server whose requests `handler(op, lines)` answers whole, or `begin(op)` takes line
    by line (the daemon's way)."""
    if begin is None:
        def begin(op):
            return _Whole(handler, op)
    return ControlServer(str(tmp_path / "wgt.sock"), begin, **kwargs)


def connect(server):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(server.path)
    c.setblocking(False)
    return c


def drain(c, most=1 << 30):
    """What the server has sent so far (up to `most` bytes); b'' if nothing."""
    out = b""
    while len(out) < most:
        try:
            chunk = c.recv(min(65536, most - len(out)))
        except BlockingIOError:
            break
        if not chunk:
            break
        out += chunk
    return out


def closed_by_server(c):
    """Whether the server closed its end (reads nothing: a reply may still be unread)."""
    poller = select.poll()
    poller.register(c, select.POLLIN)
    return any(events & select.POLLHUP for _, events in poller.poll(0))


def exchange(server, c, request, now=T0, steps=100000):
    """Send one request and step the server until its whole reply is in."""
    c.sendall(request)
    reply = b""
    for _ in range(steps):
        server.service(now)
        reply += drain(c)
        if whole(reply):
            return reply
    raise AssertionError("no whole reply: %r" % reply[-100:])


def held(server):
    """Bytes of reply the server holds for each connection, unsent."""
    return [len(conn.out) for conn in server.conns.values()]


unit = pytest.mark.usefixtures("no_hang")


@unit
def test_requests_answered_in_order_and_after_a_half_close(tmp_path):
    handler = Handler(pieces=3)
    server = serve(tmp_path, handler)
    try:
        c = connect(server)
        c.sendall(b"get=1\n\nset=1\nlisten_port=1\n\nget=1\n\n")
        c.shutdown(socket.SHUT_WR)  # nothing more: the answers still come, then the close
        reply = b""
        for _ in range(100):
            server.service(T0)
            reply += drain(c)
        assert reply == handler.expected(1) + b"errno=0\n\n" + handler.expected(3)
        assert handler.ops == ["get=1", "set=1", "get=1"]
        assert closed_by_server(c) and not server.conns and server.buffered == 0
    finally:
        server.shutdown()


@unit
def test_pipelining_non_reader_is_held_back_not_buffered(tmp_path):
    """A client pipelines gets and never reads: its further requests wait unread (its own
    socket buffers fill), the server holds a bounded reply for it and makes a bounded amount
    per wake-up, and another client is answered meanwhile. When it reads, every reply comes,
    whole and in order."""
    handler = Handler(pieces=50, piece_size=1000)
    server = serve(tmp_path, handler)
    try:
        greedy = connect(server)
        sent = 300
        greedy.sendall(b"get=1\n\n" * sent)  # 2 kB: the kernel takes it at once
        most_made = 0
        for _ in range(300):
            before = handler.made
            server.service(T0)
            most_made = max(most_made, handler.made - before)
            assert max(held(server)) <= control.REPLY_STEP + handler.piece_size
        # Backpressure: only what the kernel buffers could take was answered (about 200 kB
        # of 50 kB replies), not 300 x 50 kB.
        answered = len(handler.ops)
        assert answered < 20
        assert most_made <= control.REPLY_STEP + handler.piece_size
        assert server.buffered <= control.READ_CHUNK
        other = connect(server)
        reply = exchange(server, other, b"get=1\n\n")
        assert reply == handler.expected(answered + 1)
        assert len(handler.ops) == answered + 1  # the greedy one got nothing more meanwhile
        # Now it reads: everything it asked for arrives, whole and in order.
        got = bytearray()
        for _ in range(200000):
            server.service(T0)
            chunk = drain(greedy)
            got += chunk
            if chunk.endswith(b"errno=0\n\n") and got.count(b"errno=0\n\n") == sent:
                break
        replies = bytes(got).split(b"errno=0\n\n")[:-1]
        numbers = [n for n in range(1, sent + 2) if n != answered + 1]
        assert [r + b"errno=0\n\n" for r in replies] == [handler.expected(n) for n in numbers]
    finally:
        server.shutdown()


@unit
def test_idle_clients_cannot_lock_out_a_new_one(tmp_path):
    handler = Handler(pieces=1)
    server = serve(tmp_path, handler)
    try:
        idle = []
        for i in range(control.MAX_CONNECTIONS):
            idle.append(connect(server))
            server.service(T0 + i)  # accepted one after the other
        assert len(server.conns) == control.MAX_CONNECTIONS
        wg = connect(server)
        now = T0 + control.IDLE_TIMEOUT - 1  # none has reached its idle deadline
        assert exchange(server, wg, b"get=1\n\n", now=now) == handler.expected(1)
        assert closed_by_server(idle[0])  # the one idle longest made room
        assert not any(closed_by_server(c) for c in idle[1:])
        wg.close()
        for c in idle:
            c.close()
        server.service(now)
        assert not server.conns
        # Busy ones (each half-way through a request) are not evicted: the new one is
        # refused, until their request deadline frees the table.
        busy = [connect(server) for _ in range(control.MAX_CONNECTIONS)]
        for c in busy:
            c.sendall(b"set=1\nlisten_port=1")
        server.service(T0 + 200)
        server.service(T0 + 200)
        late = connect(server)
        server.service(T0 + 200)
        assert closed_by_server(late)
        server.service(T0 + 200 + control.REQUEST_TIMEOUT)
        assert all(closed_by_server(c) for c in busy)
        wg = connect(server)
        now = T0 + 200 + control.REQUEST_TIMEOUT
        assert exchange(server, wg, b"get=1\n\n", now=now) == handler.expected(2)
    finally:
        server.shutdown()


@unit
def test_deadlines_for_stalled_trickling_idle_and_non_reading_clients(tmp_path):
    """Time is an argument: each kind of stuck client is closed at its deadline, not before,
    and next_deadline() (what the loop's epoll waits for) names the earliest one."""
    handler = Handler(pieces=400, piece_size=1000)
    server = serve(tmp_path, handler)
    try:
        stalled = connect(server)
        server.service(T0)
        stalled.sendall(b"set=1\nprivate_key=")  # and then nothing
        server.service(T0 + 1)
        assert server.next_deadline() == T0 + 1 + control.REQUEST_TIMEOUT
        trickle = connect(server)
        idle = connect(server)
        server.service(T0 + 2)
        for t in range(12):  # one byte a second: progress, but no whole request
            try:
                trickle.sendall(b"s")
            except OSError:
                assert t > control.REQUEST_TIMEOUT  # closed at its deadline
            server.service(T0 + 2 + t)
            if t == 0:
                assert server.next_deadline() == T0 + 1 + control.REQUEST_TIMEOUT
        assert closed_by_server(stalled) and closed_by_server(trickle)
        assert not closed_by_server(idle)
        assert server.next_deadline() == T0 + 2 + control.IDLE_TIMEOUT
        server.service(T0 + 2 + control.IDLE_TIMEOUT - 0.5)
        assert not closed_by_server(idle)
        server.service(T0 + 2 + control.IDLE_TIMEOUT)
        assert closed_by_server(idle)
        # A 400 kB reply: a reader that takes some every second lives, one that stops dies
        # REPLY_TIMEOUT after the last bytes it took.
        now = T0 + 100
        slow, stopped = connect(server), connect(server)
        slow.sendall(b"get=1\n\n")
        stopped.sendall(b"get=1\n\n")
        got = b""
        for _ in range(100):
            server.service(now)
        for t in range(60):
            now += 1.0
            got += drain(slow, 8192)
            server.service(now)
            if t < control.REPLY_TIMEOUT - 1:
                assert not closed_by_server(stopped)
        assert closed_by_server(stopped)
        assert not closed_by_server(slow)
        got += drain(slow)
        for _ in range(1000):
            server.service(now)
            got += drain(slow)
        assert whole(got) and len(got) == len(handler.expected(1))
    finally:
        server.shutdown()


@unit
def test_oversized_requests_are_closed_and_memory_stays_bounded(tmp_path):
    """16 clients each send an 8 MiB request with no blank line (issue 12: RSS grew by 180 MB).
    The unfinished requests never hold more than MAX_BUFFERED together, one over MAX_REQUEST
    is closed, and Python's allocations during the attack stay under MAX_BUFFERED + 4 MiB."""
    handler = Handler(pieces=1)
    server = serve(tmp_path, handler)
    chunk = b"private_key=" + b"a" * (65536 - 12)
    try:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        clients = [connect(server) for _ in range(control.MAX_CONNECTIONS)]
        sent = [0] * len(clients)
        refused = set()
        for _ in range(100000):
            for i, c in enumerate(clients):
                while i not in refused and sent[i] < control.MAX_REQUEST:
                    try:
                        sent[i] += c.send(chunk[:control.MAX_REQUEST - sent[i]])
                    except BlockingIOError:
                        break
                    except (BrokenPipeError, ConnectionResetError):
                        refused.add(i)
            server.service(T0)
            assert server.buffered <= control.MAX_BUFFERED
            if all(i in refused or sent[i] == control.MAX_REQUEST for i in range(len(clients))):
                break
        for _ in range(200):
            server.service(T0)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        holding = sum(len(conn.inbuf) for conn in server.conns.values())
        assert holding == server.buffered <= control.MAX_BUFFERED
        closed = [i for i, c in enumerate(clients) if closed_by_server(c)]
        assert len(closed) + len(server.conns) == len(clients)
        assert len(closed) >= len(clients) - control.MAX_BUFFERED // control.MAX_REQUEST
        assert peak <= control.MAX_BUFFERED + (4 << 20), peak
        # One request over MAX_REQUEST on its own is closed too.
        for c in clients:
            c.close()
        server.service(T0)
        assert server.buffered == 0
        big = connect(server)
        total = 0
        closed = False
        while total <= control.MAX_REQUEST + len(chunk) and not closed:
            try:
                total += big.send(chunk)
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            server.service(T0)
        assert closed or closed_by_server(big)
        assert server.buffered == 0 and not server.conns
    finally:
        tracemalloc.stop()
        server.shutdown()


@unit
def test_unfinished_sets_parsed_as_they_arrive_keep_memory_bounded(tmp_path):
    """16 clients each send 1 MiB of a set, made of the lines whose parsed form is largest
    for their size, and never its blank line. Parsed as they arrive, the requests are held
    as parsed bytes, at most 4/3 of the text they came from (uapi.SetParser), plus text not
    yet parsed, all under MAX_BUFFERED of text together."""
    server = serve(tmp_path, begin=_daemon_begin(_new_device()))
    head = b"set=1\npublic_key=" + b"00" * 32 + b"\n"
    body = b"endpoint=[::%a]:1\nallowed_ip=::\n" * 32768  # 1 MiB
    request = head + body[:(1 << 20) - len(head)]
    try:
        clients = [connect(server) for _ in range(control.MAX_CONNECTIONS)]
        sent = [0] * len(clients)
        for _ in range(100000):
            for i, c in enumerate(clients):
                try:
                    sent[i] += c.send(request[sent[i]:sent[i] + 65536])
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
            server.service(T0)
            assert server.buffered <= control.MAX_BUFFERED
            if all(n == len(request) for n in sent):
                break
        for _ in range(200):
            server.service(T0)
        conns = list(server.conns.values())
        taken = sum(conn.taken for conn in conns)
        parsed = sum(conn.request.parser.size() for conn in conns)
        text = sum(len(conn.inbuf) for conn in conns)
        assert taken + text == server.buffered <= control.MAX_BUFFERED
        assert taken > control.MAX_BUFFERED // 2  # most of it was parsed
        assert 3 * parsed <= 4 * taken
    finally:
        server.shutdown()


def _peer_lines(count):
    lines = ["private_key=" + "11" * 32, "listen_port=51820"]
    for i in range(count):
        lines.append("public_key=" + uapi.key_to_hex(bytes([9]) + i.to_bytes(4, "big")
                                                     + bytes(27)))
        lines.append("endpoint=192.0.2.%d:%d" % (i % 250 + 1, 1024 + i))
        lines.append("allowed_ip=10.%d.%d.0/24" % (i >> 8 & 255, i & 255))
        lines.append("allowed_ip=fd00::%x/128" % i)
    return lines


def _new_device():
    return Device(crypto.load("fast"), SeededRng("control"))


def _device_with_peers(count):
    dev = _new_device()
    uapi.apply_set(dev, uapi.parse_set(_peer_lines(count)), 1.0, Output(dev))
    return dev


def _daemon_begin(dev):
    """The daemon's own requests (io/loop.py), on a device without TUN or UDP."""
    from wgedge.io import loop

    iface = loop.Interface.__new__(loop.Interface)
    iface.device, iface.udp, iface.epoll = dev, None, None
    # No sockets: a real bind of the set's listen_port would collide with whatever else on
    # the host (another test run) holds that port.
    iface._rebind = lambda port: None
    iface._ensure_udp = lambda: None
    return iface._control_begin


@unit
def test_slow_reader_of_10k_peers_gets_the_whole_answer(tmp_path):
    dev = _device_with_peers(10000)
    expected = ("\n".join(uapi_get.get_lines(dev)) + "\nerrno=0\n\n").encode()
    server = serve(tmp_path, begin=_daemon_begin(dev))
    try:
        c = connect(server)
        c.sendall(b"get=1\n\n")
        got = bytearray()
        steps = 0
        while not whole(got):
            server.service(T0)
            got += drain(c, 4096)  # a slow reader: 4 KiB per wake-up
            assert max(held(server)) <= control.REPLY_STEP + 13000  # + one piece
            steps += 1
            assert steps < 100000
        assert got == expected
        # Again, while another client removes the last 100 peers and adds others half-way:
        # the answer is whole, never half a peer, without the removed ones and the new ones.
        c.sendall(b"get=1\n\n")
        got = bytearray()
        for _ in range(20):
            server.service(T0)
            got += drain(c, 4096)
        other = connect(server)
        change = "".join("public_key=%s\nremove=true\n" % uapi.key_to_hex(
            bytes([9]) + i.to_bytes(4, "big") + bytes(27)) for i in range(9900, 10000))
        change += "public_key=%s\nallowed_ip=10.250.0.1/32\n" % ("ee" * 32)
        assert exchange(server, other, ("set=1\n" + change + "\n").encode()) == b"errno=0\n\n"
        while not whole(got):
            server.service(T0)
            got += drain(c, 4096)
        text = bytes(got).decode()
        assert text.count("public_key=") == 9900 and "ee" * 32 not in text
        assert text.count("allowed_ip=") == 2 * 9900
        assert text.count("\nprotocol_version=1\n") == 9900
    finally:
        server.shutdown()


class _Counting:
    """Wraps a `begin`: counts the bytes of lines its requests are fed, and their finishes."""

    def __init__(self, begin):
        self.begin = begin
        self.fed = 0
        self.finished = 0

    def __call__(self, op):
        request = self.begin(op)
        counter = self

        class Counted:
            def feed(self, lines):
                counter.fed += sum(len(line) + 1 for line in lines)
                request.feed(lines)

            def finish(self):
                counter.finished += 1
                return request.finish()
        return Counted()


@unit
def test_a_10k_peer_set_then_a_get_at_once(tmp_path):
    """A client sends a set of 10k peers and, right behind it, a get. The set is parsed as
    it arrives, at most READ_CHUNK of lines per wake-up (the old server parsed all 1.7 MB in
    the wake-up of its blank line), then applied whole; the get that follows lists exactly
    what a device given the same set directly shows."""
    lines = _peer_lines(10000)
    expected = _new_device()
    uapi.apply_set(expected, uapi.parse_set(lines), 1.0, Output(expected))
    dev = _new_device()
    begin = _Counting(_daemon_begin(dev))
    server = serve(tmp_path, begin=begin)
    try:
        c = connect(server)
        request = ("set=1\n" + "\n".join(lines) + "\n\nget=1\n\n").encode()
        sent, got, steps, fed_per_step = 0, bytearray(), 0, []
        while not (got.startswith(b"errno=0\n\n") and whole(got[10:])):
            try:
                sent += c.send(request[sent:sent + 200000])
            except BlockingIOError:
                pass
            fed = begin.fed
            server.service(T0)
            fed_per_step.append(begin.fed - fed)
            got += drain(c)
            steps += 1
            assert steps < 100000
        assert sent == len(request) and begin.finished == 2
        assert bytes(got) == b"errno=0\n\n" + (
            "\n".join(uapi_get.get_lines(expected)) + "\nerrno=0\n\n").encode()
        assert len(dev.peers) == 10000
        assert sum(fed_per_step) == len(request) - len(b"set=1\n\nget=1\n\n")
        assert max(fed_per_step) <= control.READ_CHUNK
        assert len([n for n in fed_per_step if n]) >= sum(fed_per_step) // control.READ_CHUNK
        assert server.buffered == 0
    finally:
        server.shutdown()


@unit
def test_a_bug_in_the_handler_closes_that_connection_and_logs_no_value(tmp_path, daemon_log):
    def buggy(op, lines):
        if op == "set=1":
            raise ValueError("private_key=" + CANARY)

        def pieces():
            yield b"a=1\n"
            raise KeyError(CANARY)
        return pieces(), True

    server = serve(tmp_path, buggy)
    try:
        a, b = connect(server), connect(server)
        a.sendall(b"set=1\nx=1\n\n")
        b.sendall(b"get=1\n\n")
        for _ in range(10):
            server.service(T0)
        assert closed_by_server(a)
        assert not whole(drain(b)) and closed_by_server(b)
        assert "ERROR: control: internal error" in daemon_log.text
        assert "ValueError at" in daemon_log.text and "KeyError at" in daemon_log.text
        for form in CANARY_FORMS:
            assert form not in daemon_log.text
    finally:
        server.shutdown()


def _deep_bug(value, depth):
    if depth:
        return _deep_bug(value, depth - 1)
    return {}[value]


def test_where_it_failed_names_what_traceback_names_innermost_first():
    """The traceback module is the reference (the daemon does without it): file, line and
    function of each frame, innermost first, and the type, never the message."""
    try:
        try:
            _deep_bug("private_key=" + CANARY, 2)
        except KeyError:
            raise ValueError(CANARY) from None
    except ValueError as exc:
        bug = exc
    try:
        _deep_bug("private_key=" + CANARY, 2)
    except KeyError as exc:
        deep = exc
    for exc in (bug, deep, ValueError("never raised")):
        frames = traceback.extract_tb(exc.__traceback__)
        want = " < ".join("%s:%d in %s" % (os.path.basename(f.filename), f.lineno, f.name)
                          for f in reversed(frames))
        assert control.where_it_failed(exc) == "%s at %s" % (type(exc).__name__, want or "?")
    assert control.where_it_failed(deep).startswith(
        "KeyError at test_control.py:%d in _deep_bug < " % (_deep_bug.__code__.co_firstlineno + 3))
    assert control.where_it_failed(deep).count("in _deep_bug") == 3
    for form in CANARY_FORMS:
        assert form not in control.where_it_failed(bug) + control.where_it_failed(deep)


def test_malformed_control_lines_log_no_key_material(daemon_log):
    """The daemon's handler logs what was wrong with a request, never a value from it."""
    dev = _device_with_peers(1)
    begin = _daemon_begin(dev)
    hexkey = CANARY_RAW.hex()
    for op, lines in (
            ("set=1", ["private_key=%s garbage" % CANARY]),
            ("set=1", ["private_key=%s" % hexkey[:-1] + "z"]),
            ("set=1", ["unknown_key=%s" % CANARY]),
            ("set=1", ["%s" % CANARY]),  # a pasted key: base64 ends in '='
            ("set=1", [hexkey]),
            ("set=1", ["public_key=" + "00" * 32, "endpoint=" + CANARY]),
            ("set=1", ["public_key=" + "00" * 32, "allowed_ip=" + hexkey]),
            ("set=1", ["listen_port=" + hexkey]),
            (CANARY, []),
            ("private_key=" + hexkey, ["set=1"]),
            ("get=1", ["private_key=" + hexkey])):
        request = begin(op)
        request.feed(lines)
        reply, _ = request.finish()
        assert re.match(rb"errno=-\d+\n\n$", reply)
    assert daemon_log.text.count("ERROR: control: refused set") == 8
    assert daemon_log.text.count("ERROR: control: unknown operation") == 2
    for form in CANARY_FORMS:
        assert form not in daemon_log.text, daemon_log.text


# --- the daemon in namespaces ------------------------------------------------------------------
# Each daemon runs in its own network namespace with private run directories (a tmpfs in a mount
# namespace of its own), so its control socket and pid file are no one else's, whatever else
# runs on the host. The test reaches the socket through /proc/PID/root.

PINGS = 200  # one every 50 ms: 10 s of traffic under each attack
STALL = 2.0  # s: no ping may wait longer (the old code froze the loop for 5 s and more)
RSS_BOUND = 40 << 20  # daemon RSS growth while oversized requests arrive (old code: 180 MB)


class Site:
    """A network namespace whose commands see private run directories (tests/private_run.py),
    so both ends of the tunnel can use one interface name, as two routers would."""

    def __init__(self, nets, label):
        self.ns = nets.ns(label)
        self.run = PrivateRun()

    def sh(self, *args, **kwargs):
        return self.run.sh(*args, ns=self.ns, **kwargs)

    def popen(self, *args):
        return subprocess.Popen(self.run.cmd(args, self.ns), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def path(self, inside):
        return self.run.path(inside)

    def close(self):
        self.run.close()


class Tunnel:
    """Two wgedge daemons, A and B, with a tunnel between them; A is the one attacked."""

    def __init__(self, nets, tmp_path):
        self.nets = nets
        self.a, self.b = Site(nets, "ca"), Site(nets, "cb")
        nets.link(self.a.ns, self.b.ns, "10.203.0.1", "10.203.0.2")
        keys = genkey(), genkey()
        self.ifname = "wc" + nets.tag[:4]
        self.log = tmp_path / "a.log"
        env = dict(os.environ, PYTHONPATH=ROOT)
        for i, site in enumerate((self.a, self.b)):
            log = tmp_path / ("ab"[i] + ".log")
            site.sh(sys.executable, "-m", "wgedge", "-v", "--log", str(log), self.ifname,
                    env=env)
            nets.ifnames.append((site.ns, self.ifname, "wgedge"))
            key = tmp_path / ("key" + "ab"[i])
            key.write_text(keys[i][0] + "\n")
            key.chmod(0o600)
            site.sh("wg", "set", self.ifname, "private-key", str(key), "listen-port",
                    str(51900 + i), "peer", keys[1 - i][1], "allowed-ips",
                    "10.204.0.%d/32" % (2 - i), "endpoint", "10.203.0.%d:%d" % (2 - i, 51901 - i))
            site.sh("ip", "addr", "add", "10.204.0.%d/24" % (i + 1), "dev", self.ifname)
            site.sh("ip", "link", "set", self.ifname, "up")
        self.sock = self.a.path("/run/wireguard/%s.sock" % self.ifname)
        with open(self.a.path("/run/wgedge/%s.pid" % self.ifname)) as f:
            self.pid = int(f.read())
        assert self.ping_while(lambda: None, count=5) == []

    def wg_show(self):
        return self.a.sh("wg", "show", self.ifname, check=False, timeout=20)

    def rss(self):
        with open("/proc/%d/status" % self.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) << 10

    def ping_while(self, attack, count=PINGS):
        """Ping B from A every 50 ms while `attack()` runs; -> the problems seen (lost pings,
        pings that waited longer than STALL), [] when the tunnel flowed."""
        ping = self.a.popen("ping", "-n", "-i", "0.05", "-c", str(count), "-W", "2",
                            "10.204.0.2")
        try:
            attack()
        finally:
            out, _ = ping.communicate(timeout=count * 0.05 + 60)
        times = {int(m.group(1)): float(m.group(2)) for m in re.finditer(
            r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms", out)}
        problems = ["ping %d lost" % seq for seq in range(1, count + 1) if seq not in times]
        problems += ["ping %d waited %.0f ms" % (seq, ms) for seq, ms in sorted(times.items())
                     if ms > STALL * 1000]
        return problems

    def close(self):
        self.a.close()
        self.b.close()


@pytest.fixture
def tunnel(nets, tmp_path):
    t = Tunnel(nets, tmp_path)
    try:
        yield t
    finally:
        t.close()


def _connect(path, timeout=None):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(timeout)
    c.connect(path)
    return c


def _in_background(body):
    """Run body(stop) in a thread until the returned stop() is called; stop() re-raises."""
    stop = threading.Event()
    errors = []

    def run():
        try:
            body(stop)
        except Exception as exc:  # noqa: BLE001 - reported by stop()
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def finish():
        stop.set()
        thread.join(30)
        assert not thread.is_alive()
        if errors:
            raise errors[0]
    return finish


@pytest.mark.root
def test_tunnel_flows_while_clients_pipeline_gets_without_reading(tunnel):
    def greedy(stop):
        """Four clients pipeline gets and never read; one the daemon closes comes back."""
        conns = []
        while not stop.is_set():
            while len(conns) < 4:
                conns.append(_connect(tunnel.sock, timeout=0))
            for c in list(conns):
                try:
                    c.send(b"get=1\n\n" * 500)
                except BlockingIOError:
                    pass
                except OSError:
                    conns.remove(c)
                    c.close()
            stop.wait(0.05)
        for c in conns:
            c.close()

    shows = []

    def attack():
        finish = _in_background(greedy)
        try:
            for _ in range(5):
                time.sleep(1.5)
                shows.append(tunnel.wg_show().returncode)
        finally:
            finish()

    assert tunnel.ping_while(attack) == []
    assert shows == [0] * 5  # and `wg` was answered throughout


@pytest.mark.root
def test_tunnel_flows_and_wg_answers_with_16_idle_clients(tunnel):
    idle = [_connect(tunnel.sock) for _ in range(16)]
    shows = []

    def attack():
        for _ in range(4):
            time.sleep(2)
            res = tunnel.wg_show()
            shows.append(res.returncode)
            if res.returncode == 0:
                assert "latest handshake" in res.stdout
            # The idle ones come back, as a hostile client would.
            for i, c in enumerate(idle):
                if closed_by_server(c):
                    c.close()
                    idle[i] = _connect(tunnel.sock)

    try:
        assert tunnel.ping_while(attack) == []
    finally:
        for c in idle:
            c.close()
    assert shows == [0] * 4


def _peers_config(count):
    lines = []
    for i in range(count):
        key = base64.b64encode(bytes([5]) + i.to_bytes(4, "big") + bytes(27)).decode()
        lines.append("[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.0/24, fd10::%x/128\n"
                     "Endpoint = 192.0.2.%d:%d\n" % (key, 100 + (i >> 8), i & 255, i,
                                                     i % 250 + 1, 1024 + i))
    return "\n".join(lines)


@pytest.mark.root
def test_slow_reader_of_10k_peers_gets_all_while_the_tunnel_flows(tunnel, tmp_path):
    conf = tmp_path / "peers.conf"
    conf.write_text(_peers_config(10000))
    tunnel.a.sh("wg", "addconf", tunnel.ifname, str(conf), timeout=120)
    replies = []

    def slow_reader():
        """8 KiB every 10 ms: 3.5 MB take about 5 s (the old code froze for all of it)."""
        for _ in range(2):
            c = _connect(tunnel.sock, timeout=30)
            c.sendall(b"get=1\n\n")
            got = bytearray()
            while not whole(got):
                chunk = c.recv(8192)
                if not chunk:
                    break
                got += chunk
                time.sleep(0.01)
            c.close()
            replies.append(bytes(got))

    assert tunnel.ping_while(slow_reader) == []
    shown = tunnel.a.sh("wg", "showconf", tunnel.ifname, timeout=60).stdout
    for reply in replies:
        assert whole(reply), "incomplete reply: %d bytes" % len(reply)
        text = reply.decode()
        assert text.count("public_key=") == 10001
        assert text.count("allowed_ip=") == 2 * 10000 + 1
        assert text.count("\nprotocol_version=1\n") == 10001
    assert shown.count("[Peer]") == 10001


@pytest.mark.root
def test_rss_bounded_while_oversized_requests_arrive(tunnel):
    """16 clients, each sending an 8 MiB request with no end, twice (issue 12: RSS grew from
    25 to 205 MB). The daemon's RSS grows by less than RSS_BOUND and the tunnel flows."""
    base = tunnel.rss()
    peak = [base]
    chunk = b"private_key=" + b"a" * (1 << 20)

    def flood():
        def one():
            for _ in range(2):
                c = _connect(tunnel.sock, timeout=30)
                try:
                    for _ in range(8):
                        c.sendall(chunk)
                except OSError:
                    pass  # closed by the daemon: the point
                c.close()

        threads = [threading.Thread(target=one, daemon=True) for _ in range(16)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], tunnel.rss())
            time.sleep(0.02)
        for t in threads:
            t.join()
        for _ in range(50):
            peak[0] = max(peak[0], tunnel.rss())
            time.sleep(0.02)

    assert tunnel.ping_while(flood) == []
    grew = peak[0] - base
    print("daemon RSS %.1f MB, peak %.1f MB during the flood (+%.1f MB)"
          % (base / 1e6, peak[0] / 1e6, grew / 1e6))
    assert grew < RSS_BOUND, "RSS grew by %.1f MB" % (grew / 1e6)
    assert tunnel.wg_show().returncode == 0


@pytest.mark.root
def test_key_canary_in_malformed_control_lines_never_logged(tunnel):
    """Issue 12, item 7: a malformed control line used to be logged whole. With -v (debug)
    the daemon logs that it refused, never the value."""
    hexkey = CANARY_RAW.hex()
    for request in ("set=1\nprivate_key=%s garbage\n\n" % CANARY,
                    "set=1\nprivate_key=%s\n\n" % CANARY,
                    "set=1\nunknown_key=%s\n\n" % CANARY,
                    "set=1\nlisten_port=%s\n\n" % hexkey,
                    "set=1\n%s\n\n" % CANARY,
                    "set=1\n%s\n\n" % hexkey,
                    "set=1\npublic_key=%s\nendpoint=%s\n\n" % ("00" * 32, CANARY),
                    "%s\n\n" % CANARY,
                    "%s\n\n" % hexkey,
                    "private_key=%s\n\n" % hexkey):
        c = _connect(tunnel.sock, timeout=10)
        c.sendall(request.encode())
        reply = c.recv(100)
        c.close()
        assert re.match(rb"errno=-\d+\n\n$", reply), (request, reply)
    assert tunnel.wg_show().returncode == 0
    text = tunnel.log.read_text()
    assert text.count("control: refused set") == 7
    assert text.count("control: unknown operation") == 3
    for form in CANARY_FORMS:
        assert form not in text, "key material in the daemon log"
