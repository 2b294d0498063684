"""Helpers for the dirty-arbiter tests: a server with dirty apps, and calls through it."""

from __future__ import annotations

import json
import os
import re
import shlex
import urllib.parse
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from support import Gunicorn, request, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


class DirtyServer(Gunicorn):
    """A gunicorn master with dirty workers, and ways to reach its dirty processes."""

    def call(self, timeout: float = 15.0, **query: Any) -> dict[str, Any]:
        """Run ``query`` in an HTTP worker (see web_apps.py); the decoded JSON answer."""
        assert self.address is not None
        q = urllib.parse.quote(json.dumps(query))
        status, body = request(self.address, f"/?q={q}", timeout=timeout)
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer

    def dirty_arbiter(self) -> psutil.Process:
        found = [p for p in psutil.Process(self.pid).children() if "dirty-arbiter" in _title(p)]
        assert len(found) == 1, [(p.pid, _title(p)) for p in found]
        self.adopt(found[0].pid)
        return found[0]

    def dirty_workers(self) -> list[int]:
        """Pids of the live dirty workers (zombies excluded)."""
        try:
            arbiter = self.dirty_arbiter()
            children = arbiter.children()
        except (psutil.NoSuchProcess, AssertionError):
            return []
        pids = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        for pid in pids:
            self.adopt(pid)
        return sorted(pids)

    def wait_dirty_workers(self, n: int, exclude: Any = (), timeout: float = 15.0) -> list[int]:
        excluded = set(exclude)

        def ready() -> list[int] | None:
            pids = self.dirty_workers()
            if len(pids) == n and not excluded & set(pids):
                return pids
            return None

        pids: list[int] = wait_until(ready, timeout=timeout)
        return pids

    def socket_path(self) -> str:
        match = re.search(r"Dirty arbiter booted \(pid: \d+\), listening at (\S+)", self.log)
        assert match, self.log
        return match.group(1)

    def remember_processes(self) -> None:
        super().remember_processes()
        if self.proc is not None and self.proc.poll() is None:
            self.dirty_workers()


def _title(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


@pytest.fixture
def dirty_server(tmp_path: Any) -> Iterator[Any]:
    """``dirty_server("--dirty-workers 2 ...", env=...)`` starts a server with cwd tests/dirty
    (each argument is split like a shell line); every server started is stopped."""
    started: list[DirtyServer] = []

    def start(*words: str, env: dict[str, str] | None = None, **kwargs: Any) -> DirtyServer:
        args = tuple(arg for word in words for arg in shlex.split(word))
        env = {"DIRTY_INIT_LOG": str(tmp_path / "init.log"), **(env or {})}
        server = DirtyServer(*args, cwd=HERE, env=env, **kwargs)
        started.append(server)
        server.start()
        if kwargs.get("ready", "") is not None:
            server.wait_for(r"Dirty worker \d+ ready", count=_ready_count(args))
        return server

    yield start
    for server in started:
        server.stop()


def _ready_count(args: tuple[str, ...]) -> int:
    for i, arg in enumerate(args):
        if arg == "--dirty-workers":
            return int(args[i + 1])
    return 1
