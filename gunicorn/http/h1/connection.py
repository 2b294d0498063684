"""``H1Connection``: the server side of one HTTP/1.0 or HTTP/1.1 connection.

It implements ``gunicorn.http.connection.ServerConnection``. Bytes go in with
``receive_data``; ``next_event`` returns the request's events (the request half of
``states.py``); ``send`` turns response events into bytes (the response half). When both
halves are DONE and the connection may be kept alive, ``start_next_cycle`` resets them
for the next request. A request whose body the application left unread is drained (up
to ``Limits.max_body_drain`` bytes) before the next request is parsed, or the response
closes the connection, so no body byte is ever taken for a request.
"""

from __future__ import annotations

from collections.abc import Callable

from gunicorn.http import framing
from gunicorn.http.connection import NEED_DATA, PAUSED, NextEvent
from gunicorn.http.errors import ProtocolError, ResponseStateError
from gunicorn.http.events import ConnectionClosed, Data, EndOfMessage, Request
from gunicorn.http.h1.body import BodyReader
from gunicorn.http.h1.states import (
    BODY,
    CLOSED,
    DISCARD,
    DONE,
    ERROR,
    IDLE,
    NEXT_CYCLE,
    RECEIVE_TRANSITIONS,
    SWITCHED,
)
from gunicorn.http.h1.writer import _SERVER_LINES, ResponseWriter, server_line
from gunicorn.http.limits import MAX_REQUEST_LINE, Limits, Policy

_new_event = object.__new__
_HEAD_READ = RECEIVE_TRANSITIONS[IDLE, Request]
_BODY_READ = RECEIVE_TRANSITIONS[BODY, EndOfMessage]
_NO_TRAILERS: list[tuple[bytes, bytes]] = []  # shared and never mutated
# HTTP/1 has no flow control: what ``send_window`` reports.
_UNLIMITED_WINDOW = 2**62


class H1Connection(BodyReader, ResponseWriter):
    """The server side of one HTTP/1.0 or HTTP/1.1 connection."""

    __slots__ = ()

    #: The protocol of ``ServerConnection``: "1.1" for every HTTP/1.x connection.
    http_version = "1.1"

    def __init__(
        self,
        limits: Limits | None = None,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float],
        trusted_forwarder: bool = False,
        server_header: bytes = b"gunicorn",
        chunked_responses: bool = True,
    ) -> None:
        self._limits = limits if limits is not None else Limits()
        self._policy = policy if policy is not None else Policy()
        self._line_limit = self._limits.max_request_line or MAX_REQUEST_LINE * 16
        self._clock = clock
        self._trusted = trusted_forwarder
        # The cache first: a connection per request is the sync worker's usual case.
        self._server_line = _SERVER_LINES.get(server_header) or server_line(server_header)
        self._chunked_responses = chunked_responses
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._reset_scan()
        self._error = None
        self._close_requested = False
        self._drained = 0
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self._their_state = IDLE
        self._our_state = IDLE
        self._empty_lines = 0
        self._request = None
        self._remaining = 0
        self._chunk_state = ""
        self._chunk_remaining = 0
        self._chunk_ext_bytes = 0
        self._continue_sent = False
        self._framing = framing.NONE
        self._keep_alive = True
        self._resp_remaining = 0
        self._resp_trailers = _NO_TRAILERS
        self.body_dropped = False
        self.body_sent = 0

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            self._buf = data
            self._pos = 0
        elif type(buf) is bytes:
            joined = bytearray(memoryview(buf)[pos:])
            joined += data
            self._buf = joined
            self._pos = 0
        else:
            assert isinstance(buf, bytearray)
            if pos > 65536 and pos * 2 > len(buf):
                del buf[:pos]
                self._pos = 0
            buf += data

    @property
    def request(self) -> Request | None:
        """The request being answered, if any."""
        return self._request

    @property
    def pending_input(self) -> int:
        """Bytes received and not parsed yet (a driver pauses reading above a bound)."""
        return len(self._buf) - self._pos

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not parsed, and whether the peer closed: for hand-offs
        after an Upgrade or CONNECT, and for HTTP/2 prior-knowledge detection."""
        return self._unread(), self._eof

    def next_event(self) -> NextEvent:
        """The next event from the peer, ``NEED_DATA`` or ``PAUSED``."""
        state = self._their_state
        if state is IDLE:
            if self._pos >= len(self._buf) and not self._eof:
                return NEED_DATA  # nothing buffered: nothing to scan
            try:
                request = self._take_head()
            except ProtocolError as exc:
                raise self._fail(exc) from None
            if request is None:
                if self._their_state is CLOSED:
                    return ConnectionClosed()
                return NEED_DATA
            self._request = request
            self._their_state = _HEAD_READ
            if request.chunked:
                self._chunk_state = "size"
            else:
                # With nothing to read, EndOfMessage comes next.
                self._remaining = request.content_length or 0
            return request
        if state is BODY:
            if self._remaining or self._chunk_state:
                return self._read_body()
            self._their_state = _BODY_READ
            end: EndOfMessage = _new_event(EndOfMessage)
            end.stream_id = 1
            end.trailers = []
            return end
        if state is DONE or state is SWITCHED:
            return PAUSED
        if state is CLOSED:
            return ConnectionClosed()
        if state is DISCARD:
            return self._discard_body()
        assert state is ERROR and self._error is not None
        raise self._error

    def _discard_body(self) -> NextEvent:
        """Read and drop the rest of a body the application did not read."""
        while True:
            event = self._read_body()
            if type(event) is Data:
                self._drained += len(event.data)
                if self._drained > self._limits.max_body_drain:
                    self._peer_closed()
                    return ConnectionClosed()
                continue
            if type(event) is EndOfMessage:  # now DONE, and the response was done
                self._reset_cycle()
                return self.next_event()
            return event

    def start_next_cycle(self) -> None:
        """Get ready for the next request once the response is complete."""
        if self._our_state is not DONE:
            raise ResponseStateError("the response is not complete")
        # As the keep_alive property, once the response is done.
        their_state = self._their_state
        if not self._keep_alive or self._close_requested or their_state is ERROR:
            raise ResponseStateError("the connection is not reusable")
        if their_state is DONE or (
            their_state is BODY and not self._remaining and not self._chunk_state
        ):
            self._reset_cycle()  # complete, or a request without a body
            return
        if (their_state, NEXT_CYCLE) not in RECEIVE_TRANSITIONS:
            raise ResponseStateError(f"cannot start a new request in state {their_state}")
        # The application did not read the whole body: skip it before the next head.
        self._their_state = RECEIVE_TRANSITIONS[their_state, NEXT_CYCLE]
        self._our_state = IDLE
        self._drained = 0

    # ------------------------------------------------- the rest of ServerConnection

    def data_to_send(self) -> bytes:
        """HTTP/1 produces no bytes on its own."""
        return b""

    def ack_body(self, stream_id: int, size: int) -> None:
        """HTTP/1 has no flow control: nothing to give back."""

    def send_window(self, stream_id: int) -> int:
        """HTTP/1 has no flow control: any amount may be sent."""
        return _UNLIMITED_WINDOW

    def buffered(self, stream_id: int) -> int:
        """HTTP/1 writes what ``send`` returns at once: nothing waits in the core."""
        return 0
