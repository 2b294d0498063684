"""What the parts of an HTTP/1 connection share: its fields and its read buffer.

``H1Connection`` is assembled from a head reader, a body reader and a response writer
that all derive from ``H1Base``: one object and one set of slots, so the hot methods
of every part reach the same fields with no hop in between.
"""

from __future__ import annotations

from collections.abc import Callable

from gunicorn.http.errors import ProtocolError
from gunicorn.http.events import ConnectionClosed, Headers, Request
from gunicorn.http.framing import BodyFraming
from gunicorn.http.h1.states import PROTOCOL_ERROR, receive_transition
from gunicorn.http.limits import Limits, Policy


class H1Base:
    """The fields of one HTTP/1 connection and the primitives of its read buffer."""

    __slots__ = (
        "_buf",
        "_chunk_ext_bytes",
        "_chunk_remaining",
        "_chunk_state",
        "_chunked_responses",
        "_clock",
        "_close_requested",
        "_continue_sent",
        "_crlf_count",
        "_crlf_next",
        "_drained",
        "_empty_lines",
        "_eof",
        "_error",
        "_first_crlf",
        "_framing",
        "_keep_alive",
        "_last_crlf",
        "_limits",
        "_line_limit",
        "_our_state",
        "_policy",
        "_pos",
        "_remaining",
        "_request",
        "_resp_remaining",
        "_resp_trailers",
        "_scan_from",
        "_server_line",
        "_their_state",
        "_trusted",
        "body_dropped",
        "body_sent",
    )

    # Unread bytes are _buf[_pos:]. Offsets kept while an incomplete head or section is
    # scanned (_scan_from, _crlf_*, _first_crlf, _last_crlf) are relative to _pos, so
    # each read is scanned once however small the reads are.
    _buf: bytes | bytearray
    _pos: int
    _eof: bool
    _scan_from: int
    _crlf_count: int
    _crlf_next: int
    _first_crlf: int
    _last_crlf: int
    # Settings.
    _limits: Limits
    _policy: Policy
    _line_limit: int
    _clock: Callable[[], float]
    _trusted: bool
    _server_line: bytes
    _chunked_responses: bool
    # The connection.
    _error: ProtocolError | None
    _close_requested: bool
    _drained: int
    # The current request cycle.
    _their_state: str
    _our_state: str
    _empty_lines: int
    _request: Request | None
    _remaining: int
    _chunk_state: str
    _chunk_remaining: int
    _chunk_ext_bytes: int
    _continue_sent: bool
    _framing: BodyFraming
    _keep_alive: bool
    _resp_remaining: int
    _resp_trailers: Headers
    #: The application yielded body bytes that this response may not carry.
    body_dropped: bool
    #: Body bytes framed for the current response.
    body_sent: int

    def _unread(self) -> bytes:
        return bytes(memoryview(self._buf)[self._pos :])

    def _take(self, end: int) -> bytes:
        """Consume and return the unread bytes up to absolute offset ``end``."""
        buf = self._buf
        pos = self._pos
        if end >= len(buf):
            self._buf = b""
            self._pos = 0
            if pos == 0 and type(buf) is bytes:
                return buf
        else:
            self._pos = end
        if type(buf) is bytes:
            return buf[pos:end]
        return bytes(memoryview(buf)[pos:end])

    def _skip_to(self, end: int) -> None:
        if end >= len(self._buf):
            self._buf = b""
            self._pos = 0
        else:
            self._pos = end

    def _reset_scan(self) -> None:
        self._scan_from = 0
        self._crlf_count = 0
        self._crlf_next = 0
        self._first_crlf = -1
        self._last_crlf = -1

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        """Record that the request was refused; the connection stays failed."""
        self._their_state = receive_transition(self._their_state, PROTOCOL_ERROR)
        self._error = exc
        self._keep_alive = False
        return exc

    def _peer_closed(self) -> None:
        """The peer closed its side where a request could start, or mid-drain."""
        self._their_state = receive_transition(self._their_state, ConnectionClosed)
