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

import h2.events as h2e
import h2.exceptions
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from gunicorn.http.connection import NEED_DATA, NextEvent
from gunicorn.http.errors import LocalProtocolError, ProtocolError, ResponseStateError
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    StreamReset,
    Trailers,
)
from gunicorn.http.h1 import http_date
from gunicorn.http.h2_engine import ServerEngine, ServerStream
from gunicorn.http.h2_guards import FloodGuard
from gunicorn.http.h2_headers import ANSWERED_STATUSES, build_request, check_trailers
from gunicorn.http.h2_response import (
    error_head,
    error_page,
    informational_fields,
    response_head,
    status_field,
    trailer_fields,
)
from gunicorn.http.h2_stream import (
    DONE,
    END,
    IDLE,
    RESET,
    SEND_TRANSITIONS,
    TRAILERS,
    Stream,
)
from gunicorn.http.headers import CONNECTION_SPECIFIC
from gunicorn.http.limits import Limits, Policy
from gunicorn.http.negotiate import InvalidHTTP2Settings, decode_settings, encode_settings

NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
REFUSED_STREAM = 0x7
CANCEL = 0x8
ENHANCE_YOUR_CALM = 0xB

# A DATA frame smaller than this is held back until the window allows more or the
# rest fits (silly window avoidance against 1-byte WINDOW_UPDATE dribbling), unless
# the peer's initial window itself is smaller.
MIN_DATA_FRAME = 1024
# Header list size (RFC 7541 §4.1 counting) accepted when the setting is 0 (unlimited).
_FIELD_OVERHEAD = 32

_UPGRADE_DROPPED = CONNECTION_SPECIFIC | {b"http2-settings", b"te"}


class _Calm(Exception):
    """A flood guard tripped."""


