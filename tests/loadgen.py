"""A small closed-loop HTTP/1.1 load generator with exact accounting, for tests that
prove no request is lost while workers stop, restart or recycle.

Each of ``connections`` threads sends GET requests over one keep-alive connection and
reconnects when the server answers ``Connection: close``. Every request ends in exactly
one of ``ok`` (a complete response) or ``failed`` (refused, reset or closed before a
complete response: what wrk reports as connect/read errors); the first failures are kept
with their reason. Traffic goes only to the address given (127.0.0.1 in tests) and stops
when ``stop`` is called or ``max_seconds`` pass.
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any


class Load:
    def __init__(
        self,
        address: tuple[str, int],
        *,
        connections: int = 16,
        path: str = "/",
        max_seconds: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self.address = address
        self.connections = connections
        self.path = path
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.ok = 0
        self.failed = 0
        self.statuses: dict[int, int] = {}
        self.reasons: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for index in range(self.connections):
            thread = threading.Thread(target=self._run, name=f"load-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def wait_for_requests(self, count: int, timeout: float = 15.0) -> None:
        """Wait until ``count`` more requests were answered."""
        target = self.ok + count
        deadline = time.monotonic() + timeout
        while self.ok < target:
            assert time.monotonic() < deadline, f"only {self.ok} of {target} requests answered"
            time.sleep(0.02)

    def _record(self, status: int | None, reason: str = "") -> None:
        with self._lock:
            if status is None:
                self.failed += 1
                if len(self.reasons) < 20:
                    self.reasons.append(reason)
            else:
                self.ok += 1
                self.statuses[status] = self.statuses.get(status, 0) + 1

    def _run(self) -> None:
        host, port = self.address
        conn: Any = None
        ends = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < ends:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._record(None, f"{time.time():.3f} {type(exc).__name__}: {exc}")
                conn.close()
                conn = None
                continue
            self._record(response.status)
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
