"""HTTP/2 server connection (RFC 9113) over the ``h2`` package.

Theory of operation
-------------------
Bytes from the peer go to ``h2`` (``h2_engine.ServerEngine``), whose events become the
core's events, the same classes HTTP/1 emits, each with its stream id: ``Request``,
``Data``, ``EndOfMessage``, ``StreamReset`` and ``ConnectionClosed``. A request head is
checked in one pass (``h2_headers``); a malformed one resets its stream with
PROTOCOL_ERROR, and a request over a size limit (414/431) or with an unknown
expectation (417), and CONNECT (501: no tunnels), is answered by the core itself. None
of those reach the application.

Response events go the other way. ``framing`` decides whether a body may follow and
``h2_response`` builds the field blocks. ``send(Data)`` never blocks: what the stream
and connection windows allow goes out at once in frames of the peer's maximum size,
the rest waits in the stream's buffer, and WINDOW_UPDATE or SETTINGS frames received
later flush it (the bytes appear in ``data_to_send``). The end of a response (END_STREAM,
trailers, or a reset when the body broke its Content-Length) follows its buffered bytes.

Flow-control credit for request bodies is returned only when the application consumed
the bytes (``ack_body``); padding, and data for streams already reset or finished, is
credited at once so the connection window never leaks.

A stream stays in the table from its request until the server calls ``finish_stream``
(and its buffered bytes are out): that table is what MAX_CONCURRENT_STREAMS caps, and
``open_streams`` counts it. Every stream the driver saw a ``Request`` for must be
finished, also after a ``StreamReset``. A stream the peer resets before the driver took
its ``Request`` is forgotten at once: the application never runs for it.

Connection errors queue GOAWAY with their code and emit ``ConnectionClosed``; the flood
guards (``h2_guards``) end the connection with ENHANCE_YOUR_CALM.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import h2.exceptions
from h2.connection import ConnectionState
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from gunicorn.http.connection import NEED_DATA, NextEvent
from gunicorn.http.error_page import error_page
from gunicorn.http.errors import LocalProtocolError, ProtocolError, ResponseStateError
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    Trailers,
)
from gunicorn.http.h1 import http_date
from gunicorn.http.h2_engine import ServerEngine
from gunicorn.http.h2_guards import FloodGuard
from gunicorn.http.h2_outbox import Outbox
from gunicorn.http.h2_receive import Calm, Receiver
from gunicorn.http.h2_response import (
    error_head,
    informational_fields,
    response_head,
    status_field,
    trailer_fields,
)
from gunicorn.http.h2_stream import (
    CANCEL,
    DONE,
    END,
    ENHANCE_YOUR_CALM,
    IDLE,
    INTERNAL_ERROR,
    NO_ERROR,
    RESET,
    SEND_TRANSITIONS,
    TRAILERS,
    Stream,
)
from gunicorn.http.headers import CONNECTION_SPECIFIC
from gunicorn.http.limits import Limits, Policy
from gunicorn.http.negotiate import InvalidHTTP2Settings, decode_settings, encode_settings

# Header list size (RFC 7541 §4.1 counting) accepted when the setting is 0 (unlimited).
_FIELD_OVERHEAD = 32

_UPGRADE_DROPPED = CONNECTION_SPECIFIC | {b"http2-settings", b"te"}


class H2Connection(Receiver):
    """The server side of one HTTP/2 connection (see the module docstring)."""

    http_version = "2"

    def __init__(
        self,
        limits: Limits | None = None,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float],
        trusted_forwarder: bool = False,
        server_header: bytes = b"gunicorn",
    ) -> None:
        self._limits = limits if limits is not None else Limits()
        self._policy = policy if policy is not None else Policy()
        self._clock = clock
        self._trusted = trusted_forwarder
        self._server_header = server_header
        self._h2 = ServerEngine()
        self._guard = FloodGuard(self._limits, clock)
        self._outbox = Outbox(self._h2, self._guard, self._output_finished)
        self._events = deque()
        self._streams = {}
        self._dropped = set()
        self._pending = b""  # our own frames (graceful GOAWAY) ahead of h2's output
        self._last_accepted = 0
        self._goaway_last = 0
        self._peer_goaway_last = -1
        self._going_away = False
        self._closed = False
        #: Why the connection ended in error (a protocol error, a flood guard), for the log.
        self.error: str | None = None
        self._window_changed = False
        self._handlers = self._handler_table()

    # ------------------------------------------------------------------ setup

    def _configure(self) -> None:
        limits = self._limits
        conn = self._h2
        values = {
            SettingCodes.MAX_CONCURRENT_STREAMS: limits.h2_max_concurrent_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: limits.h2_initial_window_size,
            SettingCodes.MAX_FRAME_SIZE: limits.h2_max_frame_size,
            SettingCodes.ENABLE_PUSH: 0,
        }
        if limits.h2_max_header_list_size:
            values[SettingCodes.MAX_HEADER_LIST_SIZE] = limits.h2_max_header_list_size
        # Our settings hold from the start (a peer may not exceed them before it
        # acknowledges them, but nothing breaks if it does within the defaults).
        conn.local_settings = Settings(client=False, initial_values=values)
        conn.max_inbound_frame_size = limits.h2_max_frame_size
        conn.decoder.max_header_list_size = limits.h2_max_header_list_size or (
            (limits.max_header_fields + 4) * (limits.max_header_field_size + _FIELD_OVERHEAD)
        )

    def _open_connection_window(self) -> None:
        # The connection window starts at 65535 whatever the streams' initial window;
        # open it to match so one stream can use its whole window.
        extra = self._limits.h2_initial_window_size - 65535
        if extra > 0:
            self._h2.increment_flow_control_window(extra)

    def initiate(self) -> None:
        """Queue the server preface (SETTINGS) for ``data_to_send``."""
        self._configure()
        self._h2.initiate_connection()
        self._open_connection_window()

    def initiate_upgrade(self, settings_header: bytes, request: Request, body: bytes) -> None:
        """Take over an HTTP/1.1 connection after ``101 Switching Protocols`` to h2c
        (RFC 7540 §3.2). ``settings_header`` is the HTTP2-Settings value (base64url,
        as ``negotiate.upgrade_settings`` returns it). The upgraded request becomes
        stream 1, already complete: its Request, Data and EndOfMessage are queued."""
        payload = decode_settings(settings_header)
        self._configure()
        try:
            self._h2.initiate_upgrade_connection(encode_settings(payload))
        except h2.exceptions.ProtocolError as exc:
            raise InvalidHTTP2Settings(f"invalid HTTP2-Settings: {exc}") from None
        self._open_connection_window()
        headers = [(n, v) for n, v in request.headers if n not in _UPGRADE_DROPPED]
        upgraded = Request(
            request.method,
            request.target,
            (2, 0),
            headers,
            path=request.path,
            query=request.query,
            authority=request.authority,
            content_length=len(body) if request.chunked else request.content_length,
            has_body=bool(body),
            stream_id=1,
        )
        stream = Stream(1, upgraded.method)
        stream.request_ended = True
        self._accept(stream)
        self._events.append(upgraded)
        if body:
            self._events.append(Data(body, 1))
        self._events.append(EndOfMessage(None, 1))

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the peer; ``b""`` means the peer closed its side."""
        if self._closed:
            return
        if not data:
            self._end(clear_events=False)
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued GOAWAY with the error's code (FRAME_SIZE_ERROR, ENHANCE_YOUR_CALM
            # for header list bombs, PROTOCOL_ERROR...), except for a bad preface.
            if self._h2.state_machine.state is not ConnectionState.CLOSED:
                self._h2.close_connection(exc.error_code)
            self.error = str(exc) or type(exc).__name__
            self._end(clear_events=True)
            return
        handlers = self._handlers
        try:
            for event in events:
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(event)
                if self._closed:
                    return
            if self._window_changed:
                self._window_changed = False
                self._outbox.flush_blocked()
        except Calm as exc:
            self.error = f"{exc} (GOAWAY ENHANCE_YOUR_CALM)"
            self.close(ENHANCE_YOUR_CALM)
        except h2.exceptions.H2Error as exc:
            # h2 refused what the server asked of it: never the driver's problem.
            self.error = f"internal error: {exc}"
            self.close(INTERNAL_ERROR)

    def next_event(self) -> NextEvent:
        """The next event from the peer, or ``NEED_DATA``."""
        events = self._events
        while events:
            event = events.popleft()
            if self._dropped and event.stream_id in self._dropped:
                continue
            if type(event) is Request:
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.delivered = True
            return event
        self._dropped.clear()
        if self._closed:
            return ConnectionClosed()
        if (self._going_away or self._peer_goaway_last >= 0) and not self._streams:
            self._closed = True
            return ConnectionClosed()
        return NEED_DATA

    # ----------------------------------------------------------------- output

    def data_to_send(self) -> bytes:
        """Everything queued: ACKs, WINDOW_UPDATE, RST_STREAM, GOAWAY, flushed body."""
        data = self._h2.data_to_send()
        if self._pending:
            data = self._pending + data
            self._pending = b""
        self._guard.answers_taken()
        return data

    def send(self, event: Event) -> bytes:
        """Bytes for a response event of ``event.stream_id`` (with whatever else was
        queued). Raises ``LocalProtocolError`` for an invalid response."""
        stream = self._streams.get(event.stream_id)
        if stream is None:
            raise ResponseStateError(f"no stream {event.stream_id} to answer")
        kind = type(event)
        state = SEND_TRANSITIONS.get((stream.send_state, kind))
        if state is None:
            raise ResponseStateError(f"cannot send {kind.__name__} in state {stream.send_state}")
        if kind is Data:
            self._send_body(stream, event.data)  # type: ignore[attr-defined]
        elif kind is Response:
            self._send_head(stream, event)  # type: ignore[arg-type]
        elif kind is EndOfMessage:
            self._end_response(stream, event.trailers)  # type: ignore[attr-defined]
        elif kind is Trailers:
            stream.trailers = trailer_fields(event.headers)  # type: ignore[attr-defined]
        else:
            self._send_informational(stream, event)  # type: ignore[arg-type]
        stream.send_state = state
        return self.data_to_send()

    def _live(self, stream: Stream) -> bool:
        return not (stream.reset or self._closed)

    def _send_informational(self, stream: Stream, event: InformationalResponse) -> None:
        fields = informational_fields(event)
        # RFC 9113 §8.6: no 101 in HTTP/2; early hints only before the final response.
        if event.status == 101 or stream.send_state is not IDLE or not self._live(stream):
            return
        if event.status == 100:
            if stream.continue_sent:
                return
            stream.continue_sent = True
        self._h2.send_headers(stream.stream_id, fields)

    def _send_head(self, stream: Stream, event: Response) -> None:
        head = response_head(event, stream.method, self._server_header, http_date(self._clock()))
        stream.body_allowed = head.body_allowed
        length = head.content_length
        if length is not None:
            stream.remaining = length
        if self._live(stream):
            # Nothing can follow a head without content: END_STREAM goes with it. As
            # over HTTP/1, trailers are sent only after a body of unknown length.
            ends = not head.body_allowed or length == 0
            self._h2.send_headers(stream.stream_id, head.fields, end_stream=ends)
            if ends:
                stream.output_done = True

    def _send_body(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        if not stream.body_allowed:
            stream.body_dropped = True
            return
        remaining = stream.remaining
        if remaining >= 0:
            if len(data) > remaining:
                # Never past Content-Length; the stream is reset at its end.
                data = data[:remaining]
                stream.overrun = True
            remaining -= len(data)
            stream.remaining = remaining
            if not data:
                return
        stream.body_sent += len(data)
        if self._live(stream):
            # The body that completes Content-Length carries END_STREAM.
            self._outbox.write(stream, data, end=not remaining and not stream.overrun)

    def _end_response(self, stream: Stream, trailers: list[tuple[bytes, bytes]]) -> None:
        if trailers:
            stream.trailers = trailer_fields(trailers)
        if stream.output_done or not self._live(stream):
            return
        if stream.overrun or (stream.body_allowed and stream.remaining > 0):
            action = RESET  # the body broke its Content-Length
        elif stream.trailers:
            action = TRAILERS
        else:
            action = END
        self._outbox.end(stream, action)

    def _output_finished(self, stream: Stream) -> None:
        if stream.finished:
            self._drop(stream)

    # ------------------------------------------------------ stream operations

    def send_continue(self, stream_id: int = 1) -> bytes:
        """``:status 100`` once, for a request that asked for it, before any response."""
        stream = self._streams.get(stream_id)
        if (
            stream is None
            or not stream.expect_continue
            or stream.continue_sent
            or stream.send_state is not IDLE
            or stream.request_ended
            or not self._live(stream)
        ):
            return b""
        stream.continue_sent = True
        self._h2.send_headers(stream_id, [status_field(100)])
        return self.data_to_send()

    def error_response(self, exc: ProtocolError | LocalProtocolError, stream_id: int = 1) -> bytes:
        """A complete ``:status`` error response, or RST_STREAM(INTERNAL_ERROR) once
        the response head was sent."""
        stream = self._streams.get(stream_id)
        if stream is None or not self._live(stream):
            return self.data_to_send()
        if stream.send_state is IDLE:
            self._answer_error(stream, exc)
        elif not stream.output_done:
            self._outbox.discard(stream)
            self._reset(stream, INTERNAL_ERROR)
            stream.output_done = True
        stream.send_state = DONE
        if stream.output_done:
            self._output_finished(stream)
        return self.data_to_send()

    def _answer_error(self, stream: Stream, exc: ProtocolError | LocalProtocolError) -> None:
        body = error_page(exc.status, exc.reason.encode("latin-1"), str(exc))
        fields = error_head(exc, len(body), self._server_header, http_date(self._clock()))
        stream.send_state = DONE
        if stream.method == b"HEAD":
            body = b""
        self._h2.send_headers(stream.stream_id, fields, end_stream=not body)
        if body:
            self._outbox.write(stream, body, end=True)
        else:
            stream.output_done = True
            self._output_finished(stream)

    def ack_body(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` body bytes: return their credit."""
        stream = self._streams.get(stream_id)
        if stream is None or size <= 0:
            return
        size = min(size, stream.unacked)
        stream.unacked -= size
        self._ack(stream_id, size)

    def finish_stream(self, stream_id: int) -> None:
        """The server is done with the stream. A response left incomplete resets it
        (INTERNAL_ERROR); a complete one whose request body is still arriving resets
        it with NO_ERROR (RFC 9113 §8.1) once its buffered bytes are out."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.finished = True
        if stream.output_done or not self._live(stream):
            self._drop(stream)
        elif stream.send_state is not DONE:
            self._outbox.discard(stream)
            self._reset(stream, INTERNAL_ERROR)
            self._drop(stream)
        # else: the end follows the buffered bytes, then _output_finished drops it.

    def reset_stream(self, stream_id: int, error_code: int = CANCEL) -> bytes:
        """Reset a stream the server gives up on (e.g. no progress before a timeout)."""
        stream = self._streams.get(stream_id)
        if stream is not None and self._live(stream):
            self._outbox.discard(stream)
            self._reset(stream, error_code)
            if stream.unacked:
                self._ack(stream_id, stream.unacked)
                stream.unacked = 0
            if stream.finished:
                self._drop(stream)
        return self.data_to_send()

    # --------------------------------------------------------------- queries

    def stream_open(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        if stream is None or not self._live(stream):
            return False
        return not (stream.request_ended and stream.output_done)

    def response_complete(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        return stream is None or stream.send_state is DONE

    def body_complete(self, stream_id: int) -> bool:
        """Whether the response body reached its Content-Length (or may have none):
        nothing but the end of the response can follow."""
        stream = self._streams.get(stream_id)
        return stream is None or stream.output_done or stream.remaining == 0

    def body_sent(self, stream_id: int) -> int:
        """Body bytes accepted for the response (sent or still buffered)."""
        stream = self._streams.get(stream_id)
        return stream.body_sent if stream is not None else 0

    def body_dropped(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        return stream is not None and stream.body_dropped

    def priority(self, stream_id: int) -> tuple[int, int] | None:
        """(weight 1-256, depends_on) the peer signalled for the stream; advisory."""
        stream = self._streams.get(stream_id)
        return stream.priority if stream is not None else None

    def buffered(self, stream_id: int) -> int:
        stream = self._streams.get(stream_id)
        return len(stream.out) if stream is not None else 0

    def send_window(self, stream_id: int) -> int:
        stream = self._streams.get(stream_id)
        if stream is None or not self._live(stream) or stream.output_done:
            return 0
        return self._outbox.window(stream)

    @property
    def open_streams(self) -> int:
        """Streams the server still has to answer (or whose bytes are still going out)."""
        return len(self._streams)

    @property
    def going_away(self) -> bool:
        return self._going_away or self._peer_goaway_last >= 0

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------ connection

    def shutdown(self, error_code: int = NO_ERROR) -> None:
        """Graceful GOAWAY naming the last stream accepted: later streams are refused,
        those in flight finish; ``ConnectionClosed`` follows when none is left."""
        if self._closed or self._going_away:
            return
        self._going_away = True
        self._goaway_last = self._last_accepted
        frame = GoAwayFrame(0)
        frame.last_stream_id = self._last_accepted
        frame.error_code = error_code
        self._pending += self._h2.data_to_send() + frame.serialize()

    def close(self, error_code: int = NO_ERROR) -> None:
        """GOAWAY now; the connection is over (``ConnectionClosed`` is emitted)."""
        if self._closed:
            return
        self._h2.close_connection(error_code, last_stream_id=self._last_accepted)
        self._end(clear_events=error_code != NO_ERROR)
