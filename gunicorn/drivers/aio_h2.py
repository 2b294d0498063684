"""HTTP/2 on the asyncio driver: the core's ``H2Connection`` fed by ``HTTPProtocol``.

Every stream runs its own ASGI cycle as a task, concurrently. A stream that waits
(for body bytes, or for flow-control window when more than ``STREAM_BUFFER`` bytes of its
response wait in the core) waits alone: the connection keeps reading, answering PINGs and
serving the other streams. Output of all streams is gathered and written once per turn of
the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from gunicorn.asgi.http import HTTPCycle
from gunicorn.asgi.scope import http_scope
from gunicorn.http.connection import NEED_DATA
from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Request,
    StreamReset,
)
from gunicorn.lifecycle.logs import log_protocol_error, log_rejected

if TYPE_CHECKING:
    from gunicorn.drivers.aio import HTTPProtocol

# Response bytes of one stream that may wait for window before its ``send`` waits.
STREAM_BUFFER = 262144
# A read goes to the core in pieces, the first of FEED_SIZE bytes, each next one twice as
# large up to FEED_MAX (the threaded driver's read size), for at most FEED_TURN seconds per
# turn of the loop; the rest waits for the next turn, reading paused. Cheap input (a
# request body) is taken in a few calls; costly input (a flood of large field blocks)
# cannot hold the loop for a whole 256 KiB read, and a flood guard stops the work, and the
# RST_STREAMs it queues, within one piece.
FEED_SIZE = 4096
FEED_MAX = 16384
FEED_TURN = 0.002
# Output gathered over one turn of the loop is written at the latest when it reaches this
# size (the transport's default high-water mark).
FLUSH_SIZE = 65536
_EXTENSIONS_H2: dict[str, Any] = {"http.response.trailers": {}}


class H2Handler:
    """The HTTP/2 side of one connection (the ``sink`` of its ``HTTPProtocol``)."""

    def __init__(self, protocol: HTTPProtocol, upgrade: tuple[Request, bytes] | None) -> None:
        self.protocol = protocol
        self.loop = protocol.loop
        self.session = protocol.session
        self.core: Any = self.session.h2_connection()
        self.streams: dict[int, H2Stream] = {}
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_scheduled = False
        self._upgrade = upgrade
        self._backlog = memoryview(b"")  # read, not yet given to the core
        self._eof = False
        self._closing = False
        self._error_logged = False

    # -- bytes in ---------------------------------------------------------------------------

    def start(self, data: bytes) -> None:
        core = self.core
        upgrade = self._upgrade
        if upgrade is not None:
            request, settings = upgrade
            core.initiate_upgrade(settings, request, b"")
        else:
            core.initiate()
        if data:
            self.data_received(data)
        else:
            self._dispatch()
        self._idle_deadline()

    def data_received(self, data: bytes) -> None:
        if self._backlog:
            self._backlog = memoryview(bytes(self._backlog) + data)  # was already on its way
            return
        if len(data) <= FEED_SIZE:
            self.core.receive_data(data)
            self._dispatch()
            return
        self._backlog = memoryview(data)
        self._feed()
        if self._backlog:
            self.protocol.pause_reading()

    def _feed(self) -> None:
        """Give the core what waits, for one turn of the loop (see ``FEED_TURN``)."""
        core = self.core
        backlog = self._backlog
        stop = time.monotonic() + FEED_TURN
        size = FEED_SIZE
        while backlog and not core.closed:
            core.receive_data(bytes(backlog[:size]))
            backlog = backlog[size:]
            if time.monotonic() >= stop:
                break
            size = min(size * 2, FEED_MAX)
        self._backlog = backlog if not core.closed else memoryview(b"")
        if self._backlog:
            self.loop.call_soon(self._feed_more)
        self._dispatch()

    def _feed_more(self) -> None:
        if not self._backlog:
            return
        if self._eof:
            self._backlog = memoryview(b"")
            return
        self._feed()
        if not self._backlog:
            self.protocol.resume_reading()

    def eof_received(self) -> None:
        backlog = self._backlog
        if backlog:  # a transport that reads on while paused: the bytes come first
            self._backlog = memoryview(b"")
            core = self.core
            for start in range(0, len(backlog), FEED_SIZE):
                if core.closed:
                    break
                core.receive_data(bytes(backlog[start : start + FEED_SIZE]))
        self._eof = True
        self.core.receive_data(b"")
        self._dispatch()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._eof = True
        self._drop_streams()
        self._log_error()

    def _drop_streams(self) -> None:
        """The connection is over: every stream's client is gone (its application gets the
        disconnect grace period, then is cancelled)."""
        server = self.protocol.server
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream.gone()
            cycle = stream.cycle
            if cycle is not None and not cycle.finished:
                server.disconnected(cycle)

    def _dispatch(self) -> None:
        core = self.core
        streams = self.streams
        server = self.protocol.server
        try:
            while True:
                event = core.next_event()
                if event is NEED_DATA:
                    break
                kind = type(event)
                if kind is Request:
                    self._start(event)
                elif kind is ConnectionClosed:
                    # The peer closed, or a connection error (GOAWAY queued): RFC 9113
                    # §5.4.1, nothing more is sent on any stream, the connection closes.
                    self._eof = True
                    self._drop_streams()
                    break
                else:
                    stream = streams.get(event.stream_id)
                    if stream is None:
                        continue
                    if kind is StreamReset:
                        stream.gone()
                        streams.pop(stream.stream_id, None)
                        cycle = stream.cycle
                        if cycle is not None and not cycle.finished:
                            server.disconnected(cycle)
                    else:
                        stream.deliver(event)
        except ProtocolError:
            pass  # the core answered with GOAWAY; its reason is logged at close
        for stream in list(streams.values()):
            if stream.write_paused and core.buffered(stream.stream_id) <= STREAM_BUFFER:
                stream.window_opened()
        self._queue(core.data_to_send())
        self._flush()
        self._maybe_close()

    def _start(self, request: Request) -> None:
        protocol = self.protocol
        server = protocol.server
        session = self.session
        session.served += 1
        worker = server.worker
        worker.count_request()
        if not worker.alive:
            self.shutdown()
        stream = H2Stream(self, request)
        self.streams[stream.stream_id] = stream
        extensions = _EXTENSIONS_H2
        priority = self.core.priority(stream.stream_id)
        if priority is not None:
            extensions = {
                **_EXTENSIONS_H2,
                "http.response.priority": {"weight": priority[0], "depends_on": priority[1]},
            }
        try:
            scope = http_scope(protocol.scope_base, request, extensions)
        except ProtocolError as exc:  # e.g. conflicting secure_scheme_headers: a 400
            log_rejected(session.log, session.client_addr, exc)
            stream.write_error(exc)
            self.stream_done(stream)
            return
        cycle = stream.cycle = HTTPCycle(
            session, stream, request, scope, server.app, server.metrics
        )
        protocol.deadline = None
        cycle.task = self.loop.create_task(cycle.run())

    # -- bytes out --------------------------------------------------------------------------

    def _queue(self, data: bytes) -> None:
        if data:
            self._out.append(data)
            self._out_size += len(data)
            if self._out_size >= FLUSH_SIZE:
                # Written now: the transport's high-water mark (and so the streams' drain)
                # sees it while an application sends without ever yielding to the loop.
                self._flush()
            elif not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        self._out_size = 0
        self.protocol.write(data)

    def stream_done(self, stream: H2Stream) -> None:
        """A stream's response is complete (or it failed): free it."""
        core = self.core
        if self.streams.pop(stream.stream_id, None) is not None and not core.closed:
            core.finish_stream(stream.stream_id)
            self._queue(core.data_to_send())
        self._idle_deadline()
        self._maybe_close()

    def _idle_deadline(self) -> None:
        protocol = self.protocol
        if not self.streams:
            protocol.deadline = self.loop.time() + (
                protocol.server.keepalive or protocol.server.header_timeout
            )

    def _maybe_close(self) -> None:
        core = self.core
        if self.streams:
            return
        if self._eof or core.closed or self._closing or core.going_away:
            self._flush()
            self._log_error()
            self.protocol.close()

    def _log_error(self) -> None:
        error = self.core.error
        if error and not self._error_logged:
            self._error_logged = True
            log_protocol_error(self.session.log, self.session.client_addr, error)

    # -- the worker's calls -----------------------------------------------------------------

    def check_deadline(self, now: float) -> None:
        if not self.streams:
            self.shutdown()

    def shutdown(self) -> None:
        """GOAWAY naming the last stream taken; close once the streams are done."""
        if self._closing:
            return
        self._closing = True
        core = self.core
        if not core.closed:
            core.shutdown()
            self._queue(core.data_to_send())
        self._flush()
        self._maybe_close()

    @property
    def active(self) -> bool:
        return bool(self.streams)


