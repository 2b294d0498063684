"""What a WebSocket's application has yet to ``receive()``, and the read back-pressure
that goes with it: reading from the client pauses while too much waits unread."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import MutableMapping
from typing import Any

from gunicorn.asgi.channel import Channel

Message = MutableMapping[str, Any]

# Reading pauses while this many messages (or bytes) wait for the application, and
# resumes once it has taken half of them.
QUEUE_MESSAGES = 16
QUEUE_BYTES = 1 << 20


class Inbox:
    """Messages in arrival order, then the disconnect message for every later call."""

    __slots__ = ("_bytes", "_channel", "_detached", "_loop", "_paused", "_queue", "_waiter", "end")

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._loop = channel.loop
        self._queue: deque[Message] = deque()
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._detached = False
        #: The ``websocket.disconnect`` message, once the session is over.
        self.end: Message | None = None

    async def get(self) -> Message:
        while True:
            queue = self._queue
            if queue:
                message = queue.popleft()
                self._bytes -= _size(message)
                if self._paused and len(queue) <= QUEUE_MESSAGES // 2 and self._bytes < QUEUE_BYTES:
                    self.resume()
                return message
            if self.end is not None:
                return self.end
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def put(self, message: Message) -> None:
        self._queue.append(message)
        self._bytes += _size(message)
        if len(self._queue) >= QUEUE_MESSAGES or self._bytes >= QUEUE_BYTES:
            self.pause()
        self._wake()

    def finish(self, code: int, reason: str = "") -> None:
        """The session is over with ``code``: queued messages first, then this (once)."""
        if self.end is None:
            self.end = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self._wake()

    def pause(self) -> None:
        """Stop reading from the client (also used for bytes sent before the handshake)."""
        if not self._paused and not self._detached:
            self._paused = True
            self._channel.pause_reading()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            if not self._detached:
                self._channel.resume_reading()

    def detach(self) -> None:
        """The connection is closing: leave its reading alone from now on."""
        self._detached = True

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _size(message: Message) -> int:
    data = message.get("bytes")
    if data is None:
        data = message.get("text")
    return len(data) if data is not None else 0
