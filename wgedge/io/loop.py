"""One epoll loop drives one WireGuard interface: TUN, UDP, control socket, timers, signals.

    UDP socket --> device.receive_trains(batch, now)    --> TUN writes, UDP sends
    TUN device --> device.send_packets(batch, now)      --> UDP sends
    timer      --> device.handle_timer(now)             (epoll timeout = next deadline)
    wg tool    --> control.service(now) --> uapi --> device   (io/control.py)

Each descriptor is mapped to its handler once, when it is registered (`_handlers`; the UDP
handlers carry their socket and batch size): an event costs one dict lookup and one call.

No busy waiting: with nothing to do, epoll sleeps until the next deadline, the core's or the
control socket's (or forever). This module only moves bytes and re-arms one timer; every
protocol decision is in the core. The control socket shares the loop with the tunnel, so it
never blocks and does a bounded amount per wake-up (io/control.py): a `set` is parsed line by
line as it arrives (uapi.SetParser) and applied whole at its blank line, and a large `get` is
sent piece by piece as the client reads it (uapi_get.get_pieces).

Handshake events and drops that the core reports in each Output are logged, rate-limited, by
io/events.py, which also answers `wgedge-status=1`: a request `wg` never sends, carrying what
`get` cannot (drop counters by reason, the last handshake failures) without adding keys to
`get`'s answer that `wg` would not expect (docs/status.md).

Log lines never carry key material: a refused control request is logged by what was wrong
(line number, key name, length), and an internal error by its type and where it happened,
not by its message.
"""

import errno
import os
import select
import signal
import time

from wgedge.core import consts as C
from wgedge.core import uapi, uapi_get
from wgedge.core.device import Device, Output
from wgedge.io.control import ControlServer, socket_path, where_it_failed
from wgedge.io.events import STATUS_OP, EventLog
from wgedge.io.logger import log
from wgedge.io.route import RouteMonitor
from wgedge.io.tun import Tun
from wgedge.io.udp import Udp
from wgedge.io.unreachable import Unreachable

BATCH = 192  # packets or datagrams taken from one fd per wake-up (docs/performance.md)
# From a handshake socket (io/udp.py): what the core looks at per batch, so a flood costs
# little per wake-up; the rest waits or is dropped by the kernel from that socket's queue,
# never from the data socket's. Reading more only to drop it cost a system call each.
HANDSHAKE_BATCH = C.MAX_HANDSHAKES_PER_BATCH


class _SetRequest:
    """`set=1`: each line is parsed as it arrives, so a large set costs a bounded amount per
    wake-up while it comes in; at the blank line it is applied whole or refused whole."""

    def __init__(self, iface):
        self.iface = iface
        self.parser = uapi.SetParser()
        self.bug = None  # a bug in the parser: answered as one in the apply would be

    def feed(self, lines):
        if self.bug is None:
            try:
                self.parser.feed(lines)
            except Exception as exc:  # noqa: BLE001 - reported by finish()
                self.bug = exc
                self.parser = None

    def finish(self):
        return self.iface._apply_set(self.parser, self.bug)


class _ReplyRequest:
    """`get=1` and `wgedge-status=1` (io/events.py): they take no lines (wireguard-go answers
    -EPROTO to any and closes); the answer, `pieces()` then errno=0, is made piece by piece
    as the client takes it."""

    def __init__(self, pieces):
        self.pieces = pieces
        self.lines = False

    def feed(self, lines):
        self.lines = self.lines or any(lines)

    def finish(self):
        if self.lines:
            return b"errno=%d\n\n" % uapi.EPROTO, False
        return self._reply(), True

    def _reply(self):
        for piece in self.pieces():
            yield piece.encode()
        yield b"errno=0\n\n"


class _UnknownRequest:
    def __init__(self, op):
        self.length = len(op)  # never the line itself: it may be a pasted key

    def feed(self, lines):
        pass

    def finish(self):
        log.error("control: unknown operation (a line of %d characters); closing the "
                  "connection", self.length)
        return b"errno=%d\n\n" % uapi.EPROTO, False


