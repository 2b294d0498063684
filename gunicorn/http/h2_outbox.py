"""Response bytes of every HTTP/2 stream, sent as flow control allows (RFC 9113 §5.2).

``write`` never blocks: what the stream and connection windows allow goes out at once,
in frames no larger than the peer's SETTINGS_MAX_FRAME_SIZE; the rest waits in the
stream's buffer until ``flush_blocked`` (after WINDOW_UPDATE or SETTINGS) can send it.
The end of a response (END_STREAM, trailers or a reset) follows its buffered bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from gunicorn.http.h2_engine import ServerEngine
from gunicorn.http.h2_guards import FloodGuard
from gunicorn.http.h2_stream import END, INTERNAL_ERROR, TRAILERS, Stream

# A DATA frame smaller than this is held back until the window allows more or the
# rest fits (silly window avoidance against 1-byte WINDOW_UPDATE dribbling), unless
# the peer's initial window itself is smaller.
MIN_DATA_FRAME = 1024


class Outbox:
    __slots__ = ("_engine", "_guard", "_on_done", "blocked")

    def __init__(
        self, engine: ServerEngine, guard: FloodGuard, on_done: Callable[[Stream], None]
    ) -> None:
        self._engine = engine
        self._guard = guard
        self._on_done = on_done  # called once a stream's response is fully out
        self.blocked: dict[int, Stream] = {}  # streams with bytes waiting for window

    def write(self, stream: Stream, data: bytes, end: bool) -> None:
        """Send ``data`` as the windows allow (END_STREAM after it when ``end``)."""
        if stream.out:
            stream.out += data
            if end:
                stream.end_action = END
            return
        conn = self._engine
        sid = stream.stream_id
        size = len(data)
        window = conn.local_flow_control_window(sid)
        if size <= window and size <= conn.max_outbound_frame_size:
            conn.send_data(sid, data, end_stream=end)  # the usual case: one frame
            self._guard.data_frames_sent(1)
            if end:
                self._done(stream)
            return
        count = self._sendable(window, size)
        if count:
            view = memoryview(data)
            self._send_frames(sid, view, count, end and count == size)
            view.release()
        if count < size:
            stream.out = bytearray(data[count:]) if count else bytearray(data)
            self.blocked[sid] = stream
            if end:
                stream.end_action = END
        elif end:
            self._done(stream)

    def end(self, stream: Stream, action: int) -> None:
        """End the response with ``action`` once its buffered bytes are out."""
        if stream.out:
            stream.end_action = action
        else:
            self._finish(stream, action)

    def discard(self, stream: Stream) -> None:
        """Forget a stream's pending bytes and end (it was reset)."""
        stream.out = bytearray()
        stream.end_action = 0
        self.blocked.pop(stream.stream_id, None)

    def window(self, stream: Stream) -> int:
        window = self._engine.local_flow_control_window(stream.stream_id)
        return max(window - len(stream.out), 0)

    def flush_blocked(self) -> None:
        for stream in list(self.blocked.values()):
            if self._engine.outbound_flow_control_window <= 0:
                return
            self._flush(stream)

    def _flush(self, stream: Stream) -> None:
        sid = stream.stream_id
        out = stream.out
        pending = len(out)
        count = self._sendable(self._engine.local_flow_control_window(sid), pending)
        if not count:
            return
        end = count == pending and stream.end_action == END
        view = memoryview(out)
        self._send_frames(sid, view, count, end)
        view.release()
        del out[:count]
        if out:
            return
        del self.blocked[sid]
        if end:
            self._done(stream)
        elif stream.end_action:
            self._finish(stream, stream.end_action)

    def _sendable(self, window: int, pending: int) -> int:
        """How many of ``pending`` bytes to send with ``window`` bytes of window."""
        if window >= pending:
            return pending
        if window <= 0:
            return 0
        threshold = min(MIN_DATA_FRAME, self._engine.remote_settings.initial_window_size)
        return window if window >= threshold else 0

    def _send_frames(self, sid: int, view: memoryview, count: int, end: bool) -> None:
        conn = self._engine
        step = conn.max_outbound_frame_size
        frames = 0
        for start in range(0, count, step):
            stop = min(start + step, count)
            conn.send_data(sid, view[start:stop], end_stream=end and stop == count)
            frames += 1
        self._guard.data_frames_sent(frames)

    def _finish(self, stream: Stream, action: int) -> None:
        sid = stream.stream_id
        if action == END:
            self._engine.end_stream(sid)
            self._guard.data_frames_sent(1)
        elif action == TRAILERS:
            self._engine.send_headers(sid, stream.trailers, end_stream=True)
        else:
            reset(self._engine, stream, INTERNAL_ERROR)
        self._done(stream)

    def _done(self, stream: Stream) -> None:
        stream.end_action = 0
        stream.output_done = True
        self._on_done(stream)


def reset(engine: ServerEngine, stream: Stream, error_code: int) -> None:
    """RST_STREAM, unless h2 already considers the stream closed."""
    stream.reset = True
    h2_stream = engine.streams.get(stream.stream_id)
    if h2_stream is not None and not h2_stream.closed:
        engine.reset_stream(stream.stream_id, error_code)
