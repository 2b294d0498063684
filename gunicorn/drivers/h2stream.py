"""One HTTP/2 stream as the request cycle sees it (the ``StreamIO`` of ``multiplex``)."""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING, Any

from gunicorn.http.errors import LocalProtocolError, NoMoreData, ProtocolError
from gunicorn.http.events import Data, EndOfMessage, Event, Request, Response, StreamReset, Trailers
from gunicorn.wsgi.filewrapper import FileWrapper
from gunicorn.wsgi.response import encode_headers

if TYPE_CHECKING:
    from gunicorn.drivers.multiplex import H2Driver

# Body bytes of one stream that may wait for flow-control window before the stream's
# thread blocks (the rest of a response larger than this waits in the application).
STREAM_BUFFER = 262144


class StreamGone(ConnectionResetError):
    """The stream was reset or the connection ended while the application ran."""


class H2Stream:
    """One HTTP/2 request as the request cycle sees it (a ``StreamIO``)."""

    __slots__ = (
        "_body",
        "_body_done",
        "_conn",
        "_reset",
        "io_error",
        "request",
        "request_trailers",
        "stream_id",
    )

    def __init__(self, conn: H2Driver, request: Request) -> None:
        self._conn = conn
        self.request = request
        self.stream_id = request.stream_id
        self._body: deque[bytes] = deque()
        self._body_done = not request.has_body
        self._reset = False
        self.io_error: BaseException | None = None
        self.request_trailers: list[tuple[bytes, bytes]] = []

    # -- events from the reader (called with the connection lock held) ---------------------

    def _deliver(self, event: Event) -> None:
        kind = type(event)
        if kind is Data:
            self._body.append(event.data)  # type: ignore[attr-defined]
        elif kind is EndOfMessage:
            self.request_trailers = event.trailers  # type: ignore[attr-defined]
            self._body_done = True
        elif kind is StreamReset:
            self._reset = True

    # -- StreamIO ---------------------------------------------------------------------------

    def receive_body(self) -> bytes:
        conn = self._conn
        deadline = conn.deadline()
        turns = 0
        try:
            while True:
                with conn.lock:
                    if self._body:
                        data = self._body.popleft()
                        conn.core.ack_body(self.stream_id, len(data))
                        break
                    if self._body_done:
                        return b""
                    if self._reset or conn.closed:
                        raise NoMoreData("the client reset the stream in the request body")
                turns += 1
                if turns == 2:
                    conn.client_wait(True)  # a slow upload: let a stand-in serve others
                conn.wait_for_peer(deadline)
        finally:
            if turns >= 2:
                conn.client_wait(False)
        conn.flush()
        return data

    def send_continue(self) -> None:
        conn = self._conn
        with conn.lock:
            conn.queue(conn.core.send_continue(self.stream_id))
        conn.flush()

    def send(self, event: Event) -> None:
        conn = self._conn
        stream_id = self.stream_id
        event.stream_id = stream_id
        with conn.lock:
            if self._reset or conn.closed:
                self.io_error = StreamGone("the client reset the stream")
                raise self.io_error
            conn.queue(conn.core.send(event))
            waiting = conn.core.buffered(stream_id)
            complete = conn.core.body_complete(stream_id)
        kind = type(event)
        if kind is Response:
            return  # the head goes out with the first body bytes or the end
        if kind is EndOfMessage:
            return  # written when the stream is finished (see H2Driver._run_stream)
        if kind is Data and complete and waiting == 0:
            return  # the body is complete: its end comes next, write them together
        try:
            conn.flush()
        except OSError as exc:
            self.io_error = exc
            raise
        if waiting > STREAM_BUFFER:
            self._wait_for_window()

    def _wait_for_window(self) -> None:
        """Block this stream (only) until its buffered body fits again."""
        conn = self._conn
        deadline = conn.deadline()
        conn.client_wait(True)  # a slow reader: let a stand-in serve others meanwhile
        try:
            while True:
                with conn.lock:
                    if self._reset or conn.closed:
                        self.io_error = StreamGone("the client reset the stream")
                        raise self.io_error
                    if conn.core.buffered(self.stream_id) <= STREAM_BUFFER:
                        return
                try:
                    conn.wait_for_peer(deadline)
                except OSError as exc:
                    self.io_error = exc
                    raise
        finally:
            conn.client_wait(False)

    def send_file(self, wrapper: FileWrapper, fd: int, offset: int, count: int) -> int | None:
        return None  # no sendfile on HTTP/2: the adapter reads the file into DATA frames

    def body_sent(self) -> int:
        with self._conn.lock:
            return int(self._conn.core.body_sent(self.stream_id))

    @property
    def body_dropped(self) -> bool:
        with self._conn.lock:
            return bool(self._conn.core.body_dropped(self.stream_id))

    def write_error(self, exc: ProtocolError | LocalProtocolError) -> int:
        conn = self._conn
        with conn.lock:
            if conn.closed:
                return 0
            data = conn.core.error_response(exc, self.stream_id)
            conn.queue(data)
        with contextlib.suppress(OSError):
            conn.flush()
        return 0

    def close_after_response(self) -> None:
        self._conn.shutdown()

    def send_trailers(self, headers: list[tuple[str, str]]) -> None:
        """``environ["gunicorn.http2.send_trailers"]``: trailer fields sent with the end of
        the response body."""
        self.send(Trailers(encode_headers(headers)))

    def extra_environ(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"gunicorn.http2.send_trailers": self.send_trailers}
        with self._conn.lock:
            priority = self._conn.core.priority(self.stream_id)
        if priority is not None:
            extra["gunicorn.http2.priority_weight"] = priority[0]
            extra["gunicorn.http2.priority_depends_on"] = priority[1]
        return extra


__all__ = ["STREAM_BUFFER", "H2Stream", "StreamGone"]
