"""Request metrics that workers write and the master adds up, without locks or system calls.

Each worker gets a block of anonymous shared memory (:class:`WorkerMetrics`), made by the
master before the fork, so both processes see the same pages. The block is cut into
*regions* of 64-bit counters; every thread that records takes a region of its own (kept in a
thread-local, handed back when the thread ends), so each counter has one writer and a plain
``+=`` is enough. The master only reads: it sums the regions of the live workers, and when it
reaps a worker it folds that worker's counters into :class:`MetricsRegistry` before
releasing the block, so totals survive workers that crash, are killed or are replaced.

Gauges are differences of two counters (started - finished, opened - closed) taken over the
live workers only, so a worker that dies in the middle of a request does not leave a phantom
request in flight.

What a worker calls (``worker.metrics``, built by ``gunicorn.workers.base.Worker``):

* ``request_started(http2)`` when a request cycle begins;
* ``record_request(method, status, duration, received, sent, http2)`` when it ends;
* ``connection_opened()`` / ``connection_closed()`` around each accepted connection.
"""

from __future__ import annotations

import mmap
from _thread import _local as _ThreadLocal  # the real ones, even under gevent/eventlet patching
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

#: Methods counted by name; anything else is counted as "other".
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
#: Status classes; a status outside 100-599 is "other".
STATUS_CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")
#: Upper bounds (seconds) of the request duration histogram (prometheus_client's defaults).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: Why a worker was replaced.
RESTART_REASONS = ("timeout", "max_requests", "crash", "reload", "killed")

# Counter layout of one region (64-bit signed integers).
STARTED = 0
FINISHED = 1  # not written: totals() fills it in from the histogram
CONN_OPENED = 2
CONN_CLOSED = 3
H2_STARTED = 4
H2_FINISHED = 5
BYTES_IN = 6
BYTES_OUT = 7
DURATION_US = 8
REQUESTS = 9  # METHODS x STATUS_CLASSES counters, method-major
HISTOGRAM = REQUESTS + len(METHODS) * len(STATUS_CLASSES)  # len(BUCKETS) + 1 (+Inf)
FIELDS = HISTOGRAM + len(BUCKETS) + 1

# The block starts with a header of 8 counters written by the worker as a whole.
_HEADER = 8
_EXIT_REASON = 0  # 0: none, else 1 + index in RESTART_REASONS
# Regions are rounded to 64 bytes so that two threads never write to one cache line.
_REGION = (FIELDS + 7) // 8 * 8
_MAX_REGIONS = 1024

_CLASSES = len(STATUS_CLASSES)
# Where each method's row of status-class counters starts (str and bytes spellings).
_ROW: dict[Any, int] = {}
for _i, _name in enumerate(METHODS[:-1]):
    _ROW[_name] = _ROW[_name.encode("ascii")] = REQUESTS + _i * _CLASSES
_OTHER_ROW = REQUESTS + (len(METHODS) - 1) * _CLASSES


class _Claim:
    """A region held by one thread; given back when the thread (and its locals) end."""

    __slots__ = ("base", "free")

    def __init__(self, base: int, free: list[int]) -> None:
        self.base = base
        self.free = free

    def __del__(self) -> None:
        self.free.append(self.base)


