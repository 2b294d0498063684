"""Which dirty worker gets a call: the app allocation and the per-app round robin."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Task:
    """A call in flight on a dirty worker, as the dirty arbiter tracks it."""

    client: Any  # the ClientLink it came from (None once that client left)
    request_id: int  # the client's id for it
    worker: Any
    app_path: str
    raw: bytes
    timer: Any = None


@dataclass(eq=False)
class Waiting:
    """A call queued because every worker of its app is busy or (re)starting."""

    client: Any
    request_id: int
    raw: bytes
    since: float


class Allocation:
    """Apps per worker slot: an app limited to N workers is loaded by slots 0..N-1."""

    def __init__(self, limits: dict[str, int | None]) -> None:
        self.limits = dict(limits)

    def apps_for(self, slot: int) -> list[str]:
        return [app for app, n in self.limits.items() if n is None or slot < n]

    @property
    def minimum_workers(self) -> int:
        """The fewest workers that still give every app its N (at least one)."""
        return max([1, *(n for n in self.limits.values() if n is not None)])


@dataclass
class Router:
    """Round robin among the ready workers of an app, preferring one with a free thread."""

    threads: int
    workers_by_app: dict[str, list[Any]] = field(default_factory=dict)
    waiting: dict[str, deque[Waiting]] = field(default_factory=dict)
    _next: dict[str, int] = field(default_factory=dict)

    def rebuild(self, workers: list[Any]) -> None:
        by_app: dict[str, list[Any]] = {}
        for worker in sorted(workers, key=lambda w: w.slot):
            if worker.ready and worker.link is not None:
                for app in worker.served:
                    by_app.setdefault(app, []).append(worker)
        self.workers_by_app = by_app

    def pick(self, app_path: str) -> Any:
        """A worker with a free thread, or None when all are busy (or none is ready)."""
        candidates = self.workers_by_app.get(app_path)
        if not candidates:
            return None
        count = len(candidates)
        start = self._next.get(app_path, 0)
        threads = self.threads
        for i in range(count):
            worker = candidates[(start + i) % count]
            if worker.in_flight < threads:
                self._next[app_path] = (start + i + 1) % count
                return worker
        return None

    def has_ready(self, app_path: str) -> bool:
        return bool(self.workers_by_app.get(app_path))
