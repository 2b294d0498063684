"""The asgi worker: an asyncio (or uvloop) event loop serving ASGI applications.

``gunicorn -k asgi app:app``. The loop runs ``gunicorn.drivers.aio`` over the listeners;
lifespan startup runs before the worker counts as booted (a failed startup stops the
server with exit code 3); TERM stops accepting, lets requests and WebSockets finish within
``graceful_timeout`` and then runs lifespan shutdown; INT and QUIT stop at once. The
heartbeat is touched by the loop itself: an application that blocks the loop stops it,
the arbiter aborts the worker, and the log says which request held the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import signal
import sys
import traceback
from types import FrameType
from typing import Any

from gunicorn.drivers.aio_server import AsyncServer
from gunicorn.errors import ConfigError
from gunicorn.lifecycle.options import worker_options
from gunicorn.workers import base

_BEAT_SECONDS = 1.0
# After graceful_timeout, how long WebSockets get for their close handshake.
_CLOSE_SECONDS = 1.0


class ASGIWorker(base.Worker):
    """An event-loop worker for ASGI 3 applications (``-k asgi``)."""

    supports_http2 = True
    wsgi_multithread = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: AsyncServer | None = None
        self.lifespan: Any = None
        self.state: dict[str, Any] = {}
        self._stopping: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._start_error: Exception | None = None
        self._quick = False

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        if cfg.asgi_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ConfigError(
                "asgi_loop is 'uvloop' but uvloop is not installed: "
                "pip install 'gunicorn[asgi]' (or uvloop), or use --asgi-loop asyncio"
            )
        if int(getattr(cfg, "threads", 1) or 1) > 1:
            log.warning("The asgi worker ignores threads=%s: it runs one event loop", cfg.threads)

    # -- boot -------------------------------------------------------------------------------

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        choice = self.cfg.asgi_loop
        if choice in ("auto", "uvloop") and importlib.util.find_spec("uvloop") is not None:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
        return asyncio.new_event_loop()

    def load_wsgi(self) -> None:
        """Load the application, then run lifespan startup before the worker boots."""
        super().load_wsgi()
        self.wsgi = _asgi3(self.wsgi)
        loop = self.loop = self._new_loop()
        asyncio.set_event_loop(loop)
        if self.load_error is not None:
            return
        from gunicorn.asgi.lifespan import Lifespan, LifespanFailure

        self.lifespan = Lifespan(self.wsgi, self.cfg.asgi_lifespan, self.log, self.state)
        try:
            loop.run_until_complete(self.lifespan.startup())
        except LifespanFailure as exc:
            self.log.error("Application startup failed: %s", exc)
            sys.exit(3)

    def init_signals(self) -> None:
        super().init_signals()
        # Signals reach the loop through its own wakeup fd (set in run); ABRT keeps its
        # Python handler: it must run inside the code that blocks the loop.
        signal.signal(signal.SIGABRT, self.handle_abort)

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        loop = self.loop
        assert loop is not None
        options = worker_options(self)
        self.server = AsyncServer(
            self, self.wsgi, options, loop, state=self.state if self.lifespan else None
        )
        # One run of the loop from here to the end. uvloop listens for signals only while
        # it runs: a signal between two runs, or between add_signal_handler and the run,
        # would be recorded and never dispatched (a TERM lost: the worker served on until
        # graceful_timeout and was killed). So the loop's handlers are registered from
        # inside the running loop; until then the base class's handlers set ``alive``.
        loop.call_soon(self._serve)
        try:
            loop.run_forever()
            if self._start_error is not None:
                raise self._start_error
        finally:
            self._close_loop()

    def _serve(self) -> None:
        """The loop's first callback: take the signals, then start the listeners."""
        loop = self.loop
        assert loop is not None
        for sig, handler in (
            (signal.SIGTERM, self._on_term),
            (signal.SIGINT, self._on_quit),
            (signal.SIGQUIT, self._on_quit),
            (signal.SIGUSR1, self._on_usr1),
            (signal.SIGWINCH, lambda: None),
        ):
            loop.add_signal_handler(sig, handler)
        # Beat before serving: a request can be served (and block the loop) while
        # the listeners start.
        self.notify()
        self._starting = loop.create_task(self._start())
        if not self.alive:
            # A TERM before this (while the application loaded, or just now).
            self._begin_stop(graceful=True)

    async def _start(self) -> None:
        loop = self.loop
        assert loop is not None and self.server is not None
        try:
            await self.server.start(self.sockets)
        except Exception as exc:  # raised by run() once the loop has stopped
            self._start_error = exc
            loop.stop()
            return
        loop.call_later(_BEAT_SECONDS, self._beat)
        self.notify()

    def count_request(self) -> None:
        super().count_request()
        if not self.alive and self._stopping is None and self.loop is not None:
            # max_requests reached: stop taking connections now, not at the next beat.
            self.loop.call_soon(self._begin_stop, True)

    def _beat(self) -> None:
        loop = self.loop
        assert loop is not None and self.server is not None
        self.notify()
        if self._stopping is None:
            if not self.alive:
                self._begin_stop(graceful=True)
            elif self.parent_changed():
                self.log.info("Parent changed, shutting down: %s", self)
                self.alive = False
                self._begin_stop(graceful=True)
            else:
                self.server.check_deadlines()
        loop.call_later(_BEAT_SECONDS, self._beat)

    # -- signals ----------------------------------------------------------------------------

    def _on_term(self) -> None:
        self.alive = False
        if self._reload_pending:
            self._reload_pending = False
            self.cfg.worker_int(self)
        self._begin_stop(graceful=True)

    def _on_quit(self) -> None:
        self.alive = False
        self.cfg.worker_int(self)
        self._quick = True
        self._begin_stop(graceful=False)

    def _on_usr1(self) -> None:
        self.log.reopen_files()

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """The arbiter saw no heartbeat for ``timeout``: the loop is blocked. Say by what."""
        if self.server is not None:
            # Accept nothing more: what the loop would accept while this worker unwinds
            # would be closed unanswered; the other workers take it instead.
            with contextlib.suppress(Exception):
                self.server.stop_accepting()
        where = _blocking_request(frame)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
        if where is not None:
            self.log.error(
                "The event loop was blocked for more than %ss while serving %s; "
                "the application was at:\n%s",
                self.cfg.timeout,
                where,
                stack,
            )
        else:
            self.log.error(
                "The event loop was blocked for more than %ss; it was at:\n%s",
                self.cfg.timeout,
                stack,
            )
        super().handle_abort(sig, frame)

    # -- stopping ---------------------------------------------------------------------------

    def _begin_stop(self, graceful: bool) -> None:
        loop = self.loop
        assert loop is not None
        if self._stopping is not None:
            starting = self._starting
            if not graceful and self.server is not None and (starting is None or starting.done()):
                self.server.abort_all()
                loop.stop()
            return
        if self.server is not None:
            # At once, not in the task: a start under way must not serve a listener.
            self.server.stop_accepting()
        self._stopping = loop.create_task(self._stop(graceful))

    async def _stop(self, graceful: bool) -> None:
        server = self.server
        loop = self.loop
        assert server is not None and loop is not None
        if self._starting is not None:
            # A stop during start: let it finish, so no listener is served after this.
            await asyncio.wait([self._starting])
        server.stop_accepting()
        if graceful:
            server.shutdown_connections()
            # Connections the loop accepted just before it stopped accepting get their
            # connection_made a turn or two later (the server shuts them down then); the
            # wait below must count them as active.
            for _ in range(3):
                await asyncio.sleep(0)
            # WebSockets get their 1001 close early enough for the close handshake to
            # end before the arbiter's graceful_timeout runs out.
            end = loop.time() + float(self.cfg.graceful_timeout)
            close_at = end - _CLOSE_SECONDS
            while server.active and loop.time() < close_at:
                await asyncio.sleep(0.05)
                server.check_deadlines()
            server.shutdown_connections(websockets=True)
            while server.active and loop.time() < end - 0.2:
                await asyncio.sleep(0.05)
                server.check_deadlines()
        server.abort_all()
        if graceful and self.lifespan is not None:
            with contextlib.suppress(Exception):
                await self.lifespan.shutdown()
        loop.stop()

    def _close_loop(self) -> None:
        loop = self.loop
        if loop is None:
            return
        with contextlib.suppress(Exception):
            for task in asyncio.all_tasks(loop):
                task.cancel()
            if not self._quick:
                loop.run_until_complete(asyncio.sleep(0))
        with contextlib.suppress(Exception):
            loop.close()


