"""A streaming response: ``gunicorn examples.streaming:app``.

Without Content-Length, HTTP/1.1 clients get the body chunked as it is produced
(``curl -N http://127.0.0.1:8000/``). ``?count=N&delay=S`` controls the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    count = int(query.get("count", ["5"])[0])
    delay = float(query.get("delay", ["0.2"])[0])
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    for index in range(count):
        yield f"line {index + 1} of {count}\n".encode()
        time.sleep(delay)
