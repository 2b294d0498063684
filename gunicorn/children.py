"""The arbiter's record of each child process, kept apart from the worker object itself.

A :class:`Child` holds what the parent knows about a worker: its pid, the
generation it belongs to (bumped by HUP and code reloads), whether it booted,
the last heartbeat seen, and when it was asked to stop. :class:`Children` is the
pid-indexed registry with the queries the arbiter's loop needs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gunicorn.workers.workertmp import BOOTED, BROKEN


@dataclass(eq=False)
class Child:
    """Parent-side state of one worker process."""

    pid: int
    worker: Any
    generation: int = 0
    spawned_at: float = field(default_factory=time.monotonic)
    booted: bool = False
    #: The application failed to load (``--reload``); the worker serves an error page.
    broken: bool = False
    reload_requested: bool = False
    last_heartbeat: float = 0.0
    #: Monotonic times at which the arbiter sent TERM/QUIT, ABRT and KILL (None: not sent).
    term_sent_at: float | None = None
    abort_sent_at: float | None = None
    kill_sent_at: float | None = None
    _first_heartbeat: float | None = None

    @property
    def age(self) -> int:
        return int(self.worker.age)

    @property
    def retiring(self) -> bool:
        """Asked to stop (TERM/QUIT sent): not counted as serving any more."""
        return self.term_sent_at is not None

    def refresh(self) -> None:
        """Read the worker's heartbeat file: last sign of life, boot state, reload request."""
        tmp = self.worker.tmp
        if getattr(tmp, "closed", False):
            return
        try:
            self.last_heartbeat = tmp.last_update()
            state = tmp.boot_state()
            self.reload_requested = tmp.reload_requested()
        except (OSError, ValueError):
            return
        if self._first_heartbeat is None:
            self._first_heartbeat = self.last_heartbeat
        if state == BROKEN:
            self.booted = self.broken = True
        elif state == BOOTED or self.last_heartbeat != self._first_heartbeat:
            # A worker class that skips the base boot flag still shows life by notifying.
            self.booted = True

    def silence(self, now: float) -> float:
        """Seconds since the worker last notified (heartbeat file mtime, monotonic clock)."""
        try:
            return now - float(self.worker.tmp.last_update())
        except (OSError, ValueError):
            return 0.0

    def clear_reload_request(self) -> None:
        self.reload_requested = False
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.worker.tmp.clear_reload()

    def close(self) -> None:
        """Release the parent's handle on the heartbeat file."""
        with contextlib.suppress(OSError):
            self.worker.tmp.close()


class Children:
    """The arbiter's children, indexed by pid."""

    def __init__(self) -> None:
        self._by_pid: dict[int, Child] = {}

    def __len__(self) -> int:
        return len(self._by_pid)

    def __iter__(self) -> Iterator[Child]:
        return iter(list(self._by_pid.values()))

    def __contains__(self, pid: object) -> bool:
        return pid in self._by_pid

    def add(self, child: Child) -> None:
        self._by_pid[child.pid] = child

    def get(self, pid: int) -> Child | None:
        return self._by_pid.get(pid)

    def pop(self, pid: int) -> Child | None:
        return self._by_pid.pop(pid, None)

    def workers(self) -> dict[int, Any]:
        """pid -> worker object (gunicorn's ``Arbiter.WORKERS`` view)."""
        return {pid: child.worker for pid, child in self._by_pid.items()}

    def serving(self, generation: int) -> list[Child]:
        """Children of ``generation`` not asked to stop, oldest first."""
        found = [c for c in self._by_pid.values() if c.generation == generation and not c.retiring]
        return sorted(found, key=lambda c: c.age)

    def older(self, generation: int) -> list[Child]:
        """Children of earlier generations not asked to stop yet, oldest first."""
        found = [c for c in self._by_pid.values() if c.generation != generation and not c.retiring]
        return sorted(found, key=lambda c: c.age)
