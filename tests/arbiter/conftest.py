"""Fixtures for the end-to-end process tests: a gunicorn command line ready to start."""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Gunicorn, request

from gunicorn.config.settings import server_hooks

APPS_DIR = os.path.dirname(os.path.abspath(__file__))

SERVER_HOOKS = (
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_exec",
    "pre_request",
    "post_request",
    "child_exit",
    "worker_exit",
    "nworkers_changed",
    "on_exit",
)
#: Every server hook with its parameters (as the defaults declare them); the generated
#: config file appends "<hook> <pid>" lines to HOOK_LOG.
HOOKS = {
    name: ", ".join(inspect.signature(getattr(server_hooks, name)).parameters)
    for name in SERVER_HOOKS
}


def hook_config(log_path: Path, extra: str = "") -> str:
    """A config file recording every hook call in ``log_path``."""
    lines = [
        "import os",
        "",
        "def _record(name, *details):",
        f"    with open({str(log_path)!r}, 'a') as f:",
        "        f.write(' '.join([name, str(os.getpid()), *map(str, details)]) + '\\n')",
        "",
    ]
    for name, params in HOOKS.items():
        details = "new_value, old_value" if name == "nworkers_changed" else ""
        lines += [f"def {name}({params}):", f"    _record({name!r}, {details})", ""]
    return "\n".join(lines) + "\n" + extra


def read_hooks(log_path: Path) -> list[list[str]]:
    """The recorded hook calls as ``[name, pid, *details]`` lists."""
    if not log_path.exists():
        return []
    return [line.split() for line in log_path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "PORT", "LISTEN_FDS", "LISTEN_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)


@pytest.fixture
def servers() -> Iterator[list[Gunicorn]]:
    """Collects servers a test starts; all are stopped afterwards."""
    started: list[Gunicorn] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def gunicorn(servers: list[Gunicorn], tmp_path: Path) -> Iterator[type[Gunicorn]]:
    """Factory: ``gunicorn("-w", "2", "proc_apps:app")`` starts a server (cleaned up after)."""

    def start(*args: str, start: bool = True, **kwargs: object) -> Gunicorn:
        kwargs.setdefault("cwd", str(tmp_path))
        server = Gunicorn("--pythonpath", APPS_DIR, *args, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start() if start else server

    yield start  # type: ignore[misc]


class Load:
    """Requests in a loop from a thread; counts what failed and remembers each body seen."""

    def __init__(self, address: Any, path: str = "/") -> None:
        self.address = address
        self.path = path
        self.ok = 0
        self.failures: list[str] = []
        self.bodies: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = request(self.address, self.path, timeout=10)
            except Exception as exc:
                self.failures.append(repr(exc))
            else:
                if status == 200:
                    self.ok += 1
                    self.bodies.add(body)
                else:
                    self.failures.append(f"status {status}: {body[:200]!r}")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
