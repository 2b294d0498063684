"""The eventlet worker (``-k eventlet``), which gunicorn 26 dropped and this server keeps.

Requests are parsed by the server's own protocol core, never by ``eventlet.wsgi``: eventlet
only provides greenlets and its hub for the I/O (see ``gunicorn.workers.green``). eventlet's
monkey patch removes ``select.poll`` and ``select.epoll``; every wait of the drivers goes
through the hub (``trampoline``) instead. ``eventlet`` is imported in the worker only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from gunicorn.workers.green import GreenKit, GreenWorker


class _Timeout(Exception):
    """A hub wait ran out of time."""


class _Watch:
    """A keep-alive wait through the hub (eventlet keeps no watcher between waits)."""

    __slots__ = ("_fileno", "_trampoline")

    def __init__(self, trampoline: Any, fileno: int) -> None:
        self._trampoline = trampoline
        self._fileno = fileno

    def wait_readable(self) -> None:
        self._trampoline(self._fileno, read=True)

    def close(self) -> None:
        return None


class EventletKit(GreenKit):
    """eventlet's hub: readiness waits with ``trampoline``, ``spawn_n`` greenlets."""

    name = "eventlet"

    def __init__(self) -> None:
        self._trampoline: Any = None
        self._spawn: Any = None
        self._sleep: Any = None
        self._getcurrent: Any = None
        self._get_hub: Any = None

    def patch(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eventlet's deprecation notice
            import eventlet
            import eventlet.debug
            import eventlet.hubs

        eventlet.monkey_patch()
        # An HTTP/2 connection's reader and a stream may both wait for the socket to
        # drain; the hub's one-waiter-per-direction check would refuse the second.
        eventlet.debug.hub_prevent_multiple_readers(False)
        from greenlet import getcurrent

        self._trampoline = eventlet.hubs.trampoline
        self._spawn = eventlet.spawn_n
        self._sleep = eventlet.sleep
        self._getcurrent = getcurrent
        self._get_hub = eventlet.hubs.get_hub

    def wait(self, fileno: int, write: bool, timeout: float | None) -> bool:
        try:
            if write:
                self._trampoline(fileno, write=True, timeout=timeout, timeout_exc=_Timeout)
            else:
                self._trampoline(fileno, read=True, timeout=timeout, timeout_exc=_Timeout)
        except _Timeout:
            return False
        return True

    def watch(self, fileno: int) -> _Watch:
        return _Watch(self._trampoline, fileno)

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def spawn(self, function: Callable[..., None], *args: Any) -> None:
        self._spawn(function, *args)

    def in_hub(self) -> bool:
        return bool(self._getcurrent() is self._get_hub().greenlet)


class EventletWorker(GreenWorker):
    """``-k eventlet``: one greenlet per connection and per HTTP/2 stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kit = EventletKit()


__all__ = ["EventletWorker"]
