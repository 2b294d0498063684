"""Running a WSGI application for one request: start_response, write(), the iterable.

The application's response becomes core events (``Response``, ``Data``,
``EndOfMessage``, 103 ``InformationalResponse``) handed to a ``ResponseChannel``, which
the driver implements by passing each event to the protocol core and writing the bytes.
Validation of statuses and fields is the core's job: it raises ``LocalProtocolError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseStatus
from gunicorn.http.events import Data, EndOfMessage, Event, InformationalResponse, Response
from gunicorn.http.framing import body_allowed
from gunicorn.wsgi.filewrapper import FileWrapper

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StrHeaders = list[tuple[str, str]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ResponseChannel(Protocol):
    """What the adapter needs from a driver to send a response."""

    def send(self, event: Event) -> None:
        """Pass ``event`` to the protocol core and write the bytes it returns."""

    def send_file(self, wrapper: FileWrapper, fd: int, offset: int, count: int) -> int | None:
        """Send ``count`` body bytes of ``fd`` from ``offset`` (after the head was sent).

        Returns the number of bytes sent, or None, before writing anything, when the
        driver cannot send files directly (the adapter then iterates the wrapper).
        """

    def body_sent(self) -> int:
        """Body bytes of the current response the core has put on the wire so far."""


class WSGIResponse:
    """The response as the application gave it, for hooks and the access log.

    ``status`` is the status line text (``"200 OK"``), ``status_code`` its number,
    ``headers`` the application's (name, value) pairs, ``sent`` the body bytes sent.
    """

    __slots__ = (
        "content_length",
        "headers",
        "headers_sent",
        "method",
        "reason",
        "sent",
        "status",
        "status_code",
    )

    def __init__(self, method: bytes = b"GET") -> None:
        self.method = method
        self.status: str | None = None
        self.status_code = 0
        self.reason = b""
        self.headers: StrHeaders = []
        self.content_length: int | None = None
        self.sent = 0
        self.headers_sent = False

    @property
    def response_length(self) -> int | None:
        """The Content-Length the application announced (gunicorn's name), else None."""
        return self.content_length

    def __repr__(self) -> str:
        return f"<WSGIResponse {self.status!r} sent={self.sent}>"


def _encode(text: object, what: str) -> bytes:
    if type(text) is not str:
        raise InvalidResponseHeader(f"{what} must be a str, not {type(text).__name__}")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidResponseHeader(f"{what} {text!r} is not latin-1") from None


def encode_headers(headers: object) -> list[tuple[bytes, bytes]]:
    """Application (str, str) pairs as bytes pairs for the core."""
    if type(headers) is not list:
        raise InvalidResponseHeader(f"headers must be a list, not {type(headers).__name__}")
    encoded = []
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise InvalidResponseHeader(f"header {item!r} is not a (name, value) tuple")
        encoded.append((_encode(item[0], "header name"), _encode(item[1], "header value")))
    return encoded


def parse_status(status: object) -> tuple[int, bytes]:
    """``"200 OK"`` -> (200, b"OK"); the reason phrase is checked by the core."""
    if type(status) is not str:
        raise InvalidResponseStatus(f"status must be a str, not {type(status).__name__}")
    code = status[:3]
    if len(code) != 3 or not code.isdigit() or not code.isascii() or status[3:4] not in ("", " "):
        raise InvalidResponseStatus(f"invalid status {status!r}")
    try:
        reason = status[4:].encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidResponseStatus(f"invalid status {status!r}") from None
    return int(code), reason


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


class WSGIResponder:
    """Runs an application for one request and sends its response through a channel.

    ``run`` raises whatever the application or the core raised; ``response.headers_sent``
    then tells the driver whether an error response can still be written, and
    ``finished`` whether the response went out complete (e.g. only the iterable's
    ``close()`` failed).
    """

    __slots__ = ("_body_allowed", "_channel", "_head", "finished", "response")

    def __init__(self, channel: ResponseChannel, method: bytes = b"GET") -> None:
        self._channel = channel
        self.response = WSGIResponse(method)
        self._head: Response | None = None
        self._body_allowed = True
        self.finished = False

    # -- the callables the application receives ---------------------------------------

    def start_response(
        self,
        status: str,
        headers: StrHeaders,
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        """PEP 3333 ``start_response``."""
        response = self.response
        if exc_info is not None:
            try:
                if response.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._head is not None:
            raise AssertionError("start_response() called twice without exc_info")
        code, reason = parse_status(status)
        encoded = encode_headers(headers)
        self._head = Response(code, encoded, reason)
        response.status = status
        response.status_code = code
        response.reason = reason
        response.headers = headers
        response.content_length = _content_length(encoded)
        self._body_allowed = body_allowed(response.method, code)
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write()``: the bytes go out before it returns."""
        if self._head is None:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes:
            if isinstance(data, (bytearray, memoryview)):
                data = bytes(data)
            else:
                raise TypeError(f"response body must be bytes, not {type(data).__name__}")
        if not data:
            return
        if not self.response.headers_sent:
            self._send_head()
        self._channel.send(Data(data))

    def early_hints(self, headers: StrHeaders) -> None:
        """``environ["wsgi.early_hints"]``: a 103 response (the core drops it where it
        is not allowed: HTTP/1.0 clients, or once the final response started)."""
        encoded = encode_headers(headers)
        if self.response.headers_sent:
            return
        self._channel.send(InformationalResponse(103, encoded, b"Early Hints"))

    # -- driving the application -------------------------------------------------------

    def run(self, app: WSGIApp, environ: dict[str, Any]) -> None:
        """Call the application, send everything it returns, close its iterable."""
        try:
            result = app(environ, self.start_response)
            try:
                if not (isinstance(result, FileWrapper) and self._send_file(result)):
                    write = self.write
                    for chunk in result:
                        if chunk:
                            write(chunk)
                        elif type(chunk) is not bytes:
                            raise TypeError(
                                f"response body must be bytes, not {type(chunk).__name__}"
                            )
                self._finish()
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            # The core counts what it framed (never past Content-Length, nothing for
            # a response without a body): that is what the access log reports.
            self.response.sent = self._channel.body_sent()

    def _send_head(self) -> None:
        head = self._head
        if head is None:
            raise AssertionError("the application did not call start_response()")
        self._channel.send(head)
        self.response.headers_sent = True

    def _finish(self) -> None:
        if not self.response.headers_sent:
            self._send_head()
        self._channel.send(EndOfMessage())
        self.finished = True

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a file response with ``sendfile``; False to iterate the wrapper instead."""
        fd = wrapper.fileno()
        if fd is None:
            return False
        span = wrapper.remaining(fd)
        if span is None:
            return False
        if self._head is None:
            raise AssertionError("the application did not call start_response()")
        offset, size = span
        if not self._body_allowed:
            # Nothing may follow the head: read one block so the core can tell whether
            # a body was dropped (and the driver warn), without reading the whole file.
            self._send_head()
            block = wrapper.filelike.read(wrapper.blksize) if size else b""
            if block:
                self._channel.send(Data(block))
            return True
        length = self.response.content_length
        count = size if length is None else min(size, length)
        self._send_head()
        return self._channel.send_file(wrapper, fd, offset, count) is not None
