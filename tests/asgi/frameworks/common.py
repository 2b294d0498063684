"""What every framework app in this directory shares: the route contract, written once.

Each ``<framework>_app`` module serves the same routes (checked by
``tests/asgi/test_frameworks.py``):

=========================  ===================================================================
``GET /json``              ``{"framework": NAME, "message": "hello"}`` (HEAD: same head, no body)
``GET /items/{id}``        ``{"item_id": id}`` (an int path parameter)
``GET /query?q=&n=``       ``{"q": q, "n": n}``
``POST /echo/json``        ``{"received": <the JSON body>}``
``POST /echo/form``        ``{"fields": {...}}`` (application/x-www-form-urlencoded)
``POST /echo/body``        the body, as ``application/octet-stream``
``POST /upload``           ``{"size": n, "sha256": hex}``, the body read piece by piece
``GET /stream?n=``         ``n`` pieces (``stream_piece``), each sent on its own
``GET /endless``           pieces until the client leaves (then ``endless stream stopped``)
``GET /file``              this file (``common.py``), served as a file response
``POST /tasks/{key}``      schedules a background task; answers before it runs
``GET /tasks/{key}``       ``{"done": bool}``: whether that task ran
``GET /state``             ``{"token": ..., "pid": ...}``: a value set at lifespan startup
``GET /error``             raises: the framework answers 500
``WS /ws``                 echoes text as text and bytes as bytes until the client closes
=========================  ===================================================================

Django also has ``GET /slow``, which waits until it is cancelled (``request_finished``
and the view's cancellation are logged). Lifespan startup and shutdown print an
``[app] <name> lifespan ...`` line (the server log).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

FILE = Path(__file__).resolve()
_done: set[str] = set()
_running: set[asyncio.Task[None]] = set()


def say(name: str, what: str) -> None:
    """One line in the server's log (the worker's stdout goes there)."""
    print(f"[app] {name} {what} pid={os.getpid()}", flush=True)


def token(name: str) -> str:
    """The value lifespan startup stores and ``GET /state`` returns."""
    return f"{name}-ready"


def stream_piece(index: int) -> bytes:
    return f"piece {index:05d} ".encode() + b"." * 200 + b"\n"


async def stream_pieces(count: int) -> AsyncIterator[bytes]:
    for index in range(count):
        yield stream_piece(index)
        await asyncio.sleep(0)


async def endless_pieces(name: str) -> AsyncIterator[bytes]:
    say(name, "endless stream started")
    try:
        index = 0
        while True:
            yield stream_piece(index)
            index += 1
            await asyncio.sleep(0.005)
    finally:
        say(name, "endless stream stopped")


async def background_job(key: str) -> None:
    await asyncio.sleep(0.01)
    _done.add(key)


def schedule(key: str) -> None:
    """For frameworks without background tasks of their own (Django)."""
    task = asyncio.get_running_loop().create_task(background_job(key))
    _running.add(task)
    task.add_done_callback(_running.discard)


def task_done(key: str) -> bool:
    return key in _done


class Digest:
    """Size and SHA-256 of a body read in pieces."""

    def __init__(self) -> None:
        self.size = 0
        self._hash = hashlib.sha256()

    def update(self, piece: bytes) -> None:
        self.size += len(piece)
        self._hash.update(piece)

    def result(self) -> dict[str, object]:
        return {"size": self.size, "sha256": self._hash.hexdigest()}


def fail() -> None:
    raise RuntimeError("the /error route fails on purpose")
