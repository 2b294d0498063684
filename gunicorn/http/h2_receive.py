"""HTTP/2 frames in, the core's events out: the request side of ``h2.H2Connection``.

``h2`` events become ``Request``, ``Data``, ``EndOfMessage``, ``StreamReset`` and
``ConnectionClosed``, each with its stream id. A malformed request resets its stream
(RFC 9113 §8.1.1) and is never emitted; the flood guards count as frames arrive.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import h2.events as h2e
from h2.settings import SettingCodes

from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import ConnectionClosed, Data, EndOfMessage, Event, StreamReset
from gunicorn.http.h2_engine import ServerEngine, ServerStream
from gunicorn.http.h2_guards import FloodGuard
from gunicorn.http.h2_headers import ANSWERED_STATUSES, build_request, check_trailers
from gunicorn.http.h2_outbox import Outbox, reset
from gunicorn.http.h2_stream import NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, Stream
from gunicorn.http.limits import Limits, Policy


class Calm(Exception):
    """A flood guard tripped: the connection ends with ENHANCE_YOUR_CALM."""


class Receiver:
    """The request side of an HTTP/2 connection (the base of ``H2Connection``)."""

    _limits: Limits
    _policy: Policy
    _trusted: bool
    _h2: ServerEngine
    _guard: FloodGuard
    _outbox: Outbox
    _events: deque[Event]
    _streams: dict[int, Stream]
    _dropped: set[int]  # streams whose queued events are skipped
    _last_accepted: int
    _goaway_last: int
    _peer_goaway_last: int
    _going_away: bool
    _closed: bool
    _window_changed: bool

    def _handler_table(self) -> dict[type[h2e.Event], Callable[[h2e.Event], None]]:
        return {
            h2e.RequestReceived: self._on_request,  # type: ignore[dict-item]
            h2e.DataReceived: self._on_data,  # type: ignore[dict-item]
            h2e.StreamEnded: self._on_stream_ended,  # type: ignore[dict-item]
            h2e.TrailersReceived: self._on_trailers,  # type: ignore[dict-item]
            h2e.StreamReset: self._on_reset,  # type: ignore[dict-item]
            h2e.WindowUpdated: self._on_window_update,
            h2e.RemoteSettingsChanged: self._on_settings,  # type: ignore[dict-item]
            h2e.SettingsAcknowledged: self._on_control_ack,
            h2e.PingReceived: self._on_ping,
            h2e.PingAckReceived: self._on_control_ack,
            h2e.PriorityUpdated: self._on_priority,  # type: ignore[dict-item]
            h2e.ConnectionTerminated: self._on_goaway,  # type: ignore[dict-item]
        }

    def _answer_error(self, stream: Stream, exc: ProtocolError | LocalProtocolError) -> None:
        raise NotImplementedError

    def _calm_if(self, tripped: bool, why: str) -> None:
        if tripped:
            raise Calm(why)

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
            self._calm_if(guard.empty_frame(), "too many empty frames")
        ended = event.stream_ended is not None
        if self._refused(sid):
            self._h2.reset_stream(sid, REFUSED_STREAM)
            if not self._going_away:
                self._calm_if(guard.reset(), "too many stream resets")
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
            self._calm_if(guard.reset(), "too many stream resets")
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
            self._calm_if(self._guard.empty_frame(), "too many empty frames")
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
        self._calm_if(self._guard.reset(), "too many stream resets")
        self._reset(stream, PROTOCOL_ERROR)
        self._lost(stream, PROTOCOL_ERROR)

    def _on_reset(self, event: h2e.StreamReset) -> None:
        # Peer resets, and h2's own (a frame on a half-closed stream, a window
        # overflow), count toward one budget (CVE-2023-44487, CVE-2025-8671).
        self._calm_if(self._guard.reset(), "too many stream resets")
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.reset:
            return
        stream.reset = True
        self._lost(stream, int(event.error_code))

    def _lost(self, stream: Stream, error_code: int) -> None:
        """A stream died: release its buffers and credit, tell the application."""
        sid = stream.stream_id
        self._outbox.discard(stream)
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

    def _on_window_update(self, event: h2e.Event) -> None:
        self._calm_if(self._guard.window_update(), "too many WINDOW_UPDATE frames")
        self._window_changed = True

    def _on_settings(self, event: h2e.RemoteSettingsChanged) -> None:
        self._calm_if(self._guard.control_frame(answered=True), "too many PING/SETTINGS frames")
        changed = event.changed_settings
        if SettingCodes.INITIAL_WINDOW_SIZE in changed or SettingCodes.MAX_FRAME_SIZE in changed:
            self._window_changed = True

    def _on_ping(self, event: h2e.Event) -> None:
        self._calm_if(self._guard.control_frame(answered=True), "too many PING/SETTINGS frames")

    def _on_control_ack(self, event: h2e.Event) -> None:
        self._calm_if(self._guard.control_frame(answered=False), "too many PING/SETTINGS frames")

    def _on_priority(self, event: h2e.PriorityUpdated) -> None:
        self._calm_if(self._guard.priority_frame(), "too many PRIORITY frames")
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

    def _reset(self, stream: Stream, error_code: int) -> None:
        if self._closed:
            stream.reset = True
        else:
            reset(self._h2, stream, error_code)

    def _ack(self, sid: int, size: int) -> None:
        if size > 0 and not self._closed:
            self._h2.acknowledge_received_data(size, sid)

    def _drop(self, stream: Stream) -> None:
        sid = stream.stream_id
        if not stream.request_ended and not stream.reset:
            self._reset(stream, NO_ERROR)
        if stream.unacked:
            self._ack(sid, stream.unacked)
            stream.unacked = 0
        self._streams.pop(sid, None)
        self._outbox.blocked.pop(sid, None)
