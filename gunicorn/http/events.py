"""Events exchanged between the protocol core and the application adapters.

Every event carries a ``stream_id`` so adapters run unchanged over HTTP/1.1 (always
stream 1) and HTTP/2. Header names are lowercase bytes, values are bytes with
surrounding whitespace removed, in the order they were received.
"""

from __future__ import annotations

Headers = list[tuple[bytes, bytes]]


class Event:
    __slots__ = ("stream_id",)

    stream_id: int

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for cls in type(self).__mro__
            for name in getattr(cls, "__slots__", ())
        )
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            getattr(self, name) == getattr(other, name)
            for cls in type(self).__mro__
            for name in getattr(cls, "__slots__", ())
        )

    __hash__ = None  # type: ignore[assignment]


class Request(Event):
    """A request head.

    ``target`` is the raw request target; ``path``, ``query`` and ``fragment`` are its
    parts (still percent-encoded). ``scheme`` and ``authority`` come from an
    absolute-form target or HTTP/2 pseudo-headers (``authority`` falls back to Host).
    ``content_length`` is None when the body is chunked or absent; ``chunked`` tells
    which. ``keep_alive`` is what the client asked for (version and Connection).
    ``expect_continue`` is set when the client waits for ``100 Continue``;
    ``upgrade`` is the lowercased Upgrade token offered with ``Connection: upgrade``.
    ``has_body`` says whether body bytes follow the head, for HTTP/1 (chunked or a
    non-zero Content-Length) and HTTP/2 (the HEADERS frame did not end the stream).
    """

    __slots__ = (
        "authority",
        "chunked",
        "content_length",
        "expect_continue",
        "fragment",
        "has_body",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query",
        "scheme",
        "target",
        "upgrade",
        "version",
    )

    method: bytes
    target: bytes
    path: bytes
    query: bytes
    fragment: bytes
    version: tuple[int, int]
    headers: Headers
    scheme: bytes | None
    authority: bytes | None
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool
    upgrade: bytes | None
    has_body: bool

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: tuple[int, int],
        headers: Headers,
        *,
        path: bytes = b"",
        query: bytes = b"",
        fragment: bytes = b"",
        scheme: bytes | None = None,
        authority: bytes | None = None,
        content_length: int | None = None,
        chunked: bool = False,
        keep_alive: bool = True,
        expect_continue: bool = False,
        upgrade: bytes | None = None,
        has_body: bool | None = None,
        stream_id: int = 1,
    ) -> None:
        self.stream_id = stream_id
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.path = path
        self.query = query
        self.fragment = fragment
        self.scheme = scheme
        self.authority = authority
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.upgrade = upgrade
        self.has_body = chunked or bool(content_length) if has_body is None else has_body

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lowercase), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Data(Event):
    """A piece of a message body."""

    __slots__ = ("data",)

    data: bytes

    def __init__(self, data: bytes, stream_id: int = 1) -> None:
        self.stream_id = stream_id
        self.data = data


class EndOfMessage(Event):
    """The end of a message body, with its trailer fields (if any)."""

    __slots__ = ("trailers",)

    trailers: Headers

    def __init__(self, trailers: Headers | None = None, stream_id: int = 1) -> None:
        self.stream_id = stream_id
        self.trailers = trailers if trailers is not None else []


class InformationalResponse(Event):
    """A 1xx response (103 Early Hints, 100 Continue) sent before the final one."""

    __slots__ = ("headers", "reason", "status")

    status: int
    headers: Headers
    reason: bytes

    def __init__(
        self, status: int, headers: Headers | None = None, reason: bytes = b"", stream_id: int = 1
    ) -> None:
        self.stream_id = stream_id
        self.status = status
        self.headers = headers if headers is not None else []
        self.reason = reason


class Response(Event):
    """The final response head. ``reason`` defaults to the standard phrase."""

    __slots__ = ("headers", "reason", "status")

    status: int
    headers: Headers
    reason: bytes

    def __init__(
        self, status: int, headers: Headers | None = None, reason: bytes = b"", stream_id: int = 1
    ) -> None:
        self.stream_id = stream_id
        self.status = status
        self.headers = headers if headers is not None else []
        self.reason = reason


class Trailers(Event):
    """Response trailer fields (sent with the end of a chunked or HTTP/2 body)."""

    __slots__ = ("headers",)

    headers: Headers

    def __init__(self, headers: Headers, stream_id: int = 1) -> None:
        self.stream_id = stream_id
        self.headers = headers


class StreamReset(Event):
    """An HTTP/2 stream was reset by the peer (``error_code`` as on the wire)."""

    __slots__ = ("error_code",)

    error_code: int

    def __init__(self, error_code: int, stream_id: int = 1) -> None:
        self.stream_id = stream_id
        self.error_code = error_code


class ConnectionClosed(Event):
    """The peer closed its side of the connection between messages."""

    __slots__ = ()

    def __init__(self, stream_id: int = 1) -> None:
        self.stream_id = stream_id
