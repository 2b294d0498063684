"""The client HTTP workers use to call dirty apps: blocking and asyncio.

``get_dirty_client()`` gives each thread (or greenlet, under gevent/eventlet monkey
patching) its own :class:`DirtyClient` with one connection to the dirty arbiter; a call
sends one request and waits for its answer, and a connection that timed out or was left
mid-stream is closed, so a late answer can never reach the next call.

``await get_dirty_client_async()`` gives each asyncio context its own client; the
clients of one event loop share one multiplexed connection (:mod:`gunicorn.dirty.channel`),
so concurrent requests of an ASGI worker run concurrently without a connection each.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from gunicorn.dirty import protocol
from gunicorn.dirty.channel import AsyncChannel, AsyncStream, close_shared_channel, shared_channel
from gunicorn.dirty.errors import DirtyConnectionError, DirtyError, DirtyTimeoutError

SOCKET_ENV = "GUNICORN_DIRTY_SOCKET"
_RECV_SIZE = 256 * 1024

_socket_path: str | None = None


def set_dirty_socket_path(path: str | None) -> None:
    """Use ``path`` as the dirty arbiter's socket (instead of ``$GUNICORN_DIRTY_SOCKET``)."""
    global _socket_path
    _socket_path = path


def get_dirty_socket_path() -> str:
    path = _socket_path or os.environ.get(SOCKET_ENV)
    if not path:
        raise DirtyConnectionError(
            "Dirty arbiter socket path is not set: enable dirty workers (dirty_workers and "
            f"dirty_apps) or call set_dirty_socket_path() / set ${SOCKET_ENV}"
        )
    return path


