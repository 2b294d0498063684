"""The WSGI application served to the HTTP/2 tests (``tests.http2.apps:app``).

Routes (the query string carries the parameters):

* ``/hello``: ``hello world`` (any other unknown path too);
* ``/echo``: the request body back, with its length;
* ``/large?n=N``: ``N`` bytes of :func:`pattern` (default 1 MiB), streamed in 64 KiB pieces;
* ``/headers``: the request's environ (CGI keys, ``HTTP_*``, ``wsgi.url_scheme``) as JSON;
* ``/early-hints``: a 103 with a ``link`` field through ``wsgi.early_hints``, then 200;
* ``/trailers``: a body, then trailers through ``gunicorn.http2.send_trailers``;
* ``/slow?delay=S``: answers after ``S`` seconds (default 1);
* ``/partial?read=N``: reads ``N`` bytes of the body (default 0), then answers;
* ``/status?code=C``: an empty response with status ``C``.

When the environment variable ``H2_TEST_CALLS`` names a file, every call appends one JSON
line to it (method, path, query and the ``x-case`` request field), so a test can prove the
application was (or was never) called for a given request.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]

#: 1 MiB: the default size of ``/large``.
LARGE_DEFAULT = 1 << 20
_PIECE = 1 << 16
# 251 is prime, so a frame-sized slice (a power of two) never starts at the same phase twice:
# a reordered, dropped or repeated frame changes the bytes.
_PERIOD = bytes((i * 7 + 3) % 251 for i in range(251))


def pattern(n: int, offset: int = 0) -> bytes:
    """``n`` bytes of the deterministic body pattern, starting at ``offset``."""
    start = offset % len(_PERIOD)
    repeats = (start + n) // len(_PERIOD) + 1
    return (_PERIOD * repeats)[start : start + n]


def _record(environ: dict[str, Any]) -> None:
    path = os.environ.get("H2_TEST_CALLS")
    if not path:
        return
    line = json.dumps(
        {
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING"),
            "case": environ.get("HTTP_X_CASE"),
        }
    )
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _param(environ: dict[str, Any], name: str, default: str) -> str:
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    return values[-1] if values else default


def _respond(
    start_response: StartResponse,
    body: bytes,
    status: str = "200 OK",
    content_type: str = "text/plain",
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _large(n: int) -> Iterator[bytes]:
    sent = 0
    while sent < n:
        size = min(_PIECE, n - sent)
        yield pattern(size, sent)
        sent += size


def _environ_json(environ: dict[str, Any]) -> bytes:
    keys = (
        "REQUEST_METHOD",
        "PATH_INFO",
        "QUERY_STRING",
        "SERVER_PROTOCOL",
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "wsgi.url_scheme",
    )
    info = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k in keys}
    return json.dumps(info, sort_keys=True).encode()


def _trailers(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    send_trailers = environ.get("gunicorn.http2.send_trailers")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Trailer", "x-checksum")])
    yield b"body before trailers\n"
    if send_trailers is not None:
        send_trailers([("x-checksum", "c0ffee")])


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Route the request (see the module docstring)."""
    _record(environ)
    path = environ.get("PATH_INFO", "/")
    body_input = environ["wsgi.input"]
    if path == "/echo":
        return _respond(start_response, body_input.read(), content_type="application/octet-stream")
    if path == "/large":
        n = int(_param(environ, "n", str(LARGE_DEFAULT)))
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))]
        )
        return _large(n)
    if path == "/headers":
        return _respond(start_response, _environ_json(environ), content_type="application/json")
    if path == "/early-hints":
        environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
        return _respond(start_response, b"after hints\n")
    if path == "/trailers":
        return _trailers(environ, start_response)
    if path == "/slow":
        time.sleep(float(_param(environ, "delay", "1")))
        return _respond(start_response, b"slow\n")
    if path == "/partial":
        got = body_input.read(int(_param(environ, "read", "0")))
        return _respond(start_response, f"read {len(got)}\n".encode())
    if path == "/status":
        code = int(_param(environ, "code", "204"))
        start_response(f"{code} Status", [])
        return []
    return _respond(start_response, b"hello world\n")
