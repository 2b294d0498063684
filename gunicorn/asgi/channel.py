"""What an ASGI cycle needs from the driver that owns the connection.

The asyncio driver (``gunicorn.drivers.aio``) gives each HTTP/1.1 connection one
``Channel``: the adapters in this package write bytes through it and apply back-pressure
with it, and never see a transport or a socket. Everything here is called on the event
loop's thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class Channel(Protocol):
    """A byte pipe to one client, owned by the driver."""

    loop: asyncio.AbstractEventLoop

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the client (never blocks; see ``drain``)."""

    async def drain(self) -> None:
        """Wait until the bytes queued so far fit under the write buffer's high-water
        mark; returns at once when the client is gone (check ``closed``)."""

    def pause_reading(self) -> None:
        """Stop reading from the client (its bytes wait in the kernel)."""

    def resume_reading(self) -> None:
        """Read from the client again."""

    def close(self) -> None:
        """Close once the queued bytes are written."""

    def abort(self) -> None:
        """Close now, dropping what is queued."""

    @property
    def closed(self) -> bool:
        """Whether the client is gone or the connection is closing."""

    def extra(self, name: str) -> Any:
        """Transport information (``peername``, ``sockname``, ``ssl_object``...)."""


class ByteSink(Protocol):
    """Where a WebSocket (after its handshake) gets the client's bytes: the driver calls
    these instead of feeding the HTTP/1.1 core once the connection switched."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> None: ...

    def connection_lost(self, exc: BaseException | None) -> None: ...