class DirtyClient:
    """Calls to the dirty apps: blocking on one connection, or asyncio (see the module)."""

    def __init__(self, socket_path: str, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        #: Upper bound for a whole stream (None: only ``timeout`` between chunks).
        self.stream_total_timeout: float | None = None
        self._sock: socket.socket | None = None
        self._reader = protocol.FrameReader()
        self._ready: list[tuple[int, int, bytes]] = []
        self._next_id = 0
        self._lock = threading.Lock()
        self._open_stream: DirtyStreamIterator | None = None
        #: Clients made by get_dirty_client_async() share their loop's channel.
        self._shared = False
        self._own_channel: AsyncChannel | None = None

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFFFFFFFFFF
        return self._next_id

    # -- blocking API -------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (calls do it on demand)."""
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout if self.timeout and self.timeout > 0 else None)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise DirtyConnectionError(
                f"Cannot connect to the dirty arbiter at {self.socket_path}: {exc.strerror or exc}",
                socket_path=self.socket_path,
            ) from None
        self._sock = sock
        self._reader = protocol.FrameReader()
        self._ready = []

    def _usable_socket(self) -> socket.socket:
        sock = self._sock
        if sock is not None and (self._open_stream is not None or self._stale(sock)):
            self._close_socket()
            sock = None
        if sock is None:
            self.connect()
            sock = self._sock
            assert sock is not None
        return sock

    @staticmethod
    def _stale(sock: socket.socket) -> bool:
        """The arbiter closed (or restarted) since the last call: readable while idle."""
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def execute(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``action`` of the dirty app ``app_path`` and return its result."""
        return self.roundtrip(
            lambda rid: protocol.encode_request(rid, app_path, action, args, kwargs),
            f"{app_path}.{action}",
        )

    def roundtrip(self, build: Callable[[int], bytes], what: str) -> Any:
        """Send the message ``build(request_id)`` and return the result of its answer."""
        with self._lock:
            request_id = self._new_id()
            message = build(request_id)
            sock = self._usable_socket()
            self._send(sock, message)
            msg_type, raw = self._receive(sock, request_id, what, self.timeout)
            return protocol.final_result(msg_type, raw)

    def stream(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> DirtyStreamIterator:
        """Iterate over the chunks an action yields (a generator or async generator)."""
        return DirtyStreamIterator(self, app_path, action, args, kwargs)

    def _send(self, sock: socket.socket, message: bytes) -> None:
        try:
            sock.sendall(message)
        except OSError as exc:
            self._close_socket()
            raise DirtyConnectionError(
                f"Lost the connection to the dirty arbiter while sending: {exc}",
                socket_path=self.socket_path,
            ) from None

    def _receive(
        self,
        sock: socket.socket,
        request_id: int,
        what: str,
        timeout: float | None,
        reported: float | None = None,
    ) -> tuple[int, bytes]:
        """The next message of ``request_id``, waiting at most ``timeout`` seconds."""
        ready = self._ready
        deadline = None
        while True:
            while ready:
                msg_type, rid, raw = ready.pop(0)
                if rid == request_id:
                    return msg_type, raw
            if timeout and timeout > 0:
                # The first wait uses the socket's timeout as it is (no system call to
                # change it) when it is the one wanted; later waits take what is left.
                now = time.monotonic()
                if deadline is None:
                    deadline = now + timeout
                    wait = timeout
                else:
                    wait = deadline - now
                    if wait <= 0:
                        self._timed_out(what, reported or timeout)
                if sock.gettimeout() != wait:
                    sock.settimeout(wait)
            elif sock.gettimeout() is not None:
                sock.settimeout(None)
            try:
                data = sock.recv(_RECV_SIZE)
            except TimeoutError:
                self._timed_out(what, reported or timeout)
            except OSError as exc:
                self._close_socket()
                raise DirtyConnectionError(
                    f"Lost the connection to the dirty arbiter during {what}: {exc}",
                    socket_path=self.socket_path,
                ) from None
            if not data:
                self._close_socket()
                raise DirtyConnectionError(
                    f"The dirty arbiter closed the connection during {what}",
                    socket_path=self.socket_path,
                )
            try:
                ready.extend(self._reader.feed(data))
            except DirtyError:
                self._close_socket()
                raise

    def _timed_out(self, what: str, timeout: float | None) -> None:
        self._close_socket()
        raise DirtyTimeoutError(f"Timed out after {timeout}s waiting for {what}", timeout=timeout)

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        self._open_stream = None
        self._ready = []
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        """Close the blocking connection (the next call opens a new one)."""
        self._close_socket()

    def __enter__(self) -> DirtyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- asyncio API --------------------------------------------------------------------

    async def _channel(self) -> AsyncChannel:
        if self._shared:
            return await shared_channel(self.socket_path)
        if self._own_channel is None or self._own_channel.closed:
            self._own_channel = await AsyncChannel.open(self.socket_path)
        return self._own_channel

    async def connect_async(self) -> None:
        await self._channel()

    async def execute_async(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``action`` of ``app_path`` without blocking the event loop."""
        message_args = (app_path, action, args, kwargs)
        channel = await self._channel()
        request_id, queue = channel.register()
        try:
            await channel.send(protocol.encode_request(request_id, *message_args))
            what = f"{app_path}.{action}"
            msg_type, raw = await AsyncChannel.receive(queue, what, self.timeout)
        finally:
            channel.unregister(request_id)
        return protocol.final_result(msg_type, raw)

    def stream_async(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> AsyncStream:
        """Async-iterate over the chunks an action yields."""
        return AsyncStream(self, app_path, action, args, kwargs)

    async def close_async(self) -> None:
        """Close this client's own asyncio connection (a shared one stays for the others)."""
        channel, self._own_channel = self._own_channel, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> DirtyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()


class DirtyStreamIterator(Iterator[Any]):
    """The chunks of one streamed call; the request is sent on the first ``next()``."""

    def __init__(
        self,
        client: DirtyClient,
        app_path: str,
        action: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._client = client
        self._what = f"{app_path}.{action}"
        self._request = (app_path, action, args, kwargs)
        self._request_id = 0
        self._started = False
        self._deadline: float | None = None
        self._done = False

    def __iter__(self) -> DirtyStreamIterator:
        return self

    def __next__(self) -> Any:
        client = self._client
        if self._done:
            raise StopIteration
        with client._lock:
            if not self._started:
                self._started = True
                self._request_id = client._new_id()
                message = protocol.encode_request(self._request_id, *self._request)
                sock = client._usable_socket()
                client._send(sock, message)
                client._open_stream = self
                if client.stream_total_timeout:
                    self._deadline = time.monotonic() + client.stream_total_timeout
            elif client._open_stream is not self or client._sock is None:
                self._done = True
                raise DirtyConnectionError("The stream was interrupted by another call")
            current = client._sock
            assert current is not None
            timeout = client.timeout or None
            reported = timeout
            if self._deadline is not None:
                left = self._deadline - time.monotonic()
                if timeout is None or left < timeout:
                    timeout, reported = max(left, 1e-6), client.stream_total_timeout
            try:
                msg_type, raw = client._receive(
                    current, self._request_id, self._what, timeout, reported
                )
            except DirtyError:
                self._done = True
                raise
            if msg_type == protocol.MSG_TYPE_CHUNK:
                return protocol.chunk_data(raw)
            self._done = True
            client._open_stream = None
            if msg_type == protocol.MSG_TYPE_END:
                raise StopIteration
            # An action that returned a plain value streams it as one chunk.
            return protocol.final_result(msg_type, raw)

    def close(self) -> None:
        """Abandon the stream: its connection is dropped before the next call."""
        self._done = True


# -- per-thread and per-context clients ---------------------------------------------------

_local: threading.local | None = None
_async_client: contextvars.ContextVar[DirtyClient | None] = contextvars.ContextVar(
    "gunicorn_dirty_client", default=None
)


def _thread_local() -> threading.local:
    """Created on first use, so that it is greenlet-local once gevent/eventlet patched
    ``threading`` (the module itself may have been imported before, by the master)."""
    global _local
    if _local is None:
        _local = threading.local()
    return _local


def get_dirty_client(timeout: float = 30.0) -> DirtyClient:
    """This thread's client (created on first use)."""
    local = _thread_local()
    client: DirtyClient | None = getattr(local, "client", None)
    if client is None:
        client = DirtyClient(get_dirty_socket_path(), timeout=timeout)
        local.client = client
    else:
        client.timeout = timeout
    return client


async def get_dirty_client_async(timeout: float = 30.0) -> DirtyClient:
    """This asyncio context's client (created on first use)."""
    client = _async_client.get()
    if client is None:
        client = DirtyClient(get_dirty_socket_path(), timeout=timeout)
        client._shared = True
        _async_client.set(client)
    else:
        client.timeout = timeout
    return client


def close_dirty_client() -> None:
    """Close and forget this thread's client."""
    local = _thread_local()
    client: DirtyClient | None = getattr(local, "client", None)
    if client is not None:
        local.client = None
        client.close()


async def close_dirty_client_async() -> None:
    """Forget this context's client and close the loop's shared connection."""
    client = _async_client.get()
    if client is not None:
        _async_client.set(None)
        await close_shared_channel(client.socket_path)
