"""WSGI applications for the gevent and eventlet worker tests.

Importing this module in the arbiter (``--preload``) records what the arbiter saw: the
module-level lock and thread-local are created before any monkey patch.

Routes: ``/wait?t=`` (a green sleep), ``/block?t=`` (the original, blocking sleep: holds
the hub), ``/patched`` (JSON: which socket/ssl/select/threading the application sees),
``/threads`` (threads, an Event and the module's lock used in a request), ``/fetch?port=``
(the first line a local TCP service sends), ``/sleep-h2?t=`` and ``/`` (hello).
"""

from __future__ import annotations

import json
import os
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

IMPORTED_IN = os.getpid()
LOCK = threading.Lock()
RLOCK = threading.RLock()


def _query(environ: Environ) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(environ["QUERY_STRING"]).items()}


def _reply(start_response: StartResponse, body: bytes, ctype: str = "text/plain") -> list[bytes]:
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def _original_sleep() -> Callable[[float], None]:
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("time"):
            return monkey.get_original("time", "sleep")  # type: ignore[no-any-return]
    if "eventlet" in sys.modules:
        from eventlet import patcher

        return patcher.original("time").sleep  # type: ignore[no-any-return]
    return time.sleep


def wait(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    seconds = _query(environ).get("t", "1")
    environ["wsgi.errors"].write(f"waiting {seconds}\n")
    environ["wsgi.errors"].flush()
    time.sleep(float(seconds))
    return _reply(start_response, b"waited")


def block(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    _original_sleep()(float(_query(environ).get("t", "1")))
    return _reply(start_response, b"blocked")


def patched(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    seen = {
        "socket": socket.socket.__module__,
        "ssl": ssl.SSLContext.__module__,
        "select_poll": hasattr(select, "poll"),
        "thread_ident_per_greenlet": _idents_differ(),
        "imported_in": IMPORTED_IN,
        "pid": os.getpid(),
        "multithread": environ["wsgi.multithread"],
        "has_gunicorn_socket": "gunicorn.socket" in environ,
    }
    return _reply(start_response, json.dumps(seen).encode(), "application/json")


def _idents_differ() -> bool:
    idents: list[int] = []
    thread = threading.Thread(target=lambda: idents.append(threading.get_ident()))
    thread.start()
    thread.join()
    return idents[0] != threading.get_ident()


def threads(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """What a preloaded app does in a request: the module's lock and RLock, a thread that
    sets an Event, a thread-local. All must cooperate with the other greenlets."""
    local = threading.local()
    local.value = environ["QUERY_STRING"]
    done = threading.Event()

    def work() -> None:
        with RLOCK:
            time.sleep(0.05)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    with LOCK:
        time.sleep(0.05)  # another greenlet wants the lock meanwhile
    assert done.wait(5)
    worker.join()
    assert local.value == environ["QUERY_STRING"]
    return _reply(start_response, f"ok {local.value}".encode())


def fetch(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    port = int(_query(environ)["port"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        line = conn.makefile("rb").readline()
    return _reply(start_response, line)


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, b"hello")


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/wait": wait,
    "/block": block,
    "/patched": patched,
    "/threads": threads,
    "/fetch": fetch,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return ROUTES.get(environ["PATH_INFO"], hello)(environ, start_response)