class H2Connection:
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
        self._events: deque[Event] = deque()
        self._streams: dict[int, Stream] = {}
        self._blocked: dict[int, Stream] = {}  # streams with bytes waiting for window
        self._dropped: set[int] = set()  # streams whose queued events are skipped
        self._pending = b""  # our own frames (graceful GOAWAY) ahead of h2's output
        self._last_accepted = 0
        self._goaway_last = 0
        self._peer_goaway_last = -1
        self._going_away = False
        self._closed = False
        self._window_changed = False
        self._handlers: dict[type[h2e.Event], Callable[[h2e.Event], None]] = {
            h2e.RequestReceived: self._on_request,  # type: ignore[dict-item]
            h2e.DataReceived: self._on_data,  # type: ignore[dict-item]
            h2e.StreamEnded: self._on_stream_ended,  # type: ignore[dict-item]
            h2e.TrailersReceived: self._on_trailers,  # type: ignore[dict-item]
            h2e.StreamReset: self._on_reset,  # type: ignore[dict-item]
            h2e.WindowUpdated: self._on_window_update,  # type: ignore[dict-item]
            h2e.RemoteSettingsChanged: self._on_settings,  # type: ignore[dict-item]
            h2e.SettingsAcknowledged: self._on_control_ack,
            h2e.PingReceived: self._on_ping,
            h2e.PingAckReceived: self._on_control_ack,
            h2e.PriorityUpdated: self._on_priority,  # type: ignore[dict-item]
            h2e.ConnectionTerminated: self._on_goaway,  # type: ignore[dict-item]
        }

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
        except h2.exceptions.ProtocolError:
            # h2 queued GOAWAY with the error's code (FRAME_SIZE_ERROR, ENHANCE_YOUR_CALM
            # for header list bombs and CONTINUATION floods, PROTOCOL_ERROR...).
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
                self._flush_blocked()
        except _Calm:
            self.close(ENHANCE_YOUR_CALM)

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

    def _calm_if(self, tripped: bool) -> None:
        if tripped:
            raise _Calm

    def _refused(self, stream_id: int) -> bool:
        if self._going_away and stream_id > self._goaway_last:
            return True
        if 0 <= self._peer_goaway_last < stream_id:
            return True
        return len(self._streams) >= self._limits.h2_max_concurrent_streams

    def _on_request(self, event: h2e.RequestReceived) -> None:
        sid = event.stream_id
        guard = self._guard
        guard.stream_opened()
        if not event.headers:
            self._calm_if(guard.empty_frame())
        ended = event.stream_ended is not None
        if self._refused(sid):
            self._h2.reset_stream(sid, REFUSED_STREAM)
            if not self._going_away:
                self._calm_if(guard.reset())
            return
        try:
            request = build_request(
                event.headers,
                sid,
                ended,
                self._limits,
                self._policy,
                self._trusted,
            )
        except ProtocolError as exc:
            self._calm_if(guard.reset())
            if exc.status in ANSWERED_STATUSES:
                stream = Stream(sid, b"GET")
                stream.request_ended = ended
                stream.finished = True
                self._accept(stream)
                self._answer_error(stream, exc)
            else:
                self._h2.reset_stream(sid, PROTOCOL_ERROR)
            return
        stream = Stream(sid, request.method)
        stream.expect_continue = request.expect_continue
        stream.content_length = request.content_length
        if event.priority_updated is not None:
            self._set_priority(stream, event.priority_updated)
        self._accept(stream)
        self._events.append(request)
        if ended:
            stream.request_ended = True
            self._events.append(EndOfMessage(None, sid))

    def _accept(self, stream: Stream) -> None:
        self._streams[stream.stream_id] = stream
        if stream.stream_id > self._last_accepted:
            self._last_accepted = stream.stream_id

    def _on_data(self, event: h2e.DataReceived) -> None:
        sid = event.stream_id
        data = event.data
        size = len(data)
        flow = event.flow_controlled_length
        stream = self._streams.get(sid)
        if stream is None or stream.reset or stream.finished:
            self._ack(sid, flow)  # nobody will consume it
            return
        if not size and event.stream_ended is None:
            self._calm_if(self._guard.empty_frame())
        if flow > size:
            self._ack(sid, flow - size)  # padding
        stream.received += size
        if stream.content_length is not None and stream.received > stream.content_length:
            self._ack(sid, size)
            self._malformed(stream)
            return
        if size:
            stream.unacked += size
            self._events.append(Data(data, sid))

    def _on_trailers(self, event: h2e.TrailersReceived) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.reset or stream.finished:
            return
        h2_stream = self._h2.streams.get(event.stream_id)
        if isinstance(h2_stream, ServerStream) and h2_stream.malformed_trailers:
            self._malformed(stream)
            return
        try:
            trailers = check_trailers(
                event.headers,
                self._limits,
                self._policy,
                self._trusted,
            )
        except ProtocolError:
            self._malformed(stream)
            return
        self._end_request(stream, trailers)

    def _on_stream_ended(self, event: h2e.StreamEnded) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None and not stream.request_ended and not stream.reset:
            self._end_request(stream, None)

    def _end_request(self, stream: Stream, trailers: list[tuple[bytes, bytes]] | None) -> None:
        stream.request_ended = True
        if stream.finished:
            if stream.output_done:
                self._drop(stream)
            return
        expected = stream.content_length
        if expected is not None and stream.received != expected:
            self._malformed(stream)
            return
        self._events.append(EndOfMessage(trailers, stream.stream_id))

    def _malformed(self, stream: Stream) -> None:
        """RFC 9113 §8.1.1: reset a stream whose request turned out malformed."""
        self._calm_if(self._guard.reset())
        self._reset(stream, PROTOCOL_ERROR)
        self._lost(stream, PROTOCOL_ERROR)

    def _on_reset(self, event: h2e.StreamReset) -> None:
        # Peer resets, and h2's own (a frame on a half-closed stream, a window
        # overflow), count toward one budget (CVE-2023-44487, CVE-2025-8671).
        self._calm_if(self._guard.reset())
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.reset:
            return
        stream.reset = True
        self._lost(stream, int(event.error_code))

    def _lost(self, stream: Stream, error_code: int) -> None:
        """A stream died: release its buffers and credit, tell the application."""
        sid = stream.stream_id
        stream.out = bytearray()
        stream.end_action = 0
        self._blocked.pop(sid, None)
        if stream.unacked:
            self._ack(sid, stream.unacked)
            stream.unacked = 0
        if stream.finished:
            self._drop(stream)
        elif not stream.delivered:
            # The application never saw it: forget it with its queued events.
            self._dropped.add(sid)
            del self._streams[sid]
        else:
            self._events.append(StreamReset(error_code, sid))

    def _on_window_update(self, event: h2e.WindowUpdated) -> None:
        self._calm_if(self._guard.window_update())
        self._window_changed = True

    def _on_settings(self, event: h2e.RemoteSettingsChanged) -> None:
        self._calm_if(self._guard.control_frame(answered=True))
        changed = event.changed_settings
        if SettingCodes.INITIAL_WINDOW_SIZE in changed or SettingCodes.MAX_FRAME_SIZE in changed:
            self._window_changed = True

    def _on_ping(self, event: h2e.Event) -> None:
        self._calm_if(self._guard.control_frame(answered=True))

    def _on_control_ack(self, event: h2e.Event) -> None:
        self._calm_if(self._guard.control_frame(answered=False))

    def _on_priority(self, event: h2e.PriorityUpdated) -> None:
        self._calm_if(self._guard.priority_frame())
        stream = self._streams.get(event.stream_id or 0)
        if stream is not None:
            self._set_priority(stream, event)

    @staticmethod
    def _set_priority(stream: Stream, event: h2e.PriorityUpdated) -> None:
        stream.priority = (event.weight or 16, event.depends_on or 0)

    def _on_goaway(self, event: h2e.ConnectionTerminated) -> None:
        if event.error_code:
            self._end(clear_events=True)
            return
        last = event.last_stream_id or 0
        if self._peer_goaway_last < 0 or last < self._peer_goaway_last:
            self._peer_goaway_last = last

    def _end(self, clear_events: bool) -> None:
        self._closed = True
        if clear_events:
            self._events.clear()
        self._events.append(ConnectionClosed())

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
            stream.send_state = state
            self._send_body(stream, event.data)  # type: ignore[attr-defined]
        elif kind is Response:
            head = response_head(
                event,  # type: ignore[arg-type]
                stream.method,
                self._server_header,
                http_date(self._clock()),
            )
            stream.send_state = state
            stream.body_allowed = head.body_allowed
            if head.content_length is not None:
                stream.remaining = head.content_length
            if self._live(stream):
                self._h2.send_headers(stream.stream_id, head.fields)
        elif kind is EndOfMessage:
            stream.send_state = state
            self._end_response(stream, event.trailers or stream.trailers)  # type: ignore[attr-defined]
        elif kind is Trailers:
            stream.trailers = trailer_fields(event.headers)  # type: ignore[attr-defined]
        else:
            self._send_informational(stream, event)  # type: ignore[arg-type]
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
            stream.remaining = remaining - len(data)
            if not data:
                return
        stream.body_sent += len(data)
        if self._live(stream):
            self._write(stream, data)

    def _write(self, stream: Stream, data: bytes) -> None:
        """Send what the windows allow now; buffer the rest."""
        if stream.out:
            stream.out += data
            return
        conn = self._h2
        sid = stream.stream_id
        size = len(data)
        window = conn.local_flow_control_window(sid)
        if size <= window and size <= conn.max_outbound_frame_size:
            conn.send_data(sid, data)  # the usual case: one frame, window open
            self._guard.data_frames_sent(1)
            return
        count = self._sendable(window, size)
        if count:
            view = memoryview(data)
            self._send_frames(sid, view, count, end=False)
            view.release()
        if count < size:
            stream.out = bytearray(data[count:]) if count else bytearray(data)
            self._blocked[sid] = stream

    def _sendable(self, window: int, pending: int) -> int:
        """How many of ``pending`` bytes to send with ``window`` bytes of window."""
        if window >= pending:
            return pending
        if window <= 0:
            return 0
        threshold = min(MIN_DATA_FRAME, self._h2.remote_settings.initial_window_size)
        return window if window >= threshold else 0

    def _send_frames(self, sid: int, view: memoryview, count: int, end: bool) -> None:
        conn = self._h2
        step = conn.max_outbound_frame_size
        frames = 0
        for start in range(0, count, step):
            stop = min(start + step, count)
            conn.send_data(sid, view[start:stop], end_stream=end and stop == count)
            frames += 1
        self._guard.data_frames_sent(frames)

    def _flush_blocked(self) -> None:
        for stream in list(self._blocked.values()):
            if self._h2.outbound_flow_control_window <= 0:
                return
            self._flush(stream)

    def _flush(self, stream: Stream) -> None:
        sid = stream.stream_id
        out = stream.out
        if out:
            pending = len(out)
            count = self._sendable(self._h2.local_flow_control_window(sid), pending)
            if not count:
                return
            end = count == pending and stream.end_action == END
            view = memoryview(out)
            self._send_frames(sid, view, count, end)
            view.release()
            del out[:count]
            if out:
                return
            if end:
                stream.end_action = 0
                self._output_finished(stream)
        self._blocked.pop(sid, None)
        if stream.end_action:
            self._finish_output(stream, stream.end_action)

    def _end_response(self, stream: Stream, trailers: list[tuple[bytes, bytes]]) -> None:
        if trailers and trailers is not stream.trailers:
            trailers = trailer_fields(trailers)
        stream.trailers = trailers
        if stream.overrun or (stream.body_allowed and stream.remaining > 0):
            action = RESET  # the body broke its Content-Length
        elif trailers:
            action = TRAILERS
        else:
            action = END
        if not self._live(stream):
            return
        if stream.out:
            stream.end_action = action
        else:
            self._finish_output(stream, action)

    def _finish_output(self, stream: Stream, action: int) -> None:
        stream.end_action = 0
        sid = stream.stream_id
        if action == END:
            self._h2.end_stream(sid)
            self._guard.data_frames_sent(1)
        elif action == TRAILERS:
            self._h2.send_headers(sid, stream.trailers, end_stream=True)
        else:
            self._reset(stream, INTERNAL_ERROR)
        self._output_finished(stream)

    def _output_finished(self, stream: Stream) -> None:
        stream.output_done = True
        if stream.finished:
            self._drop(stream)

    def _reset(self, stream: Stream, error_code: int) -> None:
        stream.reset = True
        h2_stream = self._h2.streams.get(stream.stream_id)
        if h2_stream is not None and not h2_stream.closed and not self._closed:
            self._h2.reset_stream(stream.stream_id, error_code)

    def _ack(self, sid: int, size: int) -> None:
        if size > 0 and not self._closed:
            self._h2.acknowledge_received_data(size, sid)

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
            self._blocked.pop(stream_id, None)
            stream.out = bytearray()
            stream.send_state = DONE
            self._reset(stream, INTERNAL_ERROR)
            self._output_finished(stream)
        return self.data_to_send()

    def _answer_error(self, stream: Stream, exc: ProtocolError | LocalProtocolError) -> None:
        body = error_page(exc)
        date = http_date(self._clock())
        fields = error_head(exc, len(body), self._server_header, date)
        stream.send_state = DONE
        if stream.method == b"HEAD":
            body = b""
        self._h2.send_headers(stream.stream_id, fields, end_stream=not body)
        if body:
            self._write(stream, body)
            if stream.out:
                stream.end_action = END
                return
            self._h2.end_stream(stream.stream_id)
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
        if stream.reset or self._closed:
            self._drop(stream)
        elif stream.send_state is not DONE:
            self._blocked.pop(stream_id, None)
            stream.out = bytearray()
            self._reset(stream, INTERNAL_ERROR)
            self._drop(stream)
        elif stream.output_done:
            self._drop(stream)

    def _drop(self, stream: Stream) -> None:
        sid = stream.stream_id
        if not stream.request_ended and not stream.reset:
            self._reset(stream, NO_ERROR)
        if stream.unacked:
            self._ack(sid, stream.unacked)
            stream.unacked = 0
        self._streams.pop(sid, None)
        self._blocked.pop(sid, None)

    def reset_stream(self, stream_id: int, error_code: int = CANCEL) -> bytes:
        """Reset a stream the server gives up on (e.g. no progress before a timeout)."""
        stream = self._streams.get(stream_id)
        if stream is not None and self._live(stream):
            self._blocked.pop(stream_id, None)
            stream.out = bytearray()
            stream.end_action = 0
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
        window = self._h2.local_flow_control_window(stream_id)
        return max(window - len(stream.out), 0)

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
