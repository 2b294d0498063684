"""The dirty arbiter's two kinds of connections, as asyncio protocols.

A :class:`ClientLink` is one client (an HTTP worker's ``DirtyClient``) on
``arbiter.sock``; a :class:`WorkerLink` is the arbiter's connection to one dirty worker.
Both only split the byte stream into messages and hand them to the arbiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from gunicorn.dirty import protocol
from gunicorn.dirty.errors import DirtyProtocolError

#: Room for a few large chunks in flight towards a client.
SEND_BUFFER = 1024 * 1024


class _Link(asyncio.Protocol):
    def __init__(self, arbiter: Any) -> None:
        self.arbiter = arbiter
        self.reader = protocol.FrameReader()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def write(self, data: bytes | bytearray) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def fileno(self) -> int:
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        return sock.fileno() if sock is not None else -1


class ClientLink(_Link):
    """One client connection on ``arbiter.sock``."""

    def __init__(self, arbiter: Any) -> None:
        super().__init__(arbiter)
        #: Arbiter ids of this client's calls in flight.
        self.tasks: set[int] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.arbiter.clients.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
        except DirtyProtocolError as exc:
            self.arbiter.log.error("Dirty arbiter: bad message from a client, closing it: %s", exc)
            self.close()
            return
        handle = self.arbiter.handle_client_message
        for msg_type, request_id, raw in frames:
            handle(self, msg_type, request_id, raw)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.arbiter.client_gone(self)


class WorkerLink(_Link):
    """The arbiter's connection to one dirty worker."""

    def __init__(self, arbiter: Any, worker: Any) -> None:
        super().__init__(arbiter)
        self.worker = worker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.worker.link = self

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
        except DirtyProtocolError as exc:
            self.arbiter.log.error(
                "Dirty arbiter: bad message from dirty worker %s: %s", self.worker.pid, exc
            )
            self.close()
            return
        handle = self.arbiter.handle_worker_message
        for msg_type, request_id, raw in frames:
            handle(self.worker, msg_type, request_id, raw)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.arbiter.worker_link_lost(self.worker)
