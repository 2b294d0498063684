"""WSGI apps served by the process tests (imported by gunicorn with ``--pythonpath``).

``/`` answers the worker pid; ``/sleep/<seconds>`` answers after sleeping;
``/hang`` never answers (a stuck worker); ``/env/<NAME>`` answers an environment
variable of the worker; ``/import-pid`` answers the pid that imported this module
(the master with ``--preload``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

IMPORTED_BY = os.getpid()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path.startswith("/sleep/"):
        time.sleep(float(path.rsplit("/", 1)[1]))
    elif path == "/hang":
        while True:
            time.sleep(0.5)
    if path == "/import-pid":
        body = str(IMPORTED_BY).encode()
    elif path.startswith("/env/"):
        body = os.environ.get(path.rsplit("/", 1)[1], "-").encode()
    else:
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
