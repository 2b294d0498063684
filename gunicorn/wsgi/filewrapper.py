"""``wsgi.file_wrapper``: a file response that drivers may send with ``sendfile()``."""

from __future__ import annotations

import os
import stat
from typing import Any, BinaryIO

DEFAULT_BLOCK_SIZE = 8192


class FileWrapper:
    """Wraps a binary file-like object as the response body.

    Iterating yields ``blksize`` blocks read from the file's current position. The
    old-style ``wrapper[i]`` protocol keeps working for code that relies on it.
    ``close()`` closes the file when it has a ``close`` method.
    """

    __slots__ = ("blksize", "filelike")

    def __init__(self, filelike: BinaryIO | Any, blksize: int = DEFAULT_BLOCK_SIZE) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if not data:
            raise StopIteration
        return bytes(data)

    def __getitem__(self, index: int) -> bytes:
        data = self.filelike.read(self.blksize)
        if not data:
            raise IndexError(index)
        return bytes(data)

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def fileno(self) -> int | None:
        """The descriptor ``sendfile()`` can read from, or None for non-file objects."""
        fileno = getattr(self.filelike, "fileno", None)
        if fileno is None:
            return None
        try:
            fd = fileno()
        except (OSError, ValueError, AttributeError):
            # io.BytesIO and friends raise UnsupportedOperation (an OSError/ValueError).
            return None
        if not isinstance(fd, int) or fd < 0:
            return None
        return fd

    def remaining(self, fd: int) -> tuple[int, int] | None:
        """(current offset, bytes from there to the end of the file), or None if the
        descriptor is not a regular, seekable file."""
        try:
            info = os.fstat(fd)
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        tell = getattr(self.filelike, "tell", None)
        if tell is not None:
            # A buffered file object may have read ahead of the descriptor.
            try:
                offset = tell()
            except (OSError, ValueError):
                return None
        return offset, max(info.st_size - offset, 0)
