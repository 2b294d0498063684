"""Flood guards for one HTTP/2 connection (hostile inputs F1-F10).

Each guard is a counter with a budget taken from ``Limits``; ``FloodGuard`` methods return
True once a budget is exceeded, and the connection then ends with
GOAWAY(ENHANCE_YOUR_CALM). Rates are counted over fixed windows of
``Limits.h2_flood_window`` seconds of the injected clock; ratios are counted over the
life of the connection.

- resets: RST_STREAM from the peer and resets it caused (malformed requests, refused
  streams, frames on closed streams); ``h2_max_resets_per_window`` per window.
- control frames: PING, SETTINGS and their ACKs; ``h2_max_control_frames_per_window``
  per window, and ``h2_max_queued_control_frames`` answers not yet taken by
  ``data_to_send``.
- empty frames: DATA without payload nor END_STREAM, HEADERS without fields;
  ``h2_max_empty_frames_per_window`` per window.
- PRIORITY frames: ``h2_max_priority_frames_per_stream`` x (streams opened + 1).
- WINDOW_UPDATE frames: ``WINDOW_UPDATE_ALLOWANCE`` + 2 x streams opened +
  ``h2_max_window_updates_per_data_frame`` x DATA frames sent.
"""

from __future__ import annotations

from collections.abc import Callable

from gunicorn.http.limits import Limits

# WINDOW_UPDATE frames a peer may send before any ratio applies (it may open its
# windows wide at the start, once for the connection and once per stream).
WINDOW_UPDATE_ALLOWANCE = 100


class RateCounter:
    """Events counted over fixed windows of ``length`` seconds; over budget past ``limit``."""

    __slots__ = ("_count", "_length", "_limit", "_start")

    def __init__(self, limit: int, length: float) -> None:
        self._limit = limit
        self._length = length
        self._start = float("-inf")
        self._count = 0

    def hit(self, now: float) -> bool:
        """Count one event at time ``now``; True when the window's budget is exceeded."""
        if now - self._start >= self._length or now < self._start:
            self._start = now
            self._count = 0
        self._count += 1
        return self._count > self._limit


class FloodGuard:
    """The abuse counters of one connection. Every method that counts a frame returns
    True when the connection must end."""

    __slots__ = (
        "_clock",
        "_control",
        "_data_frames",
        "_empty",
        "_limits",
        "_priority",
        "_queued_answers",
        "_resets",
        "_streams",
        "_window_updates",
    )

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self._limits = limits
        self._clock = clock
        window = float(limits.h2_flood_window)
        self._resets = RateCounter(limits.h2_max_resets_per_window, window)
        self._control = RateCounter(limits.h2_max_control_frames_per_window, window)
        self._empty = RateCounter(limits.h2_max_empty_frames_per_window, window)
        self._queued_answers = 0
        self._streams = 0
        self._priority = 0
        self._window_updates = 0
        self._data_frames = 0

    def stream_opened(self) -> None:
        self._streams += 1

    def data_frames_sent(self, count: int) -> None:
        self._data_frames += count

    def reset(self) -> bool:
        """A stream was reset by the peer or because of it."""
        return self._resets.hit(self._clock())

    def control_frame(self, answered: bool) -> bool:
        """A PING or SETTINGS frame; ``answered`` when it queues an ACK."""
        if answered:
            self._queued_answers += 1
            if self._queued_answers > self._limits.h2_max_queued_control_frames:
                return True
        return self._control.hit(self._clock())

    def answers_taken(self) -> None:
        """``data_to_send`` handed the queued answers to the driver."""
        self._queued_answers = 0

    def empty_frame(self) -> bool:
        return self._empty.hit(self._clock())

    def priority_frame(self) -> bool:
        self._priority += 1
        return self._priority > self._limits.h2_max_priority_frames_per_stream * (self._streams + 1)

    def window_update(self) -> bool:
        self._window_updates += 1
        budget = (
            WINDOW_UPDATE_ALLOWANCE
            + 2 * self._streams
            + self._limits.h2_max_window_updates_per_data_frame * self._data_frames
        )
        return self._window_updates > budget