class H2Stream:
    """One HTTP/2 stream as the ASGI cycle sees it (an ``HTTPStream``)."""

    __slots__ = (
        "_body",
        "_body_done",
        "_body_waiter",
        "_done_waiter",
        "_window_waiter",
        "cycle",
        "disconnected",
        "handler",
        "request",
        "stream_id",
        "write_paused",
    )

    http_version = "2"

    def __init__(self, handler: H2Handler, request: Request) -> None:
        self.handler = handler
        self.request = request
        self.stream_id = request.stream_id
        self.cycle: HTTPCycle | None = None
        self.disconnected = False
        self.write_paused = False
        self._body: deque[bytes] = deque()
        self._body_done = not request.has_body
        self._body_waiter: asyncio.Future[None] | None = None
        self._done_waiter: asyncio.Future[None] | None = None
        self._window_waiter: asyncio.Future[None] | None = None

    # -- from the handler -------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        if type(event) is Data:
            self._body.append(event.data)
        elif type(event) is EndOfMessage:
            self._body_done = True
        _wake(self._body_waiter)
        self._body_waiter = None

    def gone(self) -> None:
        self.disconnected = True
        for waiter in (self._body_waiter, self._done_waiter, self._window_waiter):
            _wake(waiter)
        self._body_waiter = self._done_waiter = self._window_waiter = None

    def window_opened(self) -> None:
        self.write_paused = False
        _wake(self._window_waiter)
        self._window_waiter = None

    # -- HTTPStream -------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        handler = self.handler
        event.stream_id = self.stream_id
        core = handler.core
        handler._queue(core.send(event))
        if type(event) is Data and (
            handler.protocol.write_paused or core.buffered(self.stream_id) > STREAM_BUFFER
        ):
            self.write_paused = True

    def finish(self, body: bytes) -> None:
        if body:
            self.send(Data(body))
        self.send(EndOfMessage())

    async def drain(self) -> None:
        """Wait until the client's socket takes bytes again and this stream's response
        waits no more than ``STREAM_BUFFER`` bytes for window (or the client is gone)."""
        handler = self.handler
        protocol = handler.protocol
        while not self.disconnected:
            if protocol.write_paused and not protocol.disconnected:
                await protocol.drain()
            elif handler.core.buffered(self.stream_id) > STREAM_BUFFER:
                waiter = self._window_waiter
                if waiter is None:
                    waiter = self._window_waiter = handler.loop.create_future()
                await waiter
            else:
                break
        self.write_paused = False

    async def receive_body(self) -> tuple[bytes, bool] | None:
        while True:
            body = self._body
            if body:
                data = b"".join(body) if len(body) > 1 else body[0]
                body.clear()
                handler = self.handler
                handler.core.ack_body(self.stream_id, len(data))
                handler._queue(handler.core.data_to_send())
                return data, not self._body_done
            if self._body_done:
                return b"", False
            if self.disconnected:
                return None
            waiter = self._body_waiter = self.handler.loop.create_future()
            await waiter

    async def wait_disconnect(self) -> None:
        if self.disconnected or (self.cycle is not None and self.cycle.complete):
            return
        waiter = self._done_waiter
        if waiter is None:
            waiter = self._done_waiter = self.handler.loop.create_future()
        await waiter

    def send_continue(self) -> None:
        handler = self.handler
        handler._queue(handler.core.send_continue(self.stream_id))

    def write_error(self, exc: ProtocolError | LocalProtocolError) -> int:
        handler = self.handler
        if not handler.core.closed:
            handler._queue(handler.core.error_response(exc, self.stream_id))
        return 0

    def response_complete(self) -> None:
        _wake(self._done_waiter)
        self._done_waiter = None
        self.handler.stream_done(self)

    def cycle_finished(self, must_close: bool) -> None:
        self.disconnected = True
        self.handler.stream_done(self)

    def body_sent(self) -> int:
        return int(self.handler.core.body_sent(self.stream_id))

    def trailers_allowed(self) -> bool:
        return True

    async def send_file(self, path: str) -> bool:
        return False  # no sendfile on HTTP/2: the cycle reads the file into DATA frames


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
