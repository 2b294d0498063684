"""The response half of an HTTP/1 connection: response events -> bytes.

The framing decisions come from ``framing.py`` (the one home of those rules); field
checks from ``headers.py``. The writer adds the status line, Server, Date and
Connection, and frames the body as decided: Content-Length (never past it), chunked,
or delimited by closing.
"""

from __future__ import annotations

from http import HTTPStatus

from gunicorn.http import framing
from gunicorn.http.error_page import error_page
from gunicorn.http.errors import (
    InvalidResponseHeader,
    InvalidResponseStatus,
    LocalProtocolError,
    ProtocolError,
    ResponseStateError,
)
from gunicorn.http.events import (
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Trailers,
)
from gunicorn.http.h1.base import H1Base
from gunicorn.http.h1.dates import date_line
from gunicorn.http.h1.states import (
    BODY,
    DONE,
    ERROR,
    ERROR_PAGE,
    IDLE,
    SEND_BODY,
    SEND_TRANSITIONS,
    SWITCH,
    SWITCHED,
    receive_transition,
)
from gunicorn.http.headers import (
    _NAME_CACHE,
    FORBIDDEN_FIELD_BYTE_RE,
    FORBIDDEN_TRAILERS,
    HOP_BY_HOP,
    OWS,
    response_content_length,
    validate_response_header,
    validate_response_status,
)

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_STATUS_LINES_11: dict[int, bytes] = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, phrase) for code, phrase in _REASONS.items()
}
_RESPONSE_SPECIAL = HOP_BY_HOP | {b"content-length", b"date", b"server"}
_FORBIDDEN_VALUE_RE = FORBIDDEN_FIELD_BYTE_RE

_CHUNKED = framing.CHUNKED
_LENGTH = framing.LENGTH
_CLOSE = framing.CLOSE
_NO_BODY = framing.NONE
_response_framing = framing.response_framing
_content_length_allowed = framing.content_length_allowed
_encode_chunk = framing.encode_chunk

_HEAD_SENT = SEND_TRANSITIONS[IDLE, Response]
_BODY_SENT = SEND_TRANSITIONS[SEND_BODY, EndOfMessage]

# "Server: ..." lines by the server_header they were built for (one or two per process).
_SERVER_LINES: dict[bytes, bytes] = {}


def server_line(server_header: bytes) -> bytes:
    """The ``Server`` field line for ``server_header`` (b"" for none)."""
    line = _SERVER_LINES.get(server_header)
    if line is None:
        line = b"Server: %s\r\n" % server_header if server_header else b""
        if len(_SERVER_LINES) < 16:
            _SERVER_LINES[server_header] = line
    return line


def status_line(status: int, reason: bytes, version: tuple[int, int]) -> bytes:
    if version == (1, 0):
        return b"HTTP/1.0 %d %s\r\n" % (status, reason or _REASONS.get(status, b""))
    if not reason:
        line = _STATUS_LINES_11.get(status)
        if line is not None:
            return line
    return b"HTTP/1.1 %d %s\r\n" % (status, reason or _REASONS.get(status, b""))