class WorkerMetrics:
    """One worker's counters in shared memory. Create it in the master, before the fork."""

    def __init__(self, threads: int = 1) -> None:
        self.regions = max(2, min(_MAX_REGIONS, 3 * int(threads) + 4))
        self._mm: mmap.mmap | None = mmap.mmap(-1, 8 * (_HEADER + self.regions * _REGION))
        self._view = memoryview(self._mm).cast("q")
        self._local = _ThreadLocal()
        # Regions not held by a thread; the last one is shared once all are taken.
        self._free = [_HEADER + i * _REGION for i in reversed(range(self.regions))]

    # -- worker side (hot path) -------------------------------------------------------------

    def _claim(self) -> memoryview:
        """The calling thread's region (a view of its counters), claimed on first use."""
        free = self._free
        try:
            base = free.pop()
        except IndexError:
            base = _HEADER + (self.regions - 1) * _REGION  # more threads than regions
        else:
            self._local.claim = _Claim(base, free)
        region = self._view[base : base + FIELDS]
        self._local.region = region
        return region

    def request_started(self, http2: bool = False) -> None:
        """A request cycle begins (counts it in flight)."""
        try:
            region = self._local.region
        except AttributeError:
            region = self._claim()
        region[STARTED] += 1
        if http2:
            region[H2_STARTED] += 1

    def record_request(
        self,
        method: str | bytes,
        status: int,
        duration: float,
        received: int = 0,
        sent: int = 0,
        http2: bool = False,
    ) -> None:
        """A request cycle ended: ``status`` answered after ``duration`` seconds, with
        ``received`` request body bytes read and ``sent`` response body bytes written."""
        try:
            region = self._local.region
        except AttributeError:
            region = self._claim()
        # The finished count is the sum of the histogram's buckets (see totals()).
        region[_ROW.get(method, _OTHER_ROW) + (status // 100 if 100 <= status < 600 else 0)] += 1
        region[HISTOGRAM + bisect_left(BUCKETS, duration)] += 1
        region[DURATION_US] += int(duration * 1_000_000)
        if sent:
            region[BYTES_OUT] += sent
        if received:
            region[BYTES_IN] += received
        if http2:
            region[H2_FINISHED] += 1

    def connection_opened(self) -> None:
        try:
            region = self._local.region
        except AttributeError:
            region = self._claim()
        region[CONN_OPENED] += 1

    def connection_closed(self) -> None:
        try:
            region = self._local.region
        except AttributeError:
            region = self._claim()
        region[CONN_CLOSED] += 1

    def exiting_because(self, reason: str) -> None:
        """Tell the master why this worker is about to exit on its own (a RESTART_REASON)."""
        self._view[_EXIT_REASON] = 1 + RESTART_REASONS.index(reason)

    # -- master side -------------------------------------------------------------------------

    def totals(self) -> list[int]:
        """Every counter summed over the regions (a snapshot; writers are not stopped)."""
        view = self._view
        sums = [0] * FIELDS
        for r in range(self.regions):
            base = _HEADER + r * _REGION
            for i, value in enumerate(view[base : base + FIELDS].tolist()):
                sums[i] += value
        sums[FINISHED] = sum(sums[HISTOGRAM:FIELDS])
        return sums

    def exit_reason(self) -> str | None:
        code = self._view[_EXIT_REASON]
        return RESTART_REASONS[code - 1] if 0 < code <= len(RESTART_REASONS) else None

    def close(self) -> None:
        """Release the shared memory (master, once the worker is gone)."""
        if self._mm is None:
            return
        mm, self._mm = self._mm, None
        self._local = _ThreadLocal()  # this thread's region view, if it recorded
        try:
            self._view.release()
            mm.close()
        except BufferError:
            pass  # another thread still holds a region view: freed with the last one

    @property
    def closed(self) -> bool:
        return self._mm is None


class NullMetrics:
    """Stands in for :class:`WorkerMetrics` where a worker has none: records nothing."""

    def request_started(self, http2: bool = False) -> None:
        pass

    def record_request(
        self,
        method: str | bytes,
        status: int,
        duration: float,
        received: int = 0,
        sent: int = 0,
        http2: bool = False,
    ) -> None:
        pass

    def connection_opened(self) -> None:
        pass

    def connection_closed(self) -> None:
        pass

    def exiting_because(self, reason: str) -> None:
        pass


NULL = NullMetrics()


def metrics_of(worker: Any) -> WorkerMetrics | NullMetrics:
    """``worker.metrics``, or a recorder that does nothing for a worker without one."""
    metrics = getattr(worker, "metrics", None)
    return metrics if metrics is not None else NULL


class MetricsRegistry:
    """The master's view: totals of workers that are gone, restart counts, and snapshots."""

    def __init__(self) -> None:
        self.retired = [0] * FIELDS
        self.restarts = dict.fromkeys(RESTART_REASONS, 0)

    def worker_gone(self, metrics: WorkerMetrics | None, reason: str | None) -> None:
        """Fold a reaped worker's counters in, count its restart, release its memory."""
        if reason is not None:
            self.restarts[reason] += 1
        if metrics is None or metrics.closed:
            return
        for i, value in enumerate(metrics.totals()):
            self.retired[i] += value
        metrics.close()

    def snapshot(self, live: Iterable[WorkerMetrics], listen_queue: list[dict[str, Any]]) -> Any:
        """Everything as plain data (the JSON of ``gunicornc show metrics``)."""
        counters = list(self.retired)
        in_flight = connections = streams = busy = idle = 0
        for metrics in live:
            if metrics.closed:
                continue
            totals = metrics.totals()
            for i, value in enumerate(totals):
                counters[i] += value
            running = totals[STARTED] - totals[FINISHED]
            in_flight += running
            connections += totals[CONN_OPENED] - totals[CONN_CLOSED]
            streams += totals[H2_STARTED] - totals[H2_FINISHED]
            if running > 0:
                busy += 1
            else:
                idle += 1
        requests = {
            method: {
                cls: counters[REQUESTS + m * _CLASSES + c]
                for c, cls in enumerate(STATUS_CLASSES)
                if counters[REQUESTS + m * _CLASSES + c]
            }
            for m, method in enumerate(METHODS)
        }
        cumulative = 0
        buckets = []
        for i, bound in enumerate((*BUCKETS, float("inf"))):
            cumulative += counters[HISTOGRAM + i]
            buckets.append(["+Inf" if bound == float("inf") else bound, cumulative])
        return {
            "requests_total": counters[FINISHED],
            "requests": {method: by_class for method, by_class in requests.items() if by_class},
            "request_duration_seconds": {
                "count": cumulative,
                "sum": counters[DURATION_US] / 1_000_000,
                "buckets": buckets,
            },
            "requests_in_flight": in_flight,
            "request_body_bytes_total": counters[BYTES_IN],
            "response_body_bytes_total": counters[BYTES_OUT],
            "connections_open": connections,
            "http2_streams_open": streams,
            "http2_streams_total": counters[H2_STARTED],
            "workers": {"busy": busy, "idle": idle},
            "worker_restarts": dict(self.restarts),
            "listen_queue": listen_queue,
        }
