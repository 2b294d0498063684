"""A small application for the gevent (or eventlet) worker: a request waits on the network
without holding the worker, so one worker serves many slow requests at once.

    gunicorn -k gevent --worker-connections 1000 gevent_app:app
    curl 'http://127.0.0.1:8000/wait?seconds=2'   # run many at once: they overlap

``/wait`` sleeps through the hub (``time.sleep`` is green once the worker patched it) and
``/fetch?port=N`` reads the first line a local TCP service sends (a green socket call).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = {key: values[0] for key, values in parse_qs(environ["QUERY_STRING"]).items()}
    path = environ["PATH_INFO"]
    if path == "/wait":
        time.sleep(float(query.get("seconds", "1")))
        body = b"waited\n"
    elif path == "/fetch":
        with socket.create_connection(("127.0.0.1", int(query["port"])), timeout=10) as conn:
            body = conn.makefile("rb").readline()
    else:
        body = f"socket module in use: {socket.socket.__module__}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
