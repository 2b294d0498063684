"""The asyncio driver's graceful stop, in process: a connection the loop accepted just
before the stop began is held for its request and answered, not closed unanswered.

asyncio calls ``connection_made`` a loop turn or two after the accept; a TERM handled in
between must still count that connection (the worker waits for it) and answer its request
with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from gunicorn.config import Config
from gunicorn.drivers.aio_server import AsyncServer
from gunicorn.glogging import Logger
from gunicorn.lifecycle.options import worker_options


class _Worker:
    """What the driver asks of its worker."""

    wsgi_multithread = False
    supports_http2 = False

    def __init__(self) -> None:
        self.cfg = Config()
        self.log = Logger(self.cfg)
        self.alive = True
        self.requests = 0

    def count_request(self) -> None:
        self.requests += 1


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def _late_connection_is_answered() -> bytes:
    loop = asyncio.get_running_loop()
    worker = _Worker()
    server = AsyncServer(worker, _hello, worker_options(worker), loop, state=None)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    await server.start([listener])
    try:
        # The graceful stop has begun (as on TERM) and this connection's connection_made
        # comes after it: the listener is left open here so that it can be accepted.
        worker.alive = False
        server.shutdown_connections()
        reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        await _until(lambda: server.connections)
        assert server.active, "a connection accepted as the stop began is not waited for"
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return reply
    finally:
        server.stop_accepting()  # closes the listening descriptor
        server.abort_all()
        listener.detach()


def test_connection_accepted_as_the_stop_begins_is_answered() -> None:
    reply = asyncio.run(_late_connection_is_answered())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in head.lower()
    assert body == b"5\r\nhello\r\n0\r\n\r\n"  # chunked: no Content-Length given
