"""One-shot readiness pollers that many threads wait on (gthread's leader/followers).

When a descriptor becomes ready it is reported to exactly one waiting thread and stays
silent until that thread re-arms it: ``add`` starts watching, ``rearm`` watches again
(``0`` arms it for nothing: registered but never reported), ``remove`` forgets it.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import threading
import time
from collections import deque

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


class EpollPoller:
    """One-shot readiness over ``epoll``; safe to wait on and re-arm from many threads."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._masks = {READ: select.EPOLLIN | select.EPOLLONESHOT}
        self._masks[WRITE] = select.EPOLLOUT | select.EPOLLONESHOT
        self._masks[READ | WRITE] = self._masks[READ] | self._masks[WRITE]
        self._masks[0] = select.EPOLLONESHOT  # registered, reported for nothing

    def add(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (reported once)."""
        self._epoll.register(fd, self._masks[events])

    def rearm(self, fd: int, events: int) -> None:
        """Watch ``fd`` again after it was reported."""
        self._epoll.modify(fd, self._masks[events])

    def remove(self, fd: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)

    def wait(self, timeout: float) -> list[tuple[int, int]]:
        """At most one ready descriptor (``(fd, raw event mask)``), or none on timeout."""
        try:
            return self._epoll.poll(timeout, 1)
        except InterruptedError:
            return []

    def close(self) -> None:
        self._epoll.close()


class SelectorPoller:
    """One-shot readiness over any ``selectors`` selector (platforms without epoll).

    One waiting thread at a time holds the selector; changes asked for by other threads
    are queued and applied by it, with a pipe to interrupt its wait.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._leader = threading.Lock()
        self._changes_lock = threading.Lock()
        self._changes: list[tuple[int, int]] = []  # (fd, events); 0 = disarm, -1 = forget
        self._ready: deque[tuple[int, int]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, READ)

    def _change(self, fd: int, events: int) -> None:
        with self._changes_lock:
            self._changes.append((fd, events))
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b".")

    def add(self, fd: int, events: int) -> None:
        self._change(fd, events)

    rearm = add

    def remove(self, fd: int) -> None:
        self._change(fd, -1)

    def _apply_changes(self) -> None:
        with self._changes_lock:
            changes, self._changes = self._changes, []
        selector = self._selector
        for fd, events in changes:
            with contextlib.suppress(KeyError, ValueError, OSError):
                selector.unregister(fd)
            if events > 0:
                with contextlib.suppress(ValueError, OSError):
                    selector.register(fd, events)

    def wait(self, timeout: float) -> list[tuple[int, int]]:
        deadline = time.monotonic() + timeout
        if not self._leader.acquire(timeout=timeout):
            return []
        try:
            ready = self._ready
            while not ready:
                self._apply_changes()
                remaining = deadline - time.monotonic()
                for key, mask in self._selector.select(max(0.0, remaining)):
                    if key.fd == self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                        continue
                    self._selector.unregister(key.fd)
                    ready.append((key.fd, mask))
                if remaining <= 0:
                    break
            return [ready.popleft()] if ready else []
        finally:
            self._leader.release()

    def close(self) -> None:
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def make_poller() -> EpollPoller | SelectorPoller:
    """The fastest one-shot poller of this platform."""
    if hasattr(select, "epoll"):
        return EpollPoller()
    return SelectorPoller()
