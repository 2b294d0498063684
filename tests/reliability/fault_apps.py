"""The applications the fault tests serve: ``app`` (WSGI) and ``asgi_app`` (its ASGI twin).

Every answer names the worker that gave it (``X-Pid``) and the configuration it runs
(``X-Stage``: the ``STAGE`` environment variable, set with ``raw_env``). Routes:

- ``/``: the pid, at once.
- ``/sleep?t=S``: answers after ``S`` seconds without blocking the worker's loop (the
  asgi worker awaits); announces ``in flight: <query>`` on the error log first.
- ``/stuck?t=S``: blocks the worker's loop for ``S`` seconds (``time.sleep`` everywhere,
  also in the ASGI app: the event loop stops, as with a CPU-bound handler; libc's
  ``sleep`` under gevent and eventlet, whose ``time.sleep`` only yields to the hub);
  logs ``stuck in <pid> at <time.monotonic()>`` first.
- ``/segv``: logs ``segv from <pid>``, stops its own process (SIGSTOP) so that the test can
  record which connections the worker holds, and when continued reads address 0: a real
  segmentation fault.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from tests.lifespan import serve_lifespan

Environ = dict[str, Any]


def _seconds(query: str) -> float:
    return float(parse_qs(query).get("t", ["1"])[0])


def _headers() -> list[tuple[str, str]]:
    pid = str(os.getpid())
    return [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(pid))),
        ("X-Pid", pid),
        ("X-Stage", os.environ.get("STAGE", "")),
    ]


def _stuck(log: Any, seconds: float) -> None:
    log.write(f"stuck in {os.getpid()} at {time.monotonic()}\n")
    log.flush()
    if "gevent" in sys.modules or "eventlet" in sys.modules:
        ctypes.CDLL(None).sleep(int(seconds))  # blocks the hub (a signal ends it early)
    else:
        time.sleep(seconds)


def _crash(log: Any) -> None:
    log.write(f"segv from {os.getpid()}\n")
    log.flush()
    # Directed at this OS thread, the stop takes effect before the next line runs (the
    # green workers patch the thread identity functions, so ask libc directly).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.tgkill(os.getpid(), libc.gettid(), signal.SIGSTOP)
    ctypes.string_at(0)


def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    path, query = environ["PATH_INFO"], environ["QUERY_STRING"]
    if path == "/sleep":
        environ["wsgi.errors"].write(f"in flight: {query}\n")
        environ["wsgi.errors"].flush()
        time.sleep(_seconds(query))
    elif path == "/stuck":
        _stuck(environ["wsgi.errors"], _seconds(query))
    elif path == "/segv":
        _crash(environ["wsgi.errors"])
    start_response("200 OK", _headers())
    return [str(os.getpid()).encode()]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path, query = scope["path"], scope["query_string"].decode("latin-1")
    if path == "/sleep":
        print(f"in flight: {query}", file=sys.stderr, flush=True)
        await asyncio.sleep(_seconds(query))
    elif path == "/stuck":
        _stuck(sys.stderr, _seconds(query))
    elif path == "/segv":
        _crash(sys.stderr)
    headers = [(k.lower().encode(), v.encode()) for k, v in _headers()]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
