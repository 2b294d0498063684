"""ASGI WebSockets (spec 2.4, RFC 6455) over one HTTP/1.1 connection.

The driver hands a request that ``is_websocket_request`` accepted to a
``WebSocketCycle``: the handshake is answered through the HTTP/1.1 core (a 101, or an
HTTP error or the application's own denial), the frames after it go through wsproto's
frame layer (all but the simple ones, see ``ws_frames``), and the bytes go through the
driver's ``Channel``. The cycle owns the connection
from then on and closes it.

A session, as the states of ``WebSocketCycle._state``::

    CONNECTING --accept--> OPEN --app close--> CLOSING --client's close--> CLOSED
        |                    \\--client's close, protocol error, lost------^
        +--close / refusal / error--> DENIED (403, 400/426, 500: HTTP, then closed)
        +--websocket.http.response.start--> DENYING --last body--> DENIED
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.utilities import LocalProtocolError

from gunicorn.asgi.channel import Channel
from gunicorn.asgi.errors import ClientDisconnected
from gunicorn.asgi.ws_deflate import MIN_COMPRESSED_SIZE, MessageLimit, negotiate
from gunicorn.asgi.ws_frames import BINARY, RAW, TEXT, FrameSplitter, encode_frame
from gunicorn.asgi.ws_handshake import (
    Handshake,
    Refusal,
    accept_headers,
    check_handshake,
    is_websocket_request,
    refusal,
    websocket_scope,
)
from gunicorn.asgi.ws_inbox import Inbox, Message
from gunicorn.asgi.ws_keepalive import Keepalive
from gunicorn.http.events import Data, EndOfMessage, Headers, InformationalResponse, Response
from gunicorn.http.events import Request as HTTPRequest
from gunicorn.http.h1.connection import H1Connection

__all__ = [
    "ClientDisconnected",
    "WebSocketConfig",
    "WebSocketCycle",
    "is_websocket_request",
]

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
OnDone = Callable[[int, Headers, int], None]

CONNECTING = "CONNECTING"
DENYING = "DENYING"
DENIED = "DENIED"
OPEN = "OPEN"
CLOSING = "CLOSING"
CLOSED = "CLOSED"

# Bytes a client may send before the handshake is answered before reading pauses.
_EARLY_BYTES = 1 << 16
# RFC 6455 §7.4.1 status codes.
NORMAL = 1000
GOING_AWAY = 1001
ABNORMAL = 1006
INTERNAL_ERROR = 1011
_FAILURE_REASONS = {
    1002: "protocol error",
    1007: "invalid frame payload data",
    1009: "message too big",
}
# Codes an endpoint may not put in a Close frame (§7.4.1): sent as 1000 instead.
_LOCAL_ONLY = frozenset({1005, 1006, 1015})


@dataclass(frozen=True)
class WebSocketConfig:
    """The WebSocket settings of the asgi worker."""

    #: Largest message accepted (bytes, after decompression); 0: no limit. 1009 above it.
    max_message_size: int = 16 * 1024 * 1024
    #: Seconds between keepalive pings we send (None: we send none).
    ping_interval: float | None = None
    #: Seconds a keepalive ping waits for its pong before the connection is closed.
    ping_timeout: float | None = None
    #: Seconds the close handshake may take before the connection is dropped.
    close_timeout: float = 10.0
    per_message_deflate: bool = True
    #: Seconds the application gets after the client left before it is cancelled.
    disconnect_grace_period: float = 3.0

    @classmethod
    def from_config(cls, cfg: Any) -> WebSocketConfig:
        return cls(
            max_message_size=int(cfg.websocket_max_message_size or 0),
            disconnect_grace_period=float(cfg.asgi_disconnect_grace_period),
        )


class WebSocketCycle:
    """One WebSocket handshake and session: the ASGI ``receive``/``send`` of the
    application and the ``ByteSink`` the driver feeds once the request was handed over.

    ``on_done(status, headers, bytes_sent)`` is called once, when the application's task
    ends: 101 and the frame bytes sent for a session, or the status, headers and body
    size of the HTTP answer that refused it (status 0: the client left before any).
    """

    def __init__(
        self,
        app: ASGIApp,
        scope: dict[str, Any],
        request: HTTPRequest,
        core: H1Connection,
        channel: Channel,
        config: WebSocketConfig,
        log: Any,
        on_done: OnDone,
    ) -> None:
        self._app = app
        self._core = core
        self._channel = channel
        self._loop = channel.loop
        self._config = config
        self._log = log
        self._on_done: OnDone | None = on_done
        checked = check_handshake(request)
        self._handshake: Handshake | None = checked if isinstance(checked, Handshake) else None
        self._refusal: Refusal | None = checked if isinstance(checked, Refusal) else None
        subprotocols = self._handshake.subprotocols if self._handshake else []
        self.scope = websocket_scope(scope, subprotocols)

        self._state = CONNECTING
        self._ws: Connection | None = None
        self._splitter = FrameSplitter(0)
        self._compressing = False
        self._lost = False  # the transport is gone (or closing after an end of input)
        self._connect_delivered = False
        self._inbox = Inbox(channel)
        self._parts: list[Any] = []
        self._early: list[bytes] = []
        self._early_size = 0
        self._shutting_down = False
        self._status = 0
        self._response_headers: Headers = []
        self._bytes_sent = 0
        self._close_timer: asyncio.TimerHandle | None = None
        self._keepalive: Keepalive | None = None
        self._grace_timer: asyncio.TimerHandle | None = None
        self._grace_cancelled = False
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """Whether the connection or the application is still at work."""
        task = self._task
        return not self._lost or (task is not None and not task.done())

    # ------------------------------------------------------------------ the task

    def start(self) -> asyncio.Task[None]:
        """Run the handshake and the application as a task."""
        self._task = self._loop.create_task(self._run())
        return self._task

    async def _run(self) -> None:
        try:
            if self._refusal is not None:
                self._log.debug("WebSocket handshake refused: %s", self._refusal.body.strip())
                self._refuse(self._refusal)
                return
            try:
                await self._app(self.scope, self.receive, self.send)
            except ClientDisconnected:
                pass  # ours: the application let it propagate (spec 2.4: not an error)
            except asyncio.CancelledError:
                if not self._grace_cancelled:
                    self._abort()
                    raise
                uncancel = getattr(asyncio.current_task(), "uncancel", None)
                if uncancel is not None:
                    uncancel()
            except Exception:
                self._app_failed()
            else:
                self._app_returned()
        finally:
            self._cancel_timer("_grace_timer")
            on_done, self._on_done = self._on_done, None
            if on_done is not None:
                on_done(self._status, self._response_headers, self._bytes_sent)

    def _app_failed(self) -> None:
        self._log.exception("Exception in ASGI application (WebSocket %s)", self.scope["path"])
        state = self._state
        if state is CONNECTING and not self._lost:
            self._refuse(refusal(500, "Internal Server Error"))
        elif state is DENYING:
            self._abort()
        elif state is OPEN:
            self._start_close(INTERNAL_ERROR, "")

    def _app_returned(self) -> None:
        state = self._state
        if state is CONNECTING and not self._lost:
            self._log.error(
                "ASGI callable returned without accepting or closing WebSocket %s",
                self.scope["path"],
            )
            self._refuse(refusal(500, "Internal Server Error"))
        elif state is DENYING:
            self._log.error(
                "ASGI callable returned without completing the denial response of WebSocket %s",
                self.scope["path"],
            )
            self._abort()
        elif state is OPEN:
            self._start_close(NORMAL, "")

    # ------------------------------------------------------------------ receive

    async def receive(self) -> Message:
        """The next ASGI event for the application."""
        if not self._connect_delivered:
            self._connect_delivered = True
            return {"type": "websocket.connect"}
        return await self._inbox.get()

    def _set_disconnect(self, code: int, reason: str = "") -> None:
        self._inbox.finish(code, reason)

    def _mark_lost(self) -> None:
        self._lost = True
        self._inbox.detach()

    # ------------------------------------------------------------------ send

    async def send(self, message: Message) -> None:
        """An ASGI event from the application."""
        kind = message["type"]
        state = self._state
        if state is OPEN and kind == "websocket.send":
            self._send_message(message)  # the usual case first
        else:
            handler = _SEND_TRANSITIONS.get((state, kind))
            if handler is None:
                raise RuntimeError(f"unexpected ASGI message {kind!r} in WebSocket state {state}")
            if not handler(self, message):
                return
        await self._channel.drain()

    # Each handler returns whether it wrote something (then ``send`` waits for the
    # write buffer to drain).

    def _send_message(self, message: Message) -> bool:
        data = message.get("bytes")
        text = message.get("text")
        if data is not None and text is None:
            payload = bytes(data)
            opcode = BINARY
        elif text is not None and data is None:
            payload = text.encode("utf-8")
            opcode = TEXT
        else:
            raise ValueError("websocket.send needs exactly one of 'bytes' and 'text'")
        if self._compressing and len(payload) >= MIN_COMPRESSED_SIZE:
            ws = self._ws
            assert ws is not None
            if text is not None:
                self._write(ws.send(TextMessage(data=text)))
            else:
                self._write(ws.send(BytesMessage(data=payload)))
        else:
            self._write(encode_frame(opcode, payload))
        return True

    def _send_close(self, message: Message) -> bool:
        code, reason = _close_code(message), message.get("reason") or ""
        self._start_close(code, reason)
        self._set_disconnect(code, reason)
        return True

    def _refuse_with_403(self, message: Message) -> bool:
        if self._lost:
            return False
        # ASGI: a close before accept refuses the handshake with 403.
        self._respond(403, [(b"Content-Length", b"0")], b"")
        return True

    def _closed(self, message: Message) -> bool:
        raise ClientDisconnected("the WebSocket is closed")

    def _already_closed(self, message: Message) -> bool:
        return False  # closing a closed WebSocket again is harmless

    def _write(self, data: bytes | bytearray) -> None:
        self._bytes_sent += len(data)
        self._channel.write(data)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ handshake

    def _accept(self, message: Message) -> bool:
        if self._lost:
            raise ClientDisconnected("the client left before the WebSocket was accepted")
        handshake = self._handshake
        assert handshake is not None
        app_headers = [(bytes(name), bytes(value)) for name, value in message.get("headers", ())]
        if any(name.lower() == b"sec-websocket-protocol" for name, _ in app_headers):
            raise RuntimeError("websocket.accept: give the subprotocol in 'subprotocol'")
        subprotocol = message.get("subprotocol")
        limit = MessageLimit(self._config.max_message_size)
        extensions: list[Extension] = [limit]
        agreed = None
        if self._config.per_message_deflate:
            compressed = negotiate(handshake.extension_offers, limit)
            if compressed is not None:
                deflate, agreed = compressed
                extensions = [deflate, limit]  # inflate first, then count
        headers = accept_headers(handshake.key, subprotocol, agreed, app_headers)
        head = self._core.send(InformationalResponse(101, headers))
        self._channel.write(head)
        self._status = 101
        self._response_headers = headers
        self._ws = Connection(ConnectionType.SERVER, extensions=extensions)
        self._splitter = FrameSplitter(self._config.max_message_size)
        self._compressing = agreed is not None
        self._state = OPEN
        if self._config.ping_interval:
            self._keepalive = Keepalive(
                self._loop,
                self._config.ping_interval,
                self._config.ping_timeout,
                self._send_ping,
                self._ping_timed_out,
            )
            self._keepalive.start()
        trailing, eof = self._core.trailing_data
        early = b"".join([trailing, *self._early])
        self._early = []
        self._inbox.resume()
        if early:
            self._feed(early)
        if eof:
            self.eof_received()
        elif self._shutting_down and self._state is OPEN:
            self._start_close(GOING_AWAY, "")
            self._set_disconnect(GOING_AWAY)
        return True

    def _respond(self, status: int, headers: Headers, body: bytes) -> None:
        """A whole HTTP answer instead of a WebSocket, then the end of the connection."""
        core = self._core
        core.close_after_response()
        self._channel.write(core.send(Response(status, headers)) + core.send(Data(body)))
        self._channel.write(core.send(EndOfMessage()))
        self._finish_denial(status, headers, len(body))

    def _refuse(self, answer: Refusal) -> None:
        self._respond(answer.status, answer.headers, answer.body)

    def _finish_denial(self, status: int, headers: Headers, size: int) -> None:
        self._state = DENIED
        self._status = status
        self._response_headers = headers
        self._bytes_sent += size
        self._set_disconnect(ABNORMAL)
        self._mark_lost()
        self._channel.close()

    def _start_denial(self, message: Message) -> bool:
        if self._lost:
            raise ClientDisconnected("the client left before the response")
        status = int(message["status"])
        if not 200 <= status <= 599:
            raise RuntimeError(f"websocket.http.response.start: status {status} is not final")
        headers = [(bytes(name), bytes(value)) for name, value in message.get("headers", ())]
        self._core.close_after_response()
        self._channel.write(self._core.send(Response(status, headers)))
        self._state = DENYING
        self._status = status
        self._response_headers = headers
        return True

    def _denial_body(self, message: Message) -> bool:
        if self._lost:
            raise ClientDisconnected("the client left during the response")
        body = bytes(message.get("body", b""))
        core = self._core
        if body:
            self._bytes_sent += len(body)
            self._channel.write(core.send(Data(body)))
        if not message.get("more_body", False):
            self._channel.write(core.send(EndOfMessage()))
            self._finish_denial(self._status, self._response_headers, 0)
        return True

    # ------------------------------------------------------------------ frames in

    def data_received(self, data: bytes) -> None:
        """Client bytes after the request head."""
        state = self._state
        if state is OPEN or state is CLOSING:
            self._feed(data)
        elif state is CONNECTING:
            self._early.append(data)
            self._early_size += len(data)
            if self._early_size >= _EARLY_BYTES:
                self._inbox.pause()

    def _feed(self, data: bytes) -> None:
        for kind, value in self._splitter.feed(data):
            if kind == RAW:
                self._feed_wsproto(value)  # type: ignore[arg-type]
                if self._state is CLOSED:
                    return  # nothing is read after the end of the session
            elif self._state is OPEN:
                if kind == TEXT:
                    self._inbox.put({"type": "websocket.receive", "text": value})
                else:
                    self._inbox.put({"type": "websocket.receive", "bytes": value})

    def _feed_wsproto(self, data: bytes) -> None:
        ws = self._ws
        assert ws is not None
        try:
            ws.receive_data(data)
        except LocalProtocolError:
            return  # the session is over: what follows its end is ignored
        closing = self._state is CLOSING
        for event in ws.events():
            kind = type(event)
            if kind is TextMessage or kind is BytesMessage:
                if closing:
                    continue  # after our close the application receives no more
                self._message(event)  # type: ignore[arg-type]
            elif kind is Ping:
                if ws.state is ConnectionState.OPEN:
                    self._write(ws.send(event.response()))  # type: ignore[attr-defined]
            elif kind is Pong:
                if self._keepalive is not None:
                    self._keepalive.pong(event.payload)  # type: ignore[attr-defined]
            elif kind is CloseConnection:
                self._close_received(ws, event)  # type: ignore[arg-type]
                return

    def _message(self, event: TextMessage | BytesMessage) -> None:
        if event.message_finished and not self._parts:
            data = event.data
        else:
            self._parts.append(event.data)
            if not event.message_finished:
                return
            data = "".join(self._parts) if type(event) is TextMessage else b"".join(self._parts)
            self._parts = []
        if type(data) is str:
            self._inbox.put({"type": "websocket.receive", "text": data})
        else:
            self._inbox.put({"type": "websocket.receive", "bytes": data})

    def _close_received(self, ws: Connection, event: CloseConnection) -> None:
        state = ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The client started the close handshake: answer it, then the server closes
            # the TCP connection first (RFC 6455 §7.1.1).
            self._write(ws.send(event.response()))
            self._end(event.code, event.reason or "")
        elif state is ConnectionState.CLOSED:
            self._end(event.code, event.reason or "")  # the answer to our close
        elif state is ConnectionState.OPEN:
            # wsproto reports a frame it could not accept as a close with the code to
            # fail the connection with (1002, 1007, 1009): send it and stop reading
            # (§7.1.7 "Fail the WebSocket Connection").
            code = event.code
            reason = _FAILURE_REASONS.get(code, event.reason or "")
            self._log.debug("WebSocket failed: %s (%s)", code, event.reason)
            self._write(ws.send(CloseConnection(code=code, reason=reason)))
            self._end(code, reason)
        else:
            self._end(ABNORMAL, "")  # garbage after our close: give up on its answer

    def _end(self, code: int, reason: str) -> None:
        """The session is over: the application learns it, the connection closes."""
        self._state = CLOSED
        self._set_disconnect(code, reason)
        self._stop_timers()
        if not self._lost:
            self._mark_lost()
            self._channel.close()

    # ------------------------------------------------------------------ closing

    def _start_close(self, code: int, reason: str) -> None:
        ws = self._ws
        assert ws is not None
        self._state = CLOSING
        self._write(ws.send(CloseConnection(code=code, reason=reason)))
        if self._keepalive is not None:
            self._keepalive.stop()
        if self._close_timer is None and not self._lost:
            self._close_timer = self._loop.call_later(
                self._config.close_timeout, self._close_timed_out
            )

    def _close_timed_out(self) -> None:
        self._close_timer = None
        self._log.debug("WebSocket close handshake timed out")
        self._state = CLOSED
        self._set_disconnect(ABNORMAL)
        self._abort()

    def _abort(self) -> None:
        if not self._lost:
            self._mark_lost()
            self._channel.abort()

    def shutdown(self) -> None:
        """Graceful stop: close with 1001 (going away) within ``close_timeout``; a
        handshake still waiting for the application gets it once accepted."""
        self._shutting_down = True
        if self._state is OPEN and not self._lost:
            self._start_close(GOING_AWAY, "")
            self._set_disconnect(GOING_AWAY)

    def eof_received(self) -> None:
        """The client closed its side: without a Close frame, an abnormal end (1006)."""
        if self._state is OPEN or self._state is CLOSING:
            self._state = CLOSED
        self._set_disconnect(ABNORMAL)
        self._stop_timers()
        if not self._lost:
            self._mark_lost()
            self._channel.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        """The transport is gone; the application gets ``asgi_disconnect_grace_period``
        seconds to return before its task is cancelled."""
        self._mark_lost()
        if self._state is OPEN or self._state is CLOSING:
            self._state = CLOSED
        self._set_disconnect(ABNORMAL)
        self._stop_timers()
        task = self._task
        if task is not None and not task.done() and self._grace_timer is None:
            self._grace_timer = self._loop.call_later(
                self._config.disconnect_grace_period, self._cancel_app
            )

    def _cancel_app(self) -> None:
        self._grace_timer = None
        task = self._task
        if task is not None and not task.done():
            self._grace_cancelled = True
            task.cancel()

    # ------------------------------------------------------------------ keepalive

    def _send_ping(self, payload: bytes) -> None:
        ws = self._ws
        if self._state is OPEN and ws is not None and not self._lost:
            self._write(ws.send(Ping(payload=payload)))

    def _ping_timed_out(self) -> None:
        if self._state is OPEN:
            self._log.debug("WebSocket keepalive ping timed out")
            self._start_close(INTERNAL_ERROR, "keepalive ping timeout")
            self._set_disconnect(ABNORMAL)

    def _cancel_timer(self, name: str) -> None:
        timer = getattr(self, name)
        if timer is not None:
            timer.cancel()
            setattr(self, name, None)

    def _stop_timers(self) -> None:
        self._cancel_timer("_close_timer")
        if self._keepalive is not None:
            self._keepalive.stop()


_Handler = Callable[[WebSocketCycle, Message], bool]
_SEND_TRANSITIONS: dict[tuple[str, str], _Handler] = {
    (CONNECTING, "websocket.accept"): WebSocketCycle._accept,
    (CONNECTING, "websocket.close"): WebSocketCycle._refuse_with_403,
    (CONNECTING, "websocket.http.response.start"): WebSocketCycle._start_denial,
    (DENYING, "websocket.http.response.body"): WebSocketCycle._denial_body,
    (OPEN, "websocket.send"): WebSocketCycle._send_message,
    (OPEN, "websocket.close"): WebSocketCycle._send_close,
    # ASGI spec 2.4: send() on a closed connection raises an OSError.
    (CLOSING, "websocket.send"): WebSocketCycle._closed,
    (CLOSED, "websocket.send"): WebSocketCycle._closed,
    (DENIED, "websocket.send"): WebSocketCycle._closed,
    (CLOSING, "websocket.close"): WebSocketCycle._already_closed,
    (CLOSED, "websocket.close"): WebSocketCycle._already_closed,
    (DENIED, "websocket.close"): WebSocketCycle._already_closed,
}


def _close_code(message: Message) -> int:
    code = message.get("code")
    if code is None:
        return NORMAL
    code = int(code)
    if code in _LOCAL_ONLY:
        return NORMAL
    if not 1000 <= code <= 4999:
        raise ValueError(f"websocket.close: {code} is not a WebSocket close code")
    return code
