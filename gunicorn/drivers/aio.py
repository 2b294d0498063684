"""The asyncio driver: one ``asyncio.Protocol`` per connection, feeding the one core.

Theory of operation
-------------------
``HTTPProtocol`` receives the client's bytes (``data_received``), gives them to the
connection lifecycle (PROXY header, h2c preface sniffing) and then to the core's HTTP/1.1
connection, and starts an ASGI cycle (``gunicorn.asgi.http.HTTPCycle``) as a task for each
request the core returns. While a request is served the protocol is that request's
``HTTPStream``: the cycle pulls body pieces out of the core (reading resumes when it
waits; it pauses when more than ``READ_LIMIT`` bytes wait unparsed) and hands response
events in; their bytes go to the transport (the response head waits for the first body
bytes, so a small response is one write). As soon as a response is complete the next
request (pipelined, or the next one on a kept-alive connection) is served, even when the
application's task is still running.

An HTTP/2 connection (ALPN, prior knowledge or ``Upgrade: h2c``) is handed to
``gunicorn.drivers.aio_h2``; a WebSocket handshake to ``gunicorn.asgi.websocket``: from
then on the protocol only passes bytes to that handler (its ``sink``).

Deadlines are checked by the worker once a second (``check_deadline``): ``timeout`` to
receive a request head, ``keepalive`` between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING, Any

from gunicorn.asgi.http import HTTPCycle
from gunicorn.asgi.scope import ConnectionScope, address, http_scope
from gunicorn.drivers import aio_handoff as handoff
from gunicorn.drivers.aio_sendfile import sendfile
from gunicorn.http.connection import NEED_DATA
from gunicorn.http.error_page import body_length
from gunicorn.http.errors import LocalProtocolError, ProtocolError, ResponseStateError
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Request,
    Response,
)
from gunicorn.lifecycle.logs import log_rejected, log_socket_error
from gunicorn.lifecycle.session import Session

if TYPE_CHECKING:
    from gunicorn.drivers.aio_server import AsyncServer

# Unparsed bytes (a body the application has not read yet, pipelined requests) above
# which reading pauses until the application catches up.
READ_LIMIT = 262144
# After an error answer, bytes and seconds given to the client's unread request before
# the close (so it sees the answer rather than a reset).
LINGER_BYTES = 65536
LINGER_SECONDS = 1.0
# On a graceful stop, how long a connection accepted but not yet read gets for its request.
DRAIN_FRESH_SECONDS = 2.0
_EXTENSIONS_H1: dict[str, Any] = {"http.response.pathsend": {}, "http.response.trailers": {}}
_END = EndOfMessage()


class HTTPProtocol(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    _draining = False  # a graceful stop waits for this connection's first request

    def __init__(self, server: AsyncServer, listener: Any) -> None:
        self.server = server
        self.listener = listener
        self.loop = server.loop
        self.transport: Any = None
        self.session: Session = None  # type: ignore[assignment]
        self.conn: Any = None
        self.scope_base: ConnectionScope = None  # type: ignore[assignment]
        self.cycle: HTTPCycle | None = None
        self.sink: Any = None  # the HTTP/2 or WebSocket handler once switched
        self.http_version = "1.1"
        self.disconnected = False
        self.write_paused = False
        self.deadline: float | None = None
        self._head = b""
        self._head_started = False
        self._reading_paused = False
        self._body_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._done_waiter: asyncio.Future[None] | None = None
        self._must_close = False
        self._lingering = False
        self._sniffed: bytes | None = None
        self._eof = False
        self._write_stall: float | None = None  # when a client that takes nothing is dropped
        self._write_buffered = 0

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        connections = server.connections
        if len(connections) >= server.max_connections and not server.admit(self):
            transport.abort()
            self.disconnected = True
            return
        connections[self] = None
        server.metrics.connection_opened()
        peer = transport.get_extra_info("peername") or ""
        sslobj = alpn = None
        if server.ssl_context is not None:
            sslobj = transport.get_extra_info("ssl_object")
            if sslobj is not None:
                alpn = sslobj.selected_alpn_protocol()
        # No socket for the session: the ASGI scope is built from the transport's names.
        session = self.session = Session(
            None,
            peer,
            self.listener,
            server.worker,
            server.options,
            is_ssl=sslobj is not None,
            alpn=alpn,
        )
        self.scope_base = server.connection_scope(session, transport, sslobj)
        self.deadline = self.loop.time() + server.header_timeout
        if session.mode == "h2":
            handoff.switch_to_h2(self, b"", None)
        else:
            self.conn = session.h1_connection()
            if session.mode == "sniff":
                self._sniffed = b""
        if server.draining:
            # Accepted before the graceful stop began; its request is on its way.
            self.shutdown()

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.data_received(data)
            return
        if self._lingering:
            return
        session = self.session
        if session.prefix_pending:
            try:
                passed = session.feed(data)
            except ProtocolError as exc:
                self._reject(exc)
                return
            if not session.prefix_pending:
                self.scope_base.client = address(session.remote_addr)
            if passed is None:
                return
            data = passed
        if self._sniffed is not None:
            data = handoff.sniff(self, data)
            if not data:
                return
        self.conn.receive_data(data)
        if self.cycle is None:
            if not self._head_started:
                self._head_started = True
                self.deadline = self.loop.time() + self.server.header_timeout
            self._next_request()
            return
        waiter = self._body_waiter
        if waiter is not None:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if not self._reading_paused and self.conn.pending_input > READ_LIMIT:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        sink = self.sink
        if sink is not None:
            sink.eof_received()
            return True
        if self._lingering:
            return None  # close
        self._eof = True
        if self._sniffed:
            handoff.sniff(self, b"", eof=True)
        if self.conn is None:
            return None
        self.conn.receive_data(b"")
        cycle = self.cycle
        if cycle is None:
            self._next_request()
            return None if self.cycle is None else True
        # The client will send nothing more. What it sent is answered (as on the other
        # workers: pipelined requests included), but an application waiting for the
        # client (receive() after the body) hears http.disconnect, and a running one gets
        # the grace period before its task is cancelled.
        self._wake_body()
        waiter = self._done_waiter
        if waiter is not None:
            self._done_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if not cycle.finished:
            self.server.disconnected(cycle)
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.disconnected = True
        if self in self.server.connections:
            del self.server.connections[self]
            self.server.metrics.connection_closed()
        drain = self._drain_waiter
        if drain is not None:  # also the HTTP/2 streams' and the WebSocket's
            self._drain_waiter = None
            if not drain.done():
                drain.set_result(None)
        sink = self.sink
        if sink is not None:
            sink.connection_lost(exc)
            return
        self._wake_body()
        waiter = self._done_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._done_waiter = None
        cycle = self.cycle
        if cycle is not None and not cycle.finished:
            self.server.disconnected(cycle)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._write_stall = self.loop.time() + self.server.header_timeout
        self._write_buffered = self.transport.get_write_buffer_size()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._write_stall = None
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- requests ---------------------------------------------------------------------------

    def _next_request(self) -> None:
        conn = self.conn
        try:
            self.session.check_peer()
            event = conn.next_event()
        except ProtocolError as exc:
            self._reject(exc)
            return
        if type(event) is Request:
            self._start_cycle(event)
        elif event is NEED_DATA:
            if conn.pending_input > READ_LIMIT:
                # An over-long head is the core's to refuse; anything else waits.
                self.transport.pause_reading()
                self._reading_paused = True
        elif type(event) is ConnectionClosed:
            self._close()

    def _start_cycle(self, request: Request) -> None:
        server = self.server
        session = self.session
        self.deadline = None
        session.served += 1
        worker = server.worker
        worker.count_request()
        if not worker.alive or not server.keepalive:
            self.conn.close_after_response()
        upgrade = request.upgrade
        if upgrade is not None:
            if upgrade == b"websocket" and server.websocket_request(request):
                handoff.start_websocket(self, request)
                return
            if upgrade == b"h2c" and not request.has_body:
                settings = session.h2c_upgrade(request)
                if settings is not None:
                    handoff.upgrade_to_h2(self, request, settings)
                    return
        try:
            scope = http_scope(self.scope_base, request, _EXTENSIONS_H1)
        except ProtocolError as exc:  # e.g. conflicting secure_scheme_headers: a 400
            self._reject(exc)
            return
        if session.options.uwsgi:
            server.uwsgi_scope(scope, self.conn)
        cycle = self.cycle = HTTPCycle(session, self, request, scope, server.app, server.metrics)
        cycle.task = self.loop.create_task(cycle.run())

    # -- HTTPStream -------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        data = self.conn.send(event)
        if type(event) is Response:
            self._head = data
            return
        self._write_after_head(data)

    def finish(self, body: bytes) -> None:
        conn = self.conn
        data = conn.send(Data(body)) + conn.send(_END) if body else conn.send(_END)
        self._write_after_head(data)

    def _write_after_head(self, data: bytes) -> None:
        """Write ``data`` with the response head that waited for it (one write)."""
        head = self._head
        if head:
            self._head = b""
            data = head + data
        if data and not self.disconnected:
            self.transport.write(data)

    async def drain(self) -> None:
        if not self.write_paused or self.disconnected:
            return
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = self.loop.create_future()
        await waiter

    async def receive_body(self) -> tuple[bytes, bool] | None:
        conn = self.conn
        pieces: list[bytes] = []
        while True:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                log_rejected(self.session.log, self.session.client_addr, exc)
                self.write_error(exc)
                self._close()
                return None
            kind = type(event)
            if kind is Data:
                pieces.append(event.data)
                continue
            if kind is EndOfMessage:
                return b"".join(pieces), False
            if event is NEED_DATA:
                if pieces:
                    return b"".join(pieces), True
                if self.disconnected or self._eof:
                    return None
                if self._reading_paused:
                    self._reading_paused = False
                    self.transport.resume_reading()
                waiter = self.loop.create_future()
                self._body_waiter = waiter
                await waiter
                continue
            return None  # ConnectionClosed: the client left in the middle of the body

    async def wait_disconnect(self) -> None:
        if self.disconnected or self._eof:
            return
        waiter = self._done_waiter
        if waiter is None:
            waiter = self._done_waiter = self.loop.create_future()
        await waiter

    def send_continue(self) -> None:
        data = self.conn.send_continue()
        if data and not self.disconnected:
            self.transport.write(data)

    def write_error(self, exc: ProtocolError | LocalProtocolError) -> int:
        self._must_close = True
        self._head = b""
        data = self.conn.error_response(exc)
        if not data or self.disconnected:
            return 0
        self.transport.write(data)
        return body_length(data)

    def response_complete(self) -> None:
        waiter = self._done_waiter
        if waiter is not None:
            self._done_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        conn = self.conn
        if self._must_close or not conn.keep_alive or self.disconnected:
            self._close(linger=conn.request is not None and conn.request.has_body)
            return
        try:
            conn.start_next_cycle()
        except ResponseStateError:
            self._close(linger=True)
            return
        self.cycle = None
        self._head_started = conn.pending_input > 0
        self.deadline = self.loop.time() + (
            self.server.header_timeout if self._head_started else self.server.keepalive
        )
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        if self._head_started or self._eof:
            self._next_request()

    def cycle_finished(self, must_close: bool) -> None:
        if self.cycle is None or self.cycle.complete:
            return
        self._close(linger=True)

    def body_sent(self) -> int:
        return int(self.conn.body_sent)

    def trailers_allowed(self) -> bool:
        return bool(self.conn.trailers_accepted)

    async def send_file(self, path: str) -> bool:
        if self.session.is_ssl or not self.session.options.sendfile:
            return False
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            prefix, count, suffix = self.conn.file_segment(size)
            head, self._head = self._head, b""
            if head or prefix:
                self.transport.write(head + prefix)
            if count:
                try:
                    await self._flushed()
                    await sendfile(self.loop, sock.fileno(), file.fileno(), count)
                except OSError as exc:
                    log_socket_error(self.session.log, self.session.client_addr, exc)
                    self._must_close = True
                    return True
            if suffix and not self.disconnected:
                self.transport.write(suffix)
        return True

    async def _flushed(self) -> None:
        """Wait until the transport wrote everything it holds (before a sendfile)."""
        transport = self.transport
        if not transport.get_write_buffer_size():
            return
        high, low = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=1, low=0)
        try:
            while transport.get_write_buffer_size() and not self.disconnected:
                self.write_paused = True
                await self.drain()
        finally:
            transport.set_write_buffer_limits(high=high, low=low)

    # -- Channel (what a WebSocket or HTTP/2 handler writes through) ----------------------

    def write(self, data: bytes) -> None:
        if not self.disconnected:
            self.transport.write(data)

    def pause_reading(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def closed(self) -> bool:
        return self.disconnected or self.transport is None or self.transport.is_closing()

    def extra(self, name: str) -> Any:
        return self.transport.get_extra_info(name)

    # -- closing ----------------------------------------------------------------------------

    def _wake_body(self) -> None:
        waiter = self._body_waiter
        if waiter is not None:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _reject(self, exc: ProtocolError) -> None:
        log_rejected(self.session.log, self.session.client_addr, exc)
        self.write_error(exc)
        self._close(linger=True)

    def _close(self, linger: bool = False) -> None:
        """Close once what is queued is written; with ``linger`` the client's unread
        bytes are read and dropped for a while first (so it sees our answer)."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        if linger and not self._eof and not self.session.is_ssl and transport.can_write_eof():
            self._lingering = True
            self.deadline = self.loop.time() + LINGER_SECONDS
            if self._reading_paused:
                self._reading_paused = False
                transport.resume_reading()
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
                return
        transport.close()

    def check_deadline(self, now: float) -> None:
        """Called by the worker about once a second."""
        if self._write_stall is not None and self._write_stalled(now):
            return
        deadline = self.deadline
        if deadline is None or deadline > now:
            return
        sink = self.sink
        if sink is not None:
            check = getattr(sink, "check_deadline", None)
            if check is not None:
                check(now)
            return
        if self._sniffed is not None:
            handoff.sniff(self, b"", eof=False, give_up=True)
            return
        if self._lingering or (self.cycle is None and self.transport is not None):
            self.deadline = None
            self.transport.close()

    def _write_stalled(self, now: float) -> bool:
        """The send timeout of the threaded workers (``timeout``): a client that took no
        byte of what waits for it for that long is dropped (HTTP/1.1 and HTTP/2 alike)."""
        buffered = self.transport.get_write_buffer_size()
        if buffered < self._write_buffered:  # it took some: still reading
            self._write_buffered = buffered
            self._write_stall = now + self.server.header_timeout
            return False
        if self._write_stall is None or self._write_stall > now:
            return False
        self._write_stall = None
        from gunicorn.drivers.blocking import reset_on_close

        stalled = TimeoutError(f"took nothing for {self.server.header_timeout:g}s, dropped")
        log_socket_error(self.session.log, self.session.client_addr, stalled)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            reset_on_close(sock)  # and what the kernel still holds for this client
        self.transport.abort()
        return True

    def shutdown(self, websockets: bool = False) -> None:
        """Graceful stop: close when idle, else after the current response. A WebSocket
        is closed (1001) only when ``websockets`` (at the end of the grace period)."""
        sink = self.sink
        if sink is not None:
            if websockets or self.http_version == "2":
                sink.shutdown()
            return
        if self.cycle is None:
            conn = self.conn
            if (
                conn is None
                or self._eof
                or (self.session.served and not self._head_started and not conn.pending_input)
            ):
                self._close()  # kept alive between requests: the client may retry
                return
            # Accepted and its first request not read yet (or a head half read): that
            # request is on its way, and closing now would lose it. It gets a moment to
            # arrive, and is then answered with Connection: close.
            self._draining = True
            limit = self.loop.time() + DRAIN_FRESH_SECONDS
            if self.deadline is None or self.deadline > limit:
                self.deadline = limit
        elif self.conn is not None and not self.conn.response_started:
            self.conn.close_after_response()
        else:
            self._must_close = True

    @property
    def idle(self) -> bool:
        """Kept alive (or new) with no byte of a request received."""
        return (
            self.sink is None
            and self.cycle is None
            and not self._head_started
            and self.conn is not None
            and self.conn.pending_input == 0
        )

    @property
    def active(self) -> bool:
        """Whether a request (or a stream, or a WebSocket) is being served."""
        sink = self.sink
        if sink is not None:
            return bool(getattr(sink, "active", not self.disconnected))
        return (self.cycle is not None or self._draining) and not self.disconnected
