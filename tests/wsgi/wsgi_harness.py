"""Run a WSGI application over the real protocol core, with bytes in memory instead of a socket."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import Data, EndOfMessage, Event, Request
from gunicorn.http.h1 import NEED_DATA, H1Connection
from gunicorn.http.limits import Limits, Policy
from gunicorn.wsgi import (
    EnvironConfig,
    FileWrapper,
    WSGIInput,
    WSGIResponder,
    connection_environ,
    request_environ,
)
from tests.wsgi.wire import request_bytes

TCP_PEER = ("127.0.0.1", 51234)
TCP_SERVER = ("127.0.0.1", 8000)


class MemoryChannel:
    """A ResponseChannel writing into a bytearray; ``sendfile`` optional."""

    def __init__(self, conn: H1Connection, *, sendfile: bool = False) -> None:
        self.conn = conn
        self.out = bytearray()
        self.sendfile = sendfile
        self.files_sent: list[tuple[int, int]] = []

    def send(self, event: Event) -> None:
        self.out += self.conn.send(event)

    def body_sent(self) -> int:
        return self.conn.body_sent

    def send_file(self, wrapper: FileWrapper, fd: int, offset: int, count: int) -> int | None:
        if not self.sendfile:
            return None
        data = os.pread(fd, count, offset)
        # Framed like any body piece, so the core's accounting stays right.
        self.out += self.conn.send(Data(data))
        self.files_sent.append((offset, count))
        return len(data)


class Feeder:
    """The driver's part: hand the core bytes in pieces, and body pieces to wsgi.input."""

    def __init__(self, conn: H1Connection, pieces: list[bytes]) -> None:
        self.conn = conn
        self.pieces = list(pieces)
        self.receive_calls = 0
        self.trailers: list[tuple[bytes, bytes]] | None = None

    def next_event(self) -> Event:
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                self.conn.receive_data(self.pieces.pop(0) if self.pieces else b"")
                continue
            assert isinstance(event, Event), event
            return event

    def receive(self) -> bytes:
        self.receive_calls += 1
        event = self.next_event()
        if isinstance(event, Data):
            return event.data
        assert isinstance(event, EndOfMessage), event
        self.trailers = event.trailers
        return b""


@dataclass
class Result:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw: bytes
    environ: dict[str, Any]
    responder: WSGIResponder
    conn: H1Connection
    channel: MemoryChannel
    feeder: Feeder
    error: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_names(self) -> list[bytes]:
        return [key.lower() for key, _ in self.headers]


def parse_response(raw: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
    """Split the final response (skipping 1xx) into status, reason, headers, body."""
    while True:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {raw!r}"
        lines = head.split(b"\r\n")
        _, status, reason = [*lines[0].split(b" ", 2), b""][:3]
        headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
        if int(status) >= 200:
            break
        raw = rest
    names = {name.lower(): value for name, value in headers}
    if names.get(b"transfer-encoding") == b"chunked":
        body = bytearray()
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            if not size_line:
                break  # a truncated response
            size = int(size_line, 16)
            if size == 0:
                break
            body += rest[:size]
            assert rest[size : size + 2] == b"\r\n"
            rest = rest[size + 2 :]
        return int(status), reason, headers, bytes(body)  # type: ignore[arg-type]
    return int(status), reason, headers, rest  # type: ignore[arg-type]


def make_request(
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    return request_bytes(method, target, headers, body, version, host="example.com")


def run_wsgi(
    app: Any,
    raw: bytes | list[bytes],
    *,
    config: EnvironConfig | None = None,
    peer: Any = TCP_PEER,
    server: Any = TCP_SERVER,
    url_scheme: str = "http",
    trusted: bool = False,
    policy: Policy | None = None,
    extra: dict[str, Any] | None = None,
    sendfile: bool = False,
    sock: Any = None,
    catch: bool = False,
) -> Result:
    """Feed ``raw`` (whole or in pieces) to a real H1Connection and run ``app``."""
    pieces = [raw] if isinstance(raw, bytes) else raw
    config = config if config is not None else EnvironConfig()
    conn = H1Connection(Limits(), policy or Policy(), clock=lambda: 0.0, trusted_forwarder=trusted)
    conn.close_after_response()
    feeder = Feeder(conn, pieces)
    channel = MemoryChannel(conn, sendfile=sendfile)
    request = feeder.next_event()
    assert isinstance(request, Request), request

    def on_first_read() -> None:
        channel.out += conn.send_continue()

    wsgi_input = WSGIInput(feeder.receive, on_first_read, empty=not request.has_body)
    responder = WSGIResponder(channel, request.method)
    base = connection_environ(config, peer, server, sock=sock, extra=extra)
    error: BaseException | None = None
    environ: dict[str, Any] = {}
    try:
        environ = request_environ(
            base,
            request,
            config,
            url_scheme=url_scheme,
            trusted=trusted,
            wsgi_input=wsgi_input,
            early_hints=responder.early_hints,
        )
        responder.run(app, environ)
    except Exception as exc:
        if not catch:
            raise
        error = exc
        if not responder.response.headers_sent:
            # The application's own errors are not described to the client.
            answer = exc if isinstance(exc, ProtocolError) else LocalProtocolError()
            channel.out += conn.error_response(answer)
    raw_out = bytes(channel.out)
    status, reason, headers, body = parse_response(raw_out) if raw_out else (0, b"", [], b"")
    return Result(
        status, reason, headers, body, raw_out, environ, responder, conn, channel, feeder, error
    )


def hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def capture_app(store: dict[str, Any]) -> Any:
    """An app that records its environ (and reads the body into ``store["body"]``)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        store.update(environ)
        store["body"] = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app
