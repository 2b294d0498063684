"""Keepalive pings for a WebSocket (off unless ``WebSocketConfig.ping_interval`` is set):
a Ping every ``interval`` seconds, and ``on_timeout`` when one is not answered within
``timeout`` seconds (RFC 6455 §5.5.2: a Pong echoes its Ping's payload)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


class Keepalive:
    __slots__ = (
        "_interval",
        "_loop",
        "_on_timeout",
        "_payload",
        "_send_ping",
        "_timeout",
        "_timers",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        timeout: float | None,
        send_ping: Callable[[bytes], None],
        on_timeout: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._interval = interval
        self._timeout = timeout
        self._send_ping = send_ping
        self._on_timeout = on_timeout
        self._payload = b""
        # The next ping, and the deadline of the unanswered one.
        self._timers: list[asyncio.TimerHandle | None] = [None, None]

    def start(self) -> None:
        self._timers[0] = self._loop.call_later(self._interval, self._ping)

    def _ping(self) -> None:
        self._payload = os.urandom(4)
        self._send_ping(self._payload)
        if self._timeout and self._timers[1] is None:
            self._timers[1] = self._loop.call_later(self._timeout, self._timed_out)
        self._timers[0] = self._loop.call_later(self._interval, self._ping)

    def pong(self, payload: bytes) -> None:
        """A Pong arrived: the one for our last Ping clears its deadline."""
        deadline = self._timers[1]
        if deadline is not None and payload == self._payload:
            deadline.cancel()
            self._timers[1] = None

    def _timed_out(self) -> None:
        self._timers[1] = None
        self.stop()
        self._on_timeout()

    def stop(self) -> None:
        for index, timer in enumerate(self._timers):
            if timer is not None:
                timer.cancel()
                self._timers[index] = None
