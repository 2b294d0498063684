"""The dirty client from every HTTP worker class: green (gevent, eventlet) and asgi."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import pytest

ECHO = "dirty_apps:Echo"


@pytest.mark.parametrize("worker_class", ["gevent", "eventlet"])
def test_green_workers_call_dirty_apps_concurrently(dirty_server: Any, worker_class: str) -> None:
    if importlib.util.find_spec(worker_class) is None:
        pytest.skip(f"{worker_class} not installed")
    server = dirty_server(
        f"-k {worker_class} -w 1 --dirty-workers 2 --dirty-app {ECHO}",
        "--no-control-socket web_apps:app",
    )
    # Two slow calls at once from ONE green worker: they overlap only if the client's
    # socket waits are green (each greenlet has its own client and connection).
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(server.call(app=ECHO, action="sleep", args=[1.0]))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 2 and all("result" in r for r in results), results
    assert {r["worker"] for r in results} == {results[0]["worker"]}
    assert _overlapped(results)
    assert server.call(op="stream", app=ECHO, action="count", args=[2])["result"] == [
        "chunk-0",
        "chunk-1",
    ]


def test_asgi_worker_uses_the_async_client(dirty_server: Any) -> None:
    server = dirty_server(
        f"-k asgi -w 1 --dirty-workers 2 --dirty-app {ECHO} --no-control-socket asgi_apps:app"
    )
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(server.call(app=ECHO, action="sleep", args=[1.0]))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 2 and all("result" in r for r in results), results
    assert _overlapped(results)
    streamed = server.call(op="stream", app=ECHO, action="acount", args=[3])
    assert streamed["result"] == [0, 1, 2]
    missing = server.call(app="dirty_apps:Nope", action="x")
    assert missing["error"] == "DirtyAppNotFoundError"
    late = server.call(app=ECHO, action="sleep", args=[1.0], client_timeout=0.2)
    assert late["error"] == "DirtyTimeoutError"
    assert server.call(app=ECHO, action="ping", args=["next"])["result"]["value"] == "next"


def _overlapped(results: list[dict[str, Any]]) -> bool:
    """The calls ran at the same time (on two dirty workers)."""
    spans = [(r["result"]["started"], r["result"]["ended"]) for r in results]
    return max(start for start, _ in spans) < min(end for _, end in spans)
