"""The WSGI application every worker class serves in ``test_every_worker`` (one place for
the app side of the shared behaviour tests).

Routes: ``/__framing`` (a response shaped by the query: ``status``, and ``sets`` =
content-length, chunked, nothing or body), ``/__hints`` (103 Early Hints, then 200),
``/__file`` (``wsgi.file_wrapper`` over ``TEST_DATA_FILE``), ``/__sleep?t=`` (a request in
flight for ``t`` seconds, announced on ``wsgi.errors``), ``/__environ`` (some environ keys,
JSON), ``/__lines`` (``wsgi.input`` read line by line); any other target is echoed: the
request as the application saw it, in JSON (the request corpus is replayed against it).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

BODY = b"hello"


def _query(environ: Environ) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(environ["QUERY_STRING"]).items()}


def echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    seen = {
        "method": environ["REQUEST_METHOD"],
        "target": environ["RAW_URI"],
        "body": body.decode("latin-1"),
    }
    payload = json.dumps(seen).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]


def framing(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    query = _query(environ)
    sets = query.get("sets", "nothing")
    headers = [("Content-Type", "text/plain")]
    if sets == "content-length":
        headers.append(("Content-Length", str(len(BODY))))
    elif sets == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
    start_response(f"{query['status']} Test", headers)
    return [BODY]


def environ_keys(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "PATH_INFO", "QUERY_STRING", "wsgi.url_scheme")
    seen = {key: environ.get(key) for key in keys}
    seen["PROXY_PROTOCOL"] = environ.get("PROXY_PROTOCOL")
    seen["has_gunicorn_socket"] = "gunicorn.socket" in environ
    payload = json.dumps(seen).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]


def lines(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Reads ``wsgi.input`` a line at a time, as the lines arrive."""
    stream = environ["wsgi.input"]
    got = [line.decode("latin-1").strip() for line in iter(stream.readline, b"")]
    payload = "|".join(got).encode("latin-1")
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))]
    start_response("200 OK", headers)
    return [payload]


def hints(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
    return [b"after hints"]


def file(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = os.environ["TEST_DATA_FILE"]
    handle = open(path, "rb")  # noqa: SIM115 - closed by the server through the wrapper
    size = os.path.getsize(path)
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    )
    return environ["wsgi.file_wrapper"](handle, 65536)


def sleep(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    seconds = float(_query(environ).get("t", "1"))
    environ["wsgi.errors"].write(f"in flight: {environ['QUERY_STRING']}\n")
    environ["wsgi.errors"].flush()
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"slept"]


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/__framing": framing,
    "/__hints": hints,
    "/__environ": environ_keys,
    "/__lines": lines,
    "/__file": file,
    "/__sleep": sleep,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return ROUTES.get(environ["PATH_INFO"], echo)(environ, start_response)