class Interface:
    def __init__(self, ifname, crypto, control_dir=None):
        self.ifname = ifname
        self.crypto = crypto
        self.tun = Tun(ifname)
        self.device = Device(crypto, os.urandom)
        self.events = EventLog(self.device)
        self.unreachable = Unreachable(self.tun)  # ICMP errors for packets no peer covers
        self.udp = None
        self._refresh_clock()
        kwargs = {} if control_dir is None else {"directory": control_dir}
        try:
            self.control = ControlServer(socket_path(ifname, **kwargs), self._control_begin)
        except Exception:
            self.tun.close()
            raise
        self.running = False
        self.stop_requested = False  # a stop() before run(): run returns at once
        self.epoll = None
        self._handlers = {}  # fd -> handler(mask, now), made once per fd (run, _watch_udp)
        self._udp_fds = []
        self._control_ready = False
        self.routes = None  # route and address changes (io/route.py), once run() starts
        self._wake_r = self._wake_w = -1

    # --- clock -------------------------------------------------------------------------------
    def _refresh_clock(self):
        now = time.monotonic()
        self.device.wall_offset = time.time() - now
        return now

    # --- control requests ----------------------------------------------------------------------
    def _control_begin(self, op):
        """A request's first line -> what takes its further lines (`feed`) and answers it
        (`finish() -> (reply bytes or an iterator of bytes pieces, keep connection)`)."""
        if op == "set=1":
            return _SetRequest(self)
        if op == "get=1":  # what a get that spans wake-ups shows: see uapi_get.get_pieces
            return _ReplyRequest(lambda: uapi_get.get_pieces(self.device))
        if op == STATUS_OP:
            return _ReplyRequest(self.events.status_lines)
        return _UnknownRequest(op)

    def _apply_set(self, parser, bug):
        """A set whose lines have all been parsed: apply it whole, or refuse it whole."""
        now = self._refresh_clock()
        try:
            if bug is not None:
                raise bug
            parsed = parser.finish()
            out = Output(self.device)
            uapi.apply_set(self.device, parsed, now, out, bind=self._rebind)
        except uapi.UapiError as exc:
            log.error("control: refused set: %s", exc.message)
            return b"errno=%d\n\n" % exc.errno, True
        except Exception as exc:  # noqa: BLE001 - a bug must not take the tunnel down
            log.error("control: internal error applying a set request: %s",
                      where_it_failed(exc))
            return b"errno=%d\n\n" % uapi.ENOANO, True
        if self.udp is not None and self.udp.fwmark != self.device.fwmark:
            self.udp.set_fwmark(self.device.fwmark)
        self._ensure_udp()
        if self.udp is not None:  # the peers' endpoint routes: nested in a tunnel?
            self.udp.watch_endpoints(self._peer_endpoints())
        self._emit(out)
        return b"errno=0\n\n", True

    def _new_udp(self, port):
        self.udp = Udp(port, self.device.fwmark)
        self.udp.on_too_big = self._nested_too_big  # counted and logged as the core's drops

    def _rebind(self, port):
        if self.udp is None:
            self._new_udp(port)
            self._watch_udp()
            self.device.listen_port = self.udp.port
        else:
            self.udp.bind(port)
            self._watch_udp()

    def _ensure_udp(self):
        if self.udp is None and self.device.private_key is not None:
            self._new_udp(self.device.listen_port)
            self.device.listen_port = self.udp.port
            self._watch_udp()
        elif self.udp is not None:
            self.device.listen_port = self.udp.port

    def _watch_udp(self):
        if self.epoll is None:
            return
        for fd in self._udp_fds:
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass
            self._handlers.pop(fd, None)
        self._udp_fds = [s.fileno() for s in self.udp.sockets]
        handshake = set(self.udp.handshake_sockets)
        for sock in self.udp.sockets:
            self.epoll.register(sock.fileno(), select.EPOLLIN)
            self._handlers[sock.fileno()] = self._udp_handler(
                sock, HANDSHAKE_BATCH if sock in handshake else BATCH)

    def _udp_handler(self, sock, batch_size):
        recv_batch = self.udp.recv_batch
        receive_trains = self.device.receive_trains
        learn_sources = self.udp.learn_sources

        def on_udp(mask, now):
            batch = recv_batch(sock, batch_size)
            if batch:
                out = receive_trains(batch, now)
                if out.authenticated:
                    learn_sources(out.authenticated, self._peer_endpoints)
                self._emit(out)
        return on_udp

    def _on_tun(self, mask, now):
        if mask & (select.EPOLLERR | select.EPOLLHUP):
            log.info("interface %s is gone, stopping", self.ifname)
            self.running = False
            return
        try:
            packets = self.tun.read_batch(BATCH)
        except OSError as exc:
            if exc.errno in (errno.EBADFD, errno.EIO, errno.ENXIO):
                log.info("interface %s was deleted, stopping", self.ifname)
                self.running = False
                return
            raise
        if packets:
            self._emit(self.device.send_packets(packets, now))

    def _on_control(self, mask, now):
        self._control_ready = True

    def _on_wake(self, mask, now):
        try:
            os.read(self._wake_r, 64)
        except OSError:
            pass

    # --- data path -----------------------------------------------------------------------------
    def _emit(self, out):
        if out.events or out.dropped:
            try:
                if out.unreachable:  # only with a no-route drop: off the common path
                    self.unreachable.answer(out.unreachable)
                self.events.handle(out)
            except Exception as exc:  # noqa: BLE001 - a bug in logging must not stop the tunnel
                log.error("internal error in events or ICMP answers: %s", where_it_failed(exc))
        if out.tun:
            self.tun.write_batch(out.tun)
        if self.udp is not None:
            if out.udp:
                self.udp.send_batch(out.udp)
            if out.trains:
                self.udp.send_trains(out.trains)

    def stop(self, *_):
        self.running = False
        self.stop_requested = True
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def run(self, ready=None):
        """Serve until stopped by a signal or the interface disappearing."""
        self.epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.epoll.register(self._wake_r, select.EPOLLIN)
        self._handlers = {self._wake_r: self._on_wake, self.tun.fileno(): self._on_tun,
                          self.control.fileno(): self._on_control}
        self.epoll.register(self.tun.fileno(), select.EPOLLIN)
        self.epoll.register(self.control.fileno(), select.EPOLLIN)
        self._watch_routes()
        self._read_mtu()
        if self.udp is not None:
            self._watch_udp()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        self.running = not self.stop_requested
        if ready is not None:
            ready()
        device = self.device
        control = self.control
        handlers = self._handlers
        try:
            while self.running:
                deadline = device.get_timer()
                control_deadline = control.next_deadline()
                if control_deadline is not None and (deadline is None
                                                     or control_deadline < deadline):
                    deadline = control_deadline
                summary_due = self.events.next_deadline()
                if summary_due is not None and (deadline is None or summary_due < deadline):
                    deadline = summary_due
                routes_due = self._routes_deadline()
                if routes_due is not None and (deadline is None or routes_due < deadline):
                    deadline = routes_due
                if deadline is None:
                    timeout = -1
                else:
                    timeout = max(0.0, deadline - time.monotonic()) + 0.0005
                try:
                    events = self.epoll.poll(timeout, 64)
                except InterruptedError:
                    continue
                now = self._refresh_clock()
                self._control_ready = control_deadline is not None and control_deadline <= now
                for fd, mask in events:
                    handler = handlers.get(fd)
                    if handler is not None:
                        handler(mask, now)
                        if not self.running:
                            break
                if self._control_ready and self.running:
                    control.service(now)
                deadline = device.get_timer()
                if deadline is not None and deadline <= now:
                    self._emit(device.handle_timer(now))
                if summary_due is not None and summary_due <= now:
                    self.events.flush(now)
                if routes_due is not None and routes_due <= now:
                    self._routes_changed(now)
        finally:
            self.close()

    # --- route and address changes (io/route.py) ----------------------------------------------
    def _watch_routes(self):
        try:
            self.routes = RouteMonitor()
        except OSError as exc:
            log.warning("no rtnetlink socket (%s): reply sources will not follow route "
                        "changes", exc.strerror)
            return
        self.epoll.register(self.routes.fileno(), select.EPOLLIN)
        self._handlers[self.routes.fileno()] = self._on_route

    def _on_route(self, mask, now):
        if not self.routes.readable():
            self._unwatch_routes()
        elif self.routes.links_changed:
            self.routes.links_changed = False
            self._read_mtu()

    def _read_mtu(self):
        """Pad to the interface's MTU as it is now, as the kernel pads to the route's: past
        it a full-sized packet's datagram outgrows a tunnel this one runs in (io/nested.py)."""
        mtu = self.tun.mtu()
        if mtu is not None and mtu > 0:
            self.device.mtu = mtu

    def _unwatch_routes(self):
        log.warning("the rtnetlink socket failed: reply sources no longer follow route "
                    "changes")
        fd = self.routes.fileno()
        self.epoll.unregister(fd)
        del self._handlers[fd]
        self.routes.close()
        self.routes = None
        if self.udp is not None:
            self.udp.routes_changed()  # one last re-check for what changed meanwhile

    def _routes_deadline(self):
        """When route work is due: now while sources wait for a re-check, else when a
        change may be acted on (io/route.py paces re-checks by the lookups they cost)."""
        if self.udp is not None and self.udp.recheck_pending:
            return 0.0
        if self.routes is None:
            return None
        return self.routes.next_deadline(self._recheck_cost())

    def _recheck_cost(self):
        return self.udp.recheck_cost if self.udp is not None else 0

    def _routes_changed(self, now):
        if self.routes is not None and self.routes.due(now, self._recheck_cost()) \
                and self.udp is not None:
            self.udp.routes_changed()
        if self.udp is not None:
            self.udp.recheck_sources()

    def _nested_too_big(self, endpoint, n):
        """Datagrams too big to enter the tunnel they nest in were dropped (io/nested.py)."""
        out = Output(self.device)
        for _ in range(n):
            out.drop(C.DROP_NESTED_TOO_BIG)
        self.events.handle(out)

    def _peer_endpoints(self):
        return {p.endpoint for p in self.device.peers.values() if p.endpoint is not None}

    def close(self):
        self.control.shutdown()
        self.unreachable.close()
        if self.routes is not None:
            self.routes.close()
            self.routes = None
        if self.udp is not None:
            self.udp.close()
        self.tun.close()
        if self.epoll is not None:
            self.epoll.close()
            self.epoll = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
