"""The image's placeholder application: replace it with yours (see docker/README.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/healthz":
        body = b"ok\n"
        content_type = "text/plain"
    else:
        info = {
            "message": "Hello from gunicorn in a container",
            "pid": os.getpid(),
            "uid": os.getuid(),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "host": environ.get("HTTP_HOST"),
            "scheme": environ["wsgi.url_scheme"],
        }
        body = json.dumps(info).encode() + b"\n"
        content_type = "application/json"
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