def _blocking_request(frame: FrameType | None) -> str | None:
    """The request whose code ``frame`` is in (a ``HTTPCycle.run`` below it), if any."""
    from gunicorn.asgi.http import HTTPCycle

    while frame is not None:
        cycle = frame.f_locals.get("self")
        if type(cycle) is HTTPCycle and frame.f_code.co_name == "run":
            request = cycle.request
            return f"{request.method.decode('latin-1')} {request.target.decode('latin-1')}"
        frame = frame.f_back
    # A coroutine's frame does not link to the task that drives it: look at the
    # running task's coroutine chain instead.
    with contextlib.suppress(RuntimeError):
        task = asyncio.current_task()
        coro: Any = task.get_coro() if task is not None else None
        while coro is not None:
            owner = getattr(coro, "cr_frame", None)
            cycle = owner.f_locals.get("self") if owner is not None else None
            if type(cycle) is HTTPCycle:
                request = cycle.request
                return f"{request.method.decode('latin-1')} {request.target.decode('latin-1')}"
            coro = getattr(coro, "cr_await", None)
    return None


def _asgi3(app: Any) -> Any:
    """ASGI 2 applications (a class taking the scope) run through a 3-style callable."""
    if inspect.isclass(app):
        factory: Any = app

        async def asgi2(scope: dict[str, Any], receive: Any, send: Any) -> None:
            instance = factory(scope)
            await instance(receive, send)

        return asgi2
    return app


__all__ = ["ASGIWorker"]
