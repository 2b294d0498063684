"""``wsgi.errors``: text written by applications goes to the error log's streams."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO


class WSGIErrors:
    """A text stream writing to every stream handler of ``logger`` (stderr if none).

    The handlers are looked up at each write, so log files reopened on USR1 are used.
    """

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger

    def _streams(self) -> list[TextIO]:
        streams: list[TextIO] = []
        if self._logger is not None:
            for handler in self._logger.handlers:
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.StreamHandler) and stream is not None:
                    streams.append(stream)
        return streams or [sys.stderr]

    def write(self, data: str) -> None:
        for stream in self._streams():
            stream.write(data)
            stream.flush()

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        for stream in self._streams():
            stream.flush()
