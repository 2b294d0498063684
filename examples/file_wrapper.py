"""Serving a file with ``wsgi.file_wrapper``: ``gunicorn examples.file_wrapper:app``.

gunicorn sends the file with ``sendfile()`` when it can (plain sockets, sendfile not
disabled with ``--no-sendfile``) and reads it in blocks otherwise. ``/`` serves this
source file; ``?path=...`` serves another file below this directory.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

ROOT = os.path.dirname(os.path.abspath(__file__))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    name = query.get("path", [os.path.basename(__file__)])[0]
    path = os.path.realpath(os.path.join(ROOT, name))
    if not path.startswith(ROOT + os.sep) or not os.path.isfile(path):
        body = b"not found\n"
        start_response(
            "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    start_response(
        "200 OK",
        [("Content-Type", content_type), ("Content-Length", str(os.path.getsize(path)))],
    )
    handle = open(path, "rb")  # noqa: SIM115 - the server closes it through the wrapper
    return environ["wsgi.file_wrapper"](handle, 8192)
