"""``gunicorn.http.body`` as third-party code knows it: ``Body``, the type of ``wsgi.input``.

A face over :mod:`gunicorn.wsgi.input`, kept out of the protocol core.
``isinstance(environ["wsgi.input"], Body)`` holds; ``Body(reader)`` wraps any object with
a ``read(size)`` method returning ``b""`` at the end.
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Iterator
from typing import Any

from gunicorn.wsgi.input import WSGIInput

_BLOCK = 8192


class Body(metaclass=ABCMeta):  # noqa: B024 - ABCMeta for register(), not abstract
    """A file-like request body: ``read``, ``readline``, ``readlines`` and iteration."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self._input = WSGIInput(self._receive)

    def _receive(self) -> bytes:
        return bytes(self.reader.read(_BLOCK))

    def read(self, size: int | None = None) -> bytes:
        return self._input.read(-1 if size is None else size)

    def readline(self, size: int | None = None) -> bytes:
        return self._input.readline(-1 if size is None else size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._input.readlines(-1 if size is None else size)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._input)


Body.register(WSGIInput)

__all__ = ["Body"]
