"""``os.sendfile`` to a socket owned by an asyncio transport (asyncio's and uvloop's).

The transport keeps its descriptor registered for its own use; a duplicate of it is
watched for writability instead, so the wait works the same on both loops. The caller
makes sure the transport has nothing buffered first.
"""

from __future__ import annotations

import asyncio
import os


async def sendfile(loop: asyncio.AbstractEventLoop, sock_fd: int, file_fd: int, count: int) -> int:
    """Send ``count`` bytes of ``file_fd`` from its start; returns the bytes sent (fewer
    when the file is shorter). Raises ``OSError`` when the client is gone."""
    fd = os.dup(sock_fd)
    offset = 0
    try:
        while offset < count:
            try:
                sent = os.sendfile(fd, file_fd, offset, count - offset)
            except (BlockingIOError, InterruptedError):
                await _writable(loop, fd)
                continue
            if sent == 0:
                break  # the file ended early
            offset += sent
    finally:
        os.close(fd)
    return offset


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    waiter: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not waiter.done():
            waiter.set_result(None)

    loop.add_writer(fd, ready)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)
