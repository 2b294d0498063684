"""One asyncio connection to the dirty arbiter, shared by many concurrent calls.

Each call registers its request id and waits for the messages of that id; a reader
task hands every message to its waiter. A call that times out unregisters, so its
late answer is dropped (ids are never reused on a connection). When the connection
breaks, every waiting call gets a DirtyConnectionError and the next call reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from gunicorn.dirty import protocol
from gunicorn.dirty.errors import DirtyConnectionError, DirtyError, DirtyTimeoutError

Message = tuple[int, bytes]


class AsyncChannel:
    """A multiplexed connection (create it with :meth:`open`)."""

    def __init__(
        self, socket_path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.socket_path = socket_path
        self._reader = reader
        self._writer = writer
        self._waiters: dict[int, asyncio.Queue[Message | BaseException]] = {}
        self._next_id = 0
        self.closed = False
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, socket_path: str) -> AsyncChannel:
        try:
            reader, writer = await asyncio.open_unix_connection(socket_path)
        except OSError as exc:
            raise DirtyConnectionError(
                f"Cannot connect to the dirty arbiter at {socket_path}: {exc.strerror or exc}",
                socket_path=socket_path,
            ) from None
        return cls(socket_path, reader, writer)

    async def _read_loop(self) -> None:
        reader = self._reader
        error: BaseException
        try:
            while True:
                header = await reader.readexactly(protocol.HEADER_SIZE)
                msg_type, length, request_id = protocol.parse_header(header)
                raw = header + await reader.readexactly(length) if length else header
                queue = self._waiters.get(request_id)
                if queue is not None:
                    queue.put_nowait((msg_type, raw))
        except asyncio.IncompleteReadError:
            error = DirtyConnectionError(
                "The dirty arbiter closed the connection", socket_path=self.socket_path
            )
        except OSError as exc:
            error = DirtyConnectionError(
                f"Lost the connection to the dirty arbiter: {exc}", socket_path=self.socket_path
            )
        except DirtyError as exc:
            error = exc
        except asyncio.CancelledError:
            error = DirtyConnectionError("Connection closed", socket_path=self.socket_path)
        self.closed = True
        for queue in self._waiters.values():
            queue.put_nowait(error)
        self._writer.close()

    def register(self) -> tuple[int, asyncio.Queue[Message | BaseException]]:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFFFFFFFFFF
        queue: asyncio.Queue[Message | BaseException] = asyncio.Queue()
        self._waiters[self._next_id] = queue
        return self._next_id, queue

    def unregister(self, request_id: int) -> None:
        self._waiters.pop(request_id, None)

    async def send(self, message: bytes) -> None:
        if self.closed:
            raise DirtyConnectionError("Connection closed", socket_path=self.socket_path)
        try:
            self._writer.write(message)
            await self._writer.drain()
        except OSError as exc:
            raise DirtyConnectionError(
                f"Lost the connection to the dirty arbiter while sending: {exc}",
                socket_path=self.socket_path,
            ) from None

    @staticmethod
    async def receive(
        queue: asyncio.Queue[Message | BaseException], what: str, timeout: float | None
    ) -> Message:
        """The next message of a call, or the error that ended the connection."""
        try:
            if timeout and timeout > 0:
                item = await asyncio.wait_for(queue.get(), timeout)
            else:
                item = await queue.get()
        except asyncio.TimeoutError:
            raise DirtyTimeoutError(
                f"Timed out after {timeout}s waiting for {what}", timeout=timeout
            ) from None
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(OSError, RuntimeError):
            await self._writer.wait_closed()


#: The channel each event loop shares among its ``get_dirty_client_async()`` clients.
_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncChannel]] = (
    weakref.WeakKeyDictionary()
)


#: One lock per loop and path: tasks that ask at the same time share one new channel.
_opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


async def shared_channel(socket_path: str) -> AsyncChannel:
    loop = asyncio.get_running_loop()
    channels = _shared.setdefault(loop, {})
    channel = channels.get(socket_path)
    if channel is not None and not channel.closed:
        return channel
    lock = _opening.setdefault(loop, {}).setdefault(socket_path, asyncio.Lock())
    async with lock:
        channel = channels.get(socket_path)
        if channel is None or channel.closed:
            channel = await AsyncChannel.open(socket_path)
            channels[socket_path] = channel
    return channel


async def close_shared_channel(socket_path: str) -> None:
    channels = _shared.get(asyncio.get_running_loop(), {})
    channel = channels.pop(socket_path, None)
    if channel is not None:
        await channel.close()


class AsyncStream(AsyncIterator[Any]):
    """The chunks of one streamed call, for ``async for``."""

    def __init__(self, client: Any, app_path: str, action: str, args: Any, kwargs: Any) -> None:
        self._client = client
        self._request = (app_path, action, args, kwargs)
        self._what = f"{app_path}.{action}"
        self._channel: AsyncChannel | None = None
        self._request_id = 0
        self._queue: asyncio.Queue[Message | BaseException] | None = None
        self._deadline: float | None = None
        self._done = False

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        loop = asyncio.get_running_loop()
        client = self._client
        if self._queue is None:
            app_path, action, args, kwargs = self._request
            channel = await client._channel()
            self._request_id, self._queue = channel.register()
            self._channel = channel
            if client.stream_total_timeout:
                self._deadline = loop.time() + client.stream_total_timeout
            try:
                await channel.send(
                    protocol.encode_request(self._request_id, app_path, action, args, kwargs)
                )
            except BaseException:
                self._finish()
                raise
        timeout = client.timeout or None
        reported = timeout
        if self._deadline is not None:
            left = self._deadline - loop.time()
            if timeout is None or left < timeout:
                timeout, reported = max(left, 1e-6), client.stream_total_timeout
        try:
            msg_type, raw = await AsyncChannel.receive(self._queue, self._what, timeout)
        except DirtyTimeoutError:
            self._finish()
            raise DirtyTimeoutError(
                f"Timed out after {reported}s waiting for {self._what}", timeout=reported
            ) from None
        except BaseException:
            self._finish()
            raise
        if msg_type == protocol.MSG_TYPE_CHUNK:
            return protocol.chunk_data(raw)
        self._finish()
        if msg_type == protocol.MSG_TYPE_END:
            raise StopAsyncIteration
        return protocol.final_result(msg_type, raw)

    def _finish(self) -> None:
        self._done = True
        if self._channel is not None:
            self._channel.unregister(self._request_id)

    async def aclose(self) -> None:
        """Abandon the stream: its remaining chunks are dropped."""
        self._finish()
