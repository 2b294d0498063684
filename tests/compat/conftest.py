"""A real ``gunicorn`` process per test, started in the test's directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Gunicorn


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "PORT", "LISTEN_FDS", "LISTEN_PID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    """Factory: ``gunicorn("-c", "conf.py", "app:app")`` runs in ``tmp_path``; all servers
    started are stopped afterwards."""
    started: list[Gunicorn] = []

    def start(*args: str, ready: str | None = "Listening at:", **kwargs: object) -> Gunicorn:
        kwargs.setdefault("cwd", str(tmp_path))
        server = Gunicorn(*args, ready=ready, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
