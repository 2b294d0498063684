"""The arbiter's record of each child process, kept apart from the worker object itself.

A :class:`Child` holds what the parent knows about a worker: its pid, the
generation it belongs to (bumped by HUP and code reloads), whether it booted,
the last heartbeat seen, and when it was asked to stop. :class:`Children` is the
pid-indexed registry with the queries the arbiter's loop needs. :class:`BootReports` carries
a one-line reason from a worker that could not boot to the arbiter, and :func:`exit_report`
words a child's exit status the way gunicorn logs it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gunicorn.workers.workertmp import BOOTED, BROKEN

#: Exit statuses of a worker that could not boot / whose app could not be loaded.
WORKER_BOOT_ERROR = 3
APP_LOAD_ERROR = 4


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
    #: Why the worker said it is leaving on its own (``max_requests``, a blocked thread).
    leaving: str | None = None
    _first_heartbeat: float | None = None

    @property
    def age(self) -> int:
        return int(self.worker.age)

    @property
    def retiring(self) -> bool:
        """On its way out (asked to stop, aborted, killed, or leaving on its own): not
        counted as serving any more, so its replacement starts at once."""
        return (
            self.term_sent_at is not None
            or self.abort_sent_at is not None
            or self.kill_sent_at is not None
            or self.leaving is not None
        )

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
        metrics = getattr(self.worker, "metrics", None)
        if self.leaving is None and metrics is not None and not getattr(metrics, "closed", True):
            self.leaving = metrics.exit_reason()
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


@dataclass(frozen=True)
class BootFailure:
    """Why a worker could not boot: a one-line summary and the files its traceback names."""

    summary: str
    files: tuple[str, ...] = ()


class BootReports:
    """A pipe a worker that cannot boot writes one line to before it exits; the arbiter
    reads it when it reaps the worker.

    Lines stay under PIPE_BUF so that writes from several workers never interleave.
    """

    _MAX_LINE = 4000

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        for fd in (self._read, self._write):
            os.set_inheritable(fd, False)
        self._pending: dict[int, BootFailure] = {}
        self._buffer = b""

    def send(self, pid: int, summary: str, files: list[str]) -> None:
        """From the worker: report why it cannot boot (never raises, never blocks)."""
        kept = list(files)
        while True:
            line = json.dumps({"pid": pid, "summary": summary[:1000], "files": kept}) + "\n"
            if len(line.encode()) <= self._MAX_LINE or not kept:
                break
            kept.pop()
        with contextlib.suppress(OSError):
            os.write(self._write, line.encode()[: self._MAX_LINE])

    def pop(self, pid: int) -> BootFailure | None:
        """From the arbiter: what worker ``pid`` reported, if anything."""
        self._collect()
        return self._pending.pop(pid, None)

    def _collect(self) -> None:
        while select.select([self._read], [], [], 0)[0]:
            try:
                chunk = os.read(self._read, 65536)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                data = json.loads(line)
                self._pending[int(data["pid"])] = BootFailure(
                    str(data["summary"]), tuple(str(f) for f in data["files"])
                )
            except (ValueError, KeyError, TypeError):
                continue

    def close_reader(self) -> None:
        """In a worker: only the writing end is needed."""
        with contextlib.suppress(OSError):
            os.close(self._read)

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


def exit_report(pid: int, status: int, killed_by_master: bool) -> tuple[int, str] | None:
    """The log level and line for a worker's exit status (None for a clean exit).

    A non-zero exit is an ERROR ("exited with code N."); death by SIGTERM is INFO (a normal
    stop), by SIGKILL an ERROR ("Perhaps out of memory?" unless the arbiter sent it), by
    any other signal a WARNING.
    """
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code == 0:
            return None
        return logging.ERROR, f"Worker (pid:{pid}) exited with code {code}."
    if not os.WIFSIGNALED(status):
        return None
    sig = os.WTERMSIG(status)
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    message = f"Worker (pid:{pid}) was sent {name}!"
    if sig == signal.SIGKILL:
        if not killed_by_master:
            message += " Perhaps out of memory?"
        return logging.ERROR, message
    if sig == signal.SIGTERM:
        return logging.INFO, message
    return logging.WARNING, message


def describe_status(status: int) -> str:
    """A wait status in words: the exit code, or ``signal N``."""
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return str(os.WEXITSTATUS(status))
