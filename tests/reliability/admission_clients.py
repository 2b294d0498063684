"""Clients for the idle-flood, EMFILE and slow-client tests: probes, an idle-connection
holder, and the servers each worker class runs.

* ``Probe``: a thread that sends ``GET /`` every ``interval`` seconds, on a new connection
  each time or on one kept-alive connection, and keeps every latency and every failure.
  A kept-alive request that meets a connection the server closed while it was idle is sent
  again once on a new connection (RFC 9112 §9.3.1 lets clients retry a request on a reused
  idle connection that closed); that counts as a reconnect, not an error.
* ``python -m tests.reliability.admission_clients hold HOST PORT COUNT SECONDS RATE``: a
  separate process (its work does not slow the probes' clock) that opens ``COUNT``
  connections that never send a byte, prints ``ready`` once every first connect has
  resolved, and when it reads a line on stdin holds them for ``SECONDS`` (opening a new
  one, at most ``RATE`` a second, for each one the server closes); at the end it prints
  one JSON line of counts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import Gunicorn

REPO = Path(__file__).resolve().parents[2]
WSGI_APP = "tests.reliability.admission_apps:app"
ASGI_APP = "tests.reliability.admission_apps:asgi_app"


def raise_nofile() -> int:
    """Raise this process's soft descriptor limit to its hard limit (servers and holders
    started from here inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def server_for(worker: str, *extra: str, env: dict[str, str] | None = None) -> Gunicorn:
    """A one-worker server of class ``worker`` (``asgi-asyncio``: the asgi worker on
    asyncio's own loop instead of uvloop) serving ``admission_apps``."""
    args = ["-w", "1", "--chdir", str(REPO)]
    if worker.startswith("asgi"):
        args += ["-k", "asgi", "--asgi-loop", "asyncio" if worker == "asgi-asyncio" else "auto"]
        app = ASGI_APP
    else:
        args += ["-k", worker]
        app = WSGI_APP
    return Gunicorn(*args, *extra, app, env=env)


def start_all(servers: Iterable[Gunicorn]) -> None:
    """Start servers side by side (each start waits for its ``Listening at``)."""
    servers = list(servers)
    with concurrent.futures.ThreadPoolExecutor(max(1, len(servers))) as pool:
        for future in [pool.submit(server.start) for server in servers]:
            future.result()


def stop_all(servers: Iterable[Gunicorn]) -> None:
    """Stop servers side by side."""
    servers = list(servers)
    with concurrent.futures.ThreadPoolExecutor(max(1, len(servers))) as pool:
        for future in [pool.submit(server.stop) for server in servers]:
            future.result()


def address_of(server: Gunicorn) -> tuple[str, int]:
    assert isinstance(server.address, tuple)
    return server.address


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * 0.99 + 0.5) - 1))]


# ------------------------------------------------------------------------------- probes

_REQUEST = b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n"
_CLOSE_REQUEST = b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"


class ProbeError(Exception):
    pass


class _Closed(ProbeError):
    """The server closed the connection before any byte of the response."""


