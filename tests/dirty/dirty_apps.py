"""Dirty apps loaded by the dirty-arbiter tests (gunicorn runs with this directory as cwd)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from gunicorn.dirty import DirtyApp

#: Set by the tests: a file each app's init() appends "<class> <pid>" to.
INIT_LOG = os.environ.get("DIRTY_INIT_LOG")


def _record(name: str) -> None:
    if INIT_LOG:
        with open(INIT_LOG, "a") as f:
            f.write(f"{name} {os.getpid()}\n")


class Echo(DirtyApp):
    """Answers with its pid; sleeps, streams, fails on demand."""

    def init(self) -> None:
        self.calls = 0
        _record("Echo")

    def ping(self, value: Any = None) -> dict[str, Any]:
        self.calls += 1
        return {"pid": os.getpid(), "value": value, "calls": self.calls}

    def noop(self) -> None:
        return None

    def sleep(self, seconds: float) -> dict[str, Any]:
        started = time.time()
        time.sleep(seconds)
        return {"pid": os.getpid(), "slept": seconds, "started": started, "ended": time.time()}

    def count(self, n: int, delay: float = 0.0) -> Iterator[str]:
        for i in range(n):
            if delay:
                time.sleep(delay)
            yield f"chunk-{i}"

    def blob(self, total: int, size: int) -> Iterator[bytes]:
        sent = 0
        while sent < total:
            part = min(size, total - sent)
            yield b"x" * part
            sent += part

    async def acount(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def double(self, x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def unencodable(self) -> object:
        return object()

    def _secret(self) -> str:
        return "hidden"


class Model(DirtyApp):
    """A "big model": only one dirty worker loads it (class attribute)."""

    workers = 1

    def init(self) -> None:
        self.weights = [0.5] * 1000
        _record("Model")

    def predict(self, x: float) -> dict[str, Any]:
        return {"pid": os.getpid(), "y": sum(w * x for w in self.weights[:4])}


class Limited(DirtyApp):
    """Limited by the ``:N`` spec in the tests."""

    def where(self) -> int:
        return os.getpid()


class BadInit(DirtyApp):
    def init(self) -> None:
        raise RuntimeError("weights file missing")

    def go(self) -> int:
        return 1


class NotAnApp:
    """No __call__: instances cannot be called."""


def not_a_class() -> None:
    return None
