"""The gevent workers (``-k gevent``, ``gevent_wsgi``, ``gevent_pywsgi``).

Requests are parsed by the server's own protocol core, never by ``gevent.pywsgi``: the
gevent names only choose greenlets and gevent's hub for the I/O (see
``gunicorn.workers.green``). ``gevent`` is imported in the worker only, after the fork.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from gunicorn.workers.green import GreenKit, GreenWorker


class _Watch:
    """One libev/libuv io watcher per connection, reused for every keep-alive wait."""

    __slots__ = ("_hub", "_io")

    def __init__(self, hub: Any, fileno: int) -> None:
        self._hub = hub
        self._io = hub.loop.io(fileno, 1)

    def wait_readable(self) -> None:
        self._hub.wait(self._io)

    def close(self) -> None:
        self._io.close()


class GeventKit(GreenKit):
    """gevent's hub: readiness waits with libev/libuv watchers, ``spawn_raw`` greenlets."""

    name = "gevent"

    def __init__(self) -> None:
        self._hub: Any = None
        self._waiter: Any = None
        self._spawn: Any = None
        self._sleep: Any = None
        self._getcurrent: Any = None

    def patch(self) -> None:
        import gevent
        from gevent import monkey

        with warnings.catch_warnings():
            # "ssl imported before patching": the server built no SSL object before
            # this point (its context is made after the patch), so nothing is stale.
            warnings.simplefilter("ignore", monkey.MonkeyPatchWarning)
            monkey.patch_all()
        from gevent.hub import Waiter, get_hub
        from greenlet import getcurrent

        self._hub = get_hub()
        self._waiter = Waiter
        self._spawn = gevent.spawn_raw
        self._sleep = gevent.sleep
        self._getcurrent = getcurrent

    def wait(self, fileno: int, write: bool, timeout: float | None) -> bool:
        hub = self._hub
        loop = hub.loop
        waiter = self._waiter(hub)
        io = loop.io(fileno, 2 if write else 1)
        io.start(waiter.switch, True)
        timer = None
        if timeout is not None:
            timer = loop.timer(max(timeout, 0.0))
            timer.start(waiter.switch, False)
        try:
            return bool(waiter.get())
        finally:
            io.close()
            if timer is not None:
                timer.close()

    def watch(self, fileno: int) -> _Watch:
        return _Watch(self._hub, fileno)

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def spawn(self, function: Callable[..., None], *args: Any) -> None:
        self._spawn(function, *args)

    def in_hub(self) -> bool:
        return bool(self._getcurrent() is self._hub)


class GeventWorker(GreenWorker):
    """``-k gevent``: one greenlet per connection and per HTTP/2 stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kit = GeventKit()


class GeventPyWSGIWorker(GeventWorker):
    """``-k gevent_wsgi`` / ``gevent_pywsgi``: the same worker. gunicorn's older gevent
    workers served with ``gevent.pywsgi``; here every gevent worker uses the server's
    own HTTP core, and the environ keys apps rely on (``wsgi.input`` streaming,
    ``gunicorn.socket``) are there as for ``-k gevent``."""


__all__ = ["GeventPyWSGIWorker", "GeventWorker"]