class ResponseWriter(H1Base):
    """Turns the response events of the current request into bytes."""

    __slots__ = ()

    @property
    def keep_alive(self) -> bool:
        """Whether the connection will carry another request after this response."""
        if self._close_requested or self._their_state is ERROR:
            return False
        if self._our_state is IDLE:
            request = self._request
            return request is not None and request.keep_alive
        return self._keep_alive

    @property
    def trailers_accepted(self) -> bool:
        """Whether the client of this HTTP/1.1 request said ``TE: trailers`` (RFC 9110
        §10.1.4): only then may response trailers be sent to it."""
        request = self._request
        if request is None or request.version != (1, 1):
            return False
        te = request.header(b"te")
        return te is not None and b"trailers" in te.lower()

    @property
    def response_started(self) -> bool:
        return self._our_state is not IDLE

    @property
    def response_complete(self) -> bool:
        return self._our_state is DONE

    def close_after_response(self) -> None:
        """The server will close once this response is done (Connection: close)."""
        self._close_requested = True

    def send_continue(self, stream_id: int = 1) -> bytes:
        """``100 Continue`` for a request that waits for it, once; else nothing."""
        request = self._request
        if (
            request is None
            or not request.expect_continue
            or self._continue_sent
            or self._our_state is not IDLE
            or self._their_state is not BODY
        ):
            return b""
        self._continue_sent = True
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def send(self, event: Event) -> bytes:
        """Bytes to write for a response event (framing rules applied)."""
        kind = type(event)
        state = self._our_state
        # The usual sequence first: Response in IDLE, Data and EndOfMessage in SEND_BODY.
        if state is SEND_BODY:
            if kind is Data:
                return self._send_data(event.data)  # type: ignore[attr-defined]
            if kind is EndOfMessage:
                return self._send_end(event.trailers or self._resp_trailers)  # type: ignore[attr-defined]
        elif kind is Response and state is IDLE and self._request is not None:
            return self._send_head(event)  # type: ignore[arg-type]
        if (state, kind) not in SEND_TRANSITIONS or self._request is None:
            raise ResponseStateError(f"cannot send {kind.__name__} in state {state}")
        if kind is Data:
            return self._send_data(event.data)  # type: ignore[attr-defined]
        if kind is Response:
            return self._send_head(event)  # type: ignore[arg-type]
        if kind is EndOfMessage:
            if state is SWITCHED:
                return b""
            return self._send_end(event.trailers or self._resp_trailers)  # type: ignore[attr-defined]
        if kind is Trailers:
            self._resp_trailers = self._checked_trailers(event.headers)  # type: ignore[attr-defined]
            return b""
        if state is not IDLE:
            return b""
        return self._send_informational(event)  # type: ignore[arg-type]

    def _send_informational(self, event: InformationalResponse) -> bytes:
        request = self._request
        assert request is not None
        status = event.status
        if not 100 <= status < 200:
            raise ResponseStateError(f"informational status must be 1xx, not {status}")
        if status == 101:
            return self._send_head(Response(101, event.headers, event.reason))
        validate_response_status(status, event.reason)
        lines = [status_line(status, event.reason, (1, 1))]
        for name, value in event.headers:
            lowered = validate_response_header(name, value)
            if lowered in HOP_BY_HOP or lowered == b"content-length":
                continue
            lines.append(b"%s: %s\r\n" % (name, value.strip(OWS)))
        if not framing.early_hints_allowed(request.version, False):
            return b""
        lines.append(b"\r\n")
        return b"".join(lines)

    def _send_head(self, event: Response) -> bytes:
        request = self._request
        assert request is not None
        status = event.status
        reason = event.reason
        if reason or status not in _REASONS:
            validate_response_status(status, reason)
        method = request.method
        version = request.version
        # parts[0:4] are the status line and our own fields, filled in once known.
        parts = [b"", b"", b"", b""]
        add = parts.extend
        content_length: int | None = None
        length_at = 0
        has_date = has_server = False
        cache = _NAME_CACHE
        forbidden = _FORBIDDEN_VALUE_RE.search
        for name, value in event.headers:
            lowered = cache.get(name)
            if lowered is None:
                lowered = validate_response_header(name, value)
            elif forbidden(value) is not None:
                raise InvalidResponseHeader(f"invalid value for header {name!r}")
            if lowered in _RESPONSE_SPECIAL:
                if lowered == b"content-length":
                    if not value.isdigit():
                        value = value.strip(OWS)  # the head carries the trimmed value
                    length = response_content_length(value)
                    if content_length is not None:
                        if content_length != length:
                            raise InvalidResponseHeader("conflicting Content-Length headers")
                        continue
                    content_length = length
                    length_at = len(parts)
                elif lowered == b"date":
                    has_date = True
                elif lowered == b"server":
                    has_server = True
                elif status != 101 or (lowered != b"upgrade" and lowered != b"connection"):
                    continue  # hop-by-hop: the server manages the connection
            add((name, b": ", value, b"\r\n"))

        body_framing, keep_alive = _response_framing(
            method,
            status,
            version,
            content_length,
            self._chunked_responses,
            request.keep_alive and not self._close_requested,
        )
        if keep_alive and self._their_state is BODY:
            keep_alive = self._can_drain(request)
        self._keep_alive = keep_alive
        self._framing = body_framing
        self._resp_remaining = content_length or 0
        if length_at and body_framing is _NO_BODY and not _content_length_allowed(method, status):
            parts[length_at : length_at + 4] = ()

        line = None if reason or version != (1, 1) else _STATUS_LINES_11.get(status)
        parts[0] = line if line is not None else status_line(status, reason, version)
        if not has_server:
            parts[1] = self._server_line
        if not has_date:
            parts[2] = date_line(self._clock())
        if status == 101:
            self._check_switch(request)
            self._our_state = SEND_TRANSITIONS[IDLE, SWITCH]
            self._their_state = receive_transition(self._their_state, SWITCH)
        else:
            parts[3] = b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n"
            if body_framing is _CHUNKED:
                parts.append(b"Transfer-Encoding: chunked\r\n")
            if method == b"CONNECT" and 200 <= status < 300:
                # A tunnel: the response has no body and the client's next bytes are
                # not HTTP (trailing_data hands them over).
                self._check_switch(None)
                self._their_state = receive_transition(self._their_state, SWITCH)
            self._our_state = _HEAD_SENT
        parts.append(b"\r\n")
        return b"".join(parts)

    def _check_switch(self, request: Request | None) -> None:
        """Refuse a 101 (``request`` given) or a tunnel that would hand the peer's next
        bytes to another protocol when they are not its bytes."""
        if request is not None and not framing.switching_allowed(request.version, request.upgrade):
            raise InvalidResponseStatus("101 Switching Protocols without an Upgrade offer")
        if self._their_state is BODY and (self._remaining or self._chunk_state):
            raise ResponseStateError("cannot switch protocols before the request body is read")

    def _can_drain(self, request: Request) -> bool:
        """Before answering a request whose body is unread: can we skip the rest of it?"""
        if request.expect_continue and not self._continue_sent:
            return False  # the client may be waiting for us and never send it
        if request.chunked:
            return True  # drained up to max_body_drain, else the connection closes
        return self._remaining <= self._limits.max_body_drain

    def _send_data(self, data: bytes) -> bytes:
        if not data:
            return b""
        body_framing = self._framing
        if body_framing is _CHUNKED:
            self.body_sent += len(data)
            return _encode_chunk(data)
        if body_framing is _LENGTH:
            remaining = self._resp_remaining
            if len(data) > remaining:
                # Never write past the declared length; the framing is now wrong.
                data = data[:remaining]
                self._keep_alive = False
            self._resp_remaining = remaining - len(data)
            self.body_sent += len(data)
            return data
        if body_framing is _CLOSE:
            self.body_sent += len(data)
            return data
        self.body_dropped = True
        return b""

    def file_segment(self, count: int) -> tuple[bytes, int, bytes]:
        """Framing for ``count`` body bytes a driver writes itself (sendfile): the bytes
        to write before them, how many of them may be written, and the bytes after.
        Counts toward Content-Length like ``send(Data(...))`` would."""
        if self._our_state is not SEND_BODY:
            raise ResponseStateError(f"cannot send a body in state {self._our_state}")
        body_framing = self._framing
        if count <= 0:
            return b"", 0, b""
        if body_framing is _CHUNKED:
            self.body_sent += count
            return framing.chunk_header(count), count, framing.CHUNK_END
        if body_framing is _LENGTH:
            remaining = self._resp_remaining
            if count > remaining:
                count = remaining
                self._keep_alive = False
            self._resp_remaining = remaining - count
            self.body_sent += count
            return b"", count, b""
        if body_framing is _CLOSE:
            self.body_sent += count
            return b"", count, b""
        self.body_dropped = True
        return b"", 0, b""

    @staticmethod
    def _checked_trailers(trailers: Headers) -> Headers:
        checked: Headers = []
        for name, value in trailers:
            lowered = validate_response_header(name, value)
            if lowered in FORBIDDEN_TRAILERS or lowered in HOP_BY_HOP:
                raise InvalidResponseHeader(f"{name!r} is not allowed as a trailer")
            checked.append((name, value.strip(OWS)))
        return checked

    def _send_end(self, trailers: Headers) -> bytes:
        self._our_state = _BODY_SENT
        body_framing = self._framing
        if body_framing is _CHUNKED:
            if not trailers:
                return framing.LAST_CHUNK
            lines = [b"0\r\n"]
            lines.extend(b"%s: %s\r\n" % pair for pair in self._checked_trailers(trailers))
            lines.append(b"\r\n")
            return b"".join(lines)
        if body_framing is _LENGTH and self._resp_remaining:
            self._keep_alive = False  # the body was shorter than announced
        return b""

    def error_response(self, exc: ProtocolError | LocalProtocolError, stream_id: int = 1) -> bytes:
        """A complete error response that closes the connection (b"" once a response
        has started: then the only thing left to do is to close)."""
        self._keep_alive = False
        self._close_requested = True
        if self._our_state is not IDLE:
            return b""
        self._our_state = SEND_TRANSITIONS[IDLE, ERROR_PAGE]
        status = exc.status
        reason = exc.reason.encode("latin-1")
        body = error_page(status, reason, str(exc))
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            self._server_line,
            date_line(self._clock()),
            b"Connection: close\r\n",
            b"Content-Type: text/html; charset=utf-8\r\n",
            b"Content-Length: %d\r\n\r\n" % len(body),
        ]
        request = self._request
        if request is not None and request.method == b"HEAD":
            body = b""
        return b"".join(head) + body
