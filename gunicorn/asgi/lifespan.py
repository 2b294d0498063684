"""The ASGI lifespan protocol: startup before the worker serves, shutdown after it stopped.

``asgi_lifespan``: ``auto`` runs it and carries on when the application does not support
it (it raises, or returns, before answering startup); ``on`` requires it; ``off`` skips
it. ``lifespan.startup.failed`` stops the server under both ``auto`` and ``on``. The
``state`` dict the application fills at startup is copied into every request's scope.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gunicorn.asgi.scope import ASGI_VERSION


class LifespanFailure(Exception):
    """Startup (or shutdown) failed; the message says why."""


class Lifespan:
    """Runs the application's lifespan task (see the module docstring)."""

    def __init__(self, app: Any, mode: str, log: Any, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.log = log
        self.state = state
        self.supported = mode != "off"
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._answer: asyncio.Future[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._started = False

    async def startup(self) -> None:
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._answer = loop.create_future()
        self._task = loop.create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        message = await self._answer
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._started = True
            return
        if kind == "lifespan.startup.failed":
            raise LifespanFailure(str(message.get("message", "")) or "no message given")
        # The application returned or raised before answering.
        error = self._error
        if self.mode == "on":
            reason = f"{type(error).__name__}: {error}" if error is not None else "it returned"
            raise LifespanFailure(f"the application does not support lifespan ({reason})")
        self.supported = False
        if error is not None:
            self.log.info(
                "ASGI 'lifespan' protocol appears unsupported (%s: %s)", type(error).__name__, error
            )
        else:
            self.log.debug("ASGI 'lifespan' protocol not used by the application")

    async def shutdown(self) -> None:
        if not self._started or self._inbox is None:
            return
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        await self._inbox.put({"type": "lifespan.shutdown"})
        message = await self._answer
        if message["type"] == "lifespan.shutdown.failed":
            self.log.error("Application shutdown failed: %s", message.get("message", ""))
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            except (asyncio.TimeoutError, Exception):
                task.cancel()

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            self._error = exc
            if self._started:
                self.log.error(
                    "Exception in the ASGI lifespan task: %s: %s", type(exc).__name__, exc
                )
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self._reply({"type": "lifespan.returned"})

    async def _receive(self) -> dict[str, Any]:
        assert self._inbox is not None
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"Unexpected ASGI lifespan message {kind!r}")
        self._reply(message)

    def _reply(self, message: dict[str, Any]) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(message)
