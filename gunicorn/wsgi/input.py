"""``wsgi.input``: a request body read on demand from the protocol core."""

from __future__ import annotations

from collections.abc import Callable, Iterator

Receive = Callable[[], bytes]

_EMPTY = b""


class WSGIInput:
    """A file-like body: ``read``, ``readline``, ``readlines`` and iteration.

    ``receive`` returns the next piece of the body, ``b""`` once it is complete. It is
    not called before the application asks for data, so ``100 Continue`` (sent by
    ``on_first_read``) goes out only when the body is really wanted. Nothing is read
    ahead beyond the piece the core returned, so large bodies are never held whole
    unless the application asks for them whole.
    """

    __slots__ = ("_buffer", "_done", "_on_first_read", "_pos", "_receive", "error")

    def __init__(
        self,
        receive: Receive,
        on_first_read: Callable[[], None] | None = None,
        *,
        empty: bool = False,
    ) -> None:
        self._receive = receive
        self._on_first_read = on_first_read
        self._buffer = _EMPTY
        self._pos = 0
        self._done = empty
        # The exception ``receive`` raised (a broken body, a lost client), kept so the
        # server can answer for it even when the application swallowed it.
        self.error: BaseException | None = None

    def _fill(self) -> bool:
        """Fetch the next piece into the buffer; False at the end of the body."""
        if self._done:
            return False
        if self._on_first_read is not None:
            on_first_read, self._on_first_read = self._on_first_read, None
            on_first_read()
        try:
            while True:
                data = self._receive()
                if not data:
                    self._done = True
                    return False
                if self._pos < len(self._buffer):
                    self._buffer = self._buffer[self._pos :] + data
                else:
                    self._buffer = data
                self._pos = 0
                return True
        except BaseException as exc:
            self.error = exc
            self._done = True
            raise

    def _available(self) -> int:
        return len(self._buffer) - self._pos

    def _take(self, size: int) -> bytes:
        start = self._pos
        end = start + size
        self._pos = end
        if start == 0 and end >= len(self._buffer):
            data = self._buffer
            self._buffer = _EMPTY
            self._pos = 0
            return data
        return self._buffer[start:end]

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` is None or negative)."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(self._available())
        if size == 0:
            return _EMPTY
        while self._available() < size and self._fill():
            pass
        return self._take(min(size, self._available()))

    def readline(self, size: int | None = -1) -> bytes:
        """One line including its ``\\n``, at most ``size`` bytes when ``size`` >= 0."""
        if size == 0:
            return _EMPTY
        limit = size if size is not None and size > 0 else None
        scanned = self._pos
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                length = end + 1 - self._pos
                if limit is not None:
                    length = min(length, limit)
                return self._take(length)
            if limit is not None and self._available() >= limit:
                return self._take(limit)
            scanned = len(self._buffer)
            before = self._pos
            if not self._fill():
                return self._take(self._available())
            # _fill moved the unread bytes to the front of the buffer.
            scanned -= before

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """The remaining lines; stops once ``hint`` bytes were collected when positive."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    @property
    def complete(self) -> bool:
        """Whether the whole body was received (or there was none)."""
        return self._done and self.error is None

    @property
    def started(self) -> bool:
        """Whether the application asked for any body bytes."""
        return self._on_first_read is None
