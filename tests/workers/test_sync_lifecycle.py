"""Sync worker life cycle: graceful TERM, max_requests, orphaning, heartbeat, slow clients."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.support import Gunicorn, connect, wait_until
from tests.wsgi.wire import WSGI_DIR, one, read_all, request_bytes

APP = ["-k", "sync", "--chdir", str(WSGI_DIR), "apps:app"]


def test_term_lets_the_current_request_finish(tmp_path: Path) -> None:
    server = Gunicorn(*APP, "--graceful-timeout", "10")
    with server:
        results: list[bytes] = []

        def held_request() -> None:
            request = request_bytes("GET", f"/gate?dir={tmp_path}")
            results.append(one(server.address, request, timeout=30).body)

        thread = threading.Thread(target=held_request)
        thread.start()
        # The request is inside the app and stays there until the test releases it.
        wait_until(lambda: (tmp_path / "entered").exists(), timeout=30)
        server.send(signal.SIGTERM)
        server.wait_for("Handling signal: term")
        (tmp_path / "release").touch()
        thread.join(30)
        assert results == [b"released"]
        assert server.wait() == 0


def test_max_requests_restarts_the_worker() -> None:
    with Gunicorn(*APP, "--max-requests", "2") as server:
        first = int(one(server.address, request_bytes("GET", "/pid")).body)
        assert int(one(server.address, request_bytes("GET", "/pid")).body) == first
        server.wait_for("Autorestarting worker after current request.")
        wait_until(lambda: server.worker_pids() and first not in server.worker_pids())
        second = int(one(server.address, request_bytes("GET", "/pid")).body)
        assert second != first


def test_worker_exits_when_its_master_dies() -> None:
    server = Gunicorn(*APP, "--timeout", "2")
    with server:
        (worker,) = server.wait_workers(1)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=5)
        wait_until(lambda: not psutil.pid_exists(worker) or _zombie(worker), timeout=10)
        assert "Parent changed, shutting down" in server.log


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_idle_worker_keeps_its_heartbeat() -> None:
    with Gunicorn(*APP, "--timeout", "1") as server:
        (worker,) = server.wait_workers(1)
        time.sleep(3)
        assert server.worker_pids() == [worker]
        assert "WORKER TIMEOUT" not in server.log
        assert one(server.address, request_bytes("GET", "/")).status == 200


def test_silent_client_is_dropped_and_the_worker_serves_again() -> None:
    with Gunicorn(*APP, "--timeout", "2") as server:
        (worker,) = server.wait_workers(1)
        sock = connect(server.address, timeout=8)
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # never finished
            started = time.monotonic()
            assert read_all(sock, timeout=8) == b""
            assert time.monotonic() - started < 6
        finally:
            sock.close()
        assert one(server.address, request_bytes("GET", "/")).status == 200
        assert server.worker_pids() == [worker]
        assert "WORKER TIMEOUT" not in server.log


def test_quit_to_a_worker_replaces_it() -> None:
    with Gunicorn(*APP) as server:
        (worker,) = server.wait_workers(1)
        os.kill(worker, signal.SIGQUIT)
        server.wait_workers(1, exclude=[worker])
        assert one(server.address, request_bytes("GET", "/")).status == 200