def _read_response(sock: socket.socket) -> int:
    """Read one response with a Content-Length body; its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed("closed before the response") if not data else ProbeError("cut")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProbeError("body cut")
        body += chunk
    return status


@dataclass
class ProbeStats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reconnects: int = 0

    @property
    def answered(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "errors": len(self.errors),
            "reconnects": self.reconnects,
            "p99_ms": round(p99(self.latencies) * 1000, 1),
            "max_ms": round(max(self.latencies, default=0.0) * 1000, 1),
        }


class Probe(threading.Thread):
    """``GET /`` every ``interval`` seconds until ``stop()`` (see the module docstring)."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        keepalive: bool = False,
        interval: float = 0.1,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.keepalive = keepalive
        self.interval = interval
        self.timeout = timeout
        self.stats = ProbeStats()
        self._stop_event = threading.Event()
        self._sock: socket.socket | None = None

    def stop(self) -> ProbeStats:
        """Stop asking (an ask under way ends first: up to ``timeout``); the figures."""
        self._stop_event.set()
        self.join(self.timeout + 5)
        return self.stats

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                started = time.monotonic()
                try:
                    status = self._keepalive_get() if self.keepalive else self._fresh_get()
                    if status != 200:
                        raise ProbeError(f"status {status}")
                except (OSError, ProbeError) as exc:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                    self._drop()
                else:
                    self.stats.latencies.append(time.monotonic() - started)
                self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            self._drop()

    def _connect(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=self.timeout)

    def _fresh_get(self) -> int:
        with self._connect() as sock:
            sock.sendall(_CLOSE_REQUEST)
            return _read_response(sock)

    def _keepalive_get(self) -> int:
        reused = self._sock is not None
        if self._sock is None:
            self._sock = self._connect()
        try:
            self._sock.sendall(_REQUEST)
            return _read_response(self._sock)
        except (_Closed, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
        self._drop()
        self.stats.reconnects += 1
        self._sock = self._connect()
        self._sock.sendall(_REQUEST)
        return _read_response(self._sock)

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def stop_probes(probes: Iterable[Probe]) -> list[ProbeStats]:
    """Stop every probe at once (each may be in the middle of an ask)."""
    probes = list(probes)
    for probe in probes:
        probe._stop_event.set()
    return [probe.stop() for probe in probes]


def answered_within(address: tuple[str, int], seconds: float) -> float | None:
    """Seconds until a ``GET /`` on a new connection is answered (tried every 50 ms), or
    None if none is within ``seconds``."""
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(address, timeout=1.0) as sock:
                sock.sendall(_CLOSE_REQUEST)
                if _read_response(sock) == 200:
                    return time.monotonic() - started
        except (OSError, ProbeError):
            pass
        time.sleep(0.05)
    return None


# ------------------------------------------------------------------------------ holders


class Holder:
    """The ``hold`` process (see the module docstring), started at once."""

    def __init__(self, address: tuple[str, int], count: int, seconds: float, rate: int) -> None:
        command = [sys.executable, "-m", "tests.reliability.admission_clients", "hold"]
        command += [address[0], str(address[1]), str(count), str(seconds), str(rate)]
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "ready" (bounded: the holder gives up itself)
        assert line.startswith("ready"), line + self.proc.stdout.read()

    def go(self) -> None:
        """Start the hold (every holder is ready: they hold at the same time)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        out = self.proc.stdout.read() if self.proc.stdout is not None else ""
        self.proc.wait(timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert lines, out
        return dict(json.loads(lines[-1]))

    def kill(self) -> None:
        """End the holder if it still runs, and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def hold(host: str, port: int, count: int, seconds: float, rate: int) -> dict[str, Any]:
    """The body of the ``hold`` process."""
    selector = selectors.DefaultSelector()
    connecting: set[socket.socket] = set()
    counts = {"connected": 0, "closed_by_server": 0, "connect_failed": 0, "opened": 0}

    def open_one() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            counts["connect_failed"] += 1
            sock.close()
            return
        counts["opened"] += 1
        connecting.add(sock)
        selector.register(sock, selectors.EVENT_WRITE | selectors.EVENT_READ)

    def gone(sock: socket.socket) -> None:
        selector.unregister(sock)
        sock.close()

    for _ in range(count):
        open_one()
    ready_by = time.monotonic() + 3.0
    told_ready = False
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    selector.register(stdin, selectors.EVENT_READ)
    end = None
    to_reopen = 0
    allowance = 0.0
    last = time.monotonic()
    while True:
        now = time.monotonic()
        if not told_ready and (not connecting or now >= ready_by):
            print("ready", flush=True)
            told_ready = True
        if end is not None and now >= end:
            break
        allowance = min(float(rate), allowance + (now - last) * rate) if rate else 0.0
        last = now
        while to_reopen and allowance >= 1.0:
            to_reopen -= 1
            allowance -= 1.0
            open_one()
        for key, events in selector.select(0.05):
            if key.fd == stdin:
                os.read(stdin, 4096)  # "go": the hold starts now
                selector.unregister(stdin)
                end = time.monotonic() + seconds
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock in connecting:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                connecting.discard(sock)
                if error:
                    counts["connect_failed"] += 1
                    gone(sock)
                    to_reopen += 1
                    continue
                counts["connected"] += 1
                selector.modify(sock, selectors.EVENT_READ)
                if not events & selectors.EVENT_READ:
                    continue
            try:
                data = sock.recv(1)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                counts["closed_by_server"] += 1
                gone(sock)
                to_reopen += 1
    open_sockets = [key.fileobj for key in selector.get_map().values() if key.fd != stdin]
    counts["held_at_end"] = len(open_sockets) - len(connecting)
    counts["pending_at_end"] = len(connecting)
    for sock in open_sockets:
        assert isinstance(sock, socket.socket)
        sock.close()
    return counts


if __name__ == "__main__":
    if sys.argv[1:2] == ["hold"]:
        raise_nofile()
        _host, _port, _count, _seconds, _rate = sys.argv[2:7]
        result = hold(_host, int(_port), int(_count), float(_seconds), int(_rate))
        print(json.dumps(result), flush=True)
        os._exit(0)
