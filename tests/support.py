"""Run a real ``gunicorn`` process in tests and talk to it.

Typical use::

    with Gunicorn("-w", "2", "myapp:app", cwd=tmp_path) as server:
        status, body = request(server.address, "/")
        server.send(signal.SIGHUP)
        server.wait_for("Booting worker", count=4)

``Gunicorn`` binds ``127.0.0.1:0`` unless the arguments contain ``-b``/``--bind`` (or
``default_bind=False``, e.g. when a config file sets ``bind``),
writes stdout+stderr to a log file, waits for ``Listening at:`` on ``start()``,
and on exit stops the master (TERM, then KILL) and any worker it left behind.
Everything is bounded in time and only processes started here are signalled.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

#: The console script of the project's virtualenv.
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

Address = tuple[str, int] | str  # (host, port) or a unix socket path

#: Every server's log file: removed when the test process exits (a test may read a log
#: after its server stopped).
_LOGS: list[str] = []


def _remove_logs() -> None:
    for path in _LOGS:
        with contextlib.suppress(OSError):
            os.unlink(path)


atexit.register(_remove_logs)

_LISTENING = re.compile(r"Listening at: (\S+) \((\d+)\)")


class Gunicorn:
    """One gunicorn master started with ``args`` (see the module docstring)."""

    def __init__(
        self,
        *args: str,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        command: Sequence[str] | None = None,
        ready: str | None = "Listening at:",
        timeout: float = 15.0,
        default_bind: bool = True,
    ) -> None:
        self.args = list(args)
        if default_bind and not any(
            a in ("-b", "--bind") or a.startswith("--bind=") for a in self.args
        ):
            self.args[:0] = ["-b", "127.0.0.1:0"]
        self.cwd = str(cwd) if cwd is not None else None
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        # The control socket's default home: one directory per server, removed at stop
        # (a test never leaves sockets in the user's ~/.gunicorn).
        self._runtime_dir: str | None = None
        if not (env and "XDG_RUNTIME_DIR" in env):
            self._runtime_dir = tempfile.mkdtemp(prefix="gunicorn-rt-")
            self.env["XDG_RUNTIME_DIR"] = self._runtime_dir
        self.pass_fds = tuple(pass_fds)
        self.command = list(command) if command is not None else [GUNICORN]
        self.ready = ready
        self.timeout = timeout
        fd, self.log_path = tempfile.mkstemp(prefix="gunicorn-test-", suffix=".log")
        os.close(fd)
        _LOGS.append(self.log_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self.address: Address | None = None
        self.url: str | None = None
        self._known: set[int] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Gunicorn:
        """Start the master; wait for the ``ready`` log line (default ``Listening at:``)."""
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [*self.command, *self.args],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=self.pass_fds,
            )
        if self.ready:
            self.wait_for(self.ready, timeout=self.timeout)
            match = _LISTENING.search(self.log)
            if match:
                self.url = match.group(1).split(",")[0]
                self.address = parse_url(self.url)
        return self

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def log(self) -> str:
        """Everything the server wrote so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def send(self, sig: int) -> None:
        """Send ``sig`` to the master."""
        self.remember_processes()
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the master to exit; returns its exit status."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """TERM the master, KILL it after ``timeout``; then KILL leftover workers. Idempotent."""
        if self.proc is None:
            return None
        self.remember_processes()
        code = self.proc.poll()
        if code is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait(timeout=5)
        kill_pids(self._known - {self.pid})
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
        return code

    # -- observation ------------------------------------------------------------------------

    def wait_for(
        self, pattern: str, timeout: float = 10.0, count: int = 1, master_exits: bool = False
    ) -> str:
        """Wait until ``pattern`` (a regex) appears ``count`` times in the log; return the log.

        Fails early if the master exits before that, unless ``master_exits`` (other
        processes, such as a USR2 master, write to the same log).
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            log = self.log
            if len(regex.findall(log)) >= count:
                return log
            if not master_exits and self.proc is not None and self.proc.poll() is not None:
                log = self.log  # read again: the last lines may have landed meanwhile
                if len(regex.findall(log)) >= count:
                    return log
                raise AssertionError(
                    f"gunicorn exited ({self.proc.returncode}) before {pattern!r}:\n{log}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r} x{count}:\n{log}")
            time.sleep(0.05)

    def count(self, pattern: str) -> int:
        """How many times ``pattern`` (a regex) appears in the log."""
        return len(re.findall(pattern, self.log))

    def worker_pids(self) -> list[int]:
        """PIDs of the master's live child processes (zombies excluded)."""
        try:
            children = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        self._known.update(pids)
        return sorted(pids)

    def wait_workers(self, n: int, timeout: float = 10.0, exclude: Iterable[int] = ()) -> list[int]:
        """Wait until the master has exactly ``n`` workers, none of them in ``exclude``."""
        excluded = set(exclude)
        deadline = time.monotonic() + timeout
        while True:
            pids = self.worker_pids()
            if len(pids) == n and not excluded & set(pids):
                return pids
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} workers, have {pids}:\n{self.log}")
            time.sleep(0.05)

    def remember_processes(self) -> None:
        """Record the current children so ``stop()`` can clean up orphans."""
        if self.proc is not None and self.proc.poll() is None:
            self.worker_pids()

    def adopt(self, pid: int) -> None:
        """Make ``stop()`` also kill ``pid`` (e.g. a master started by USR2)."""
        self._known.add(pid)


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each pid that is still alive (processes this test started)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def parse_url(url: str) -> Address:
    """``http://127.0.0.1:8000`` -> ``("127.0.0.1", 8000)``; ``unix:/p`` -> ``"/p"``."""
    if url.startswith("unix:"):
        return url[len("unix:") :]
    hostport = url.split("://", 1)[1]
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


def connect(address: Address, timeout: float = 5.0) -> socket.socket:
    """A connected client socket for a TCP ``(host, port)`` or a unix path."""
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def request(
    address: Address,
    path: str = "/",
    method: str = "GET",
    timeout: float = 5.0,
    headers: Sequence[tuple[str, str]] = (),
) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request with ``Connection: close``; return (status, body).

    The body is everything after the head (the server closes the connection).
    """
    sock = connect(address, timeout)
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionError("empty response")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body


def _unchunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2 :]
    return b"".join(out)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
