"""What the arbiter runs for the control socket and the metrics, from its own loop.

The arbiter calls four things: :meth:`MasterControl.start` once its listeners exist,
:meth:`MasterControl.wait` instead of a bare ``select`` on its signal pipe (the control and
metrics sockets are waited on with it and served when ready, never from a signal
handler), and :meth:`MasterControl.worker_exited` for each worker it reaps, which folds the
worker's counters into the totals and counts the restart by reason.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import socket
import struct
import time
import weakref
from typing import Any

from gunicorn.ctl import commands, metrics_http, paths
from gunicorn.ctl.server import ControlEndpoint, Endpoint
from gunicorn.instrument.metrics import MetricsRegistry, WorkerMetrics

#: Seconds between two pushes of the master's gauges to StatsD.
STATSD_INTERVAL = 1.0
# struct tcp_info: 8 one-byte fields, then u32 rto, ato, snd_mss, rcv_mss, unacked...; for a
# listening socket Linux reports the accept queue length in tcpi_unacked (offset 24).
_UNACKED_OFFSET = 24

_instances: weakref.WeakSet[MasterControl] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for instance in list(_instances):
        instance.forget_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def listen_queue_depth(sock: Any) -> int | None:
    """Connections waiting to be accepted on a TCP listener (Linux), else None."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None or getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 104)
    except (OSError, ValueError):
        return None
    if len(raw) < _UNACKED_OFFSET + 4:
        return None
    return int(struct.unpack_from("=I", raw, _UNACKED_OFFSET)[0])


class MasterControl:
    """The control socket, the metrics endpoint and the metric totals of one arbiter."""

    def __init__(self, arbiter: Any) -> None:
        self.arbiter = arbiter
        self.registry = MetricsRegistry()
        self.control: ControlEndpoint | None = None
        self.metrics: Endpoint | None = None
        self.path: str | None = None
        self.started_at = time.monotonic()
        self.workers_killed = 0
        #: Workers stopped with ``worker kill``: their exit is counted as "killed".
        self.killed: set[int] = set()
        self._known: dict[int, WorkerMetrics] = {}
        self._identity: tuple[int, int] | None = None
        self._owner = os.getpid()
        self._last_push = 0.0
        #: The default path another instance held when this one started.
        self._preferred: str | None = None

    # -- start and stop ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the control socket and the metrics endpoint (once the listeners exist)."""
        cfg = self.arbiter.cfg
        log = self.arbiter.log
        self._owner = os.getpid()
        self.started_at = time.monotonic()
        _instances.add(self)
        if not cfg.control_socket_disable and self.control is None:
            self._open_control(cfg, log)
        metrics_bind = getattr(cfg, "metrics_bind", None)
        if metrics_bind and self.metrics is None:
            self._open_metrics(metrics_bind, cfg, log)
        atexit.register(self.close)

    def _open_control(self, cfg: Any, log: Any) -> None:
        configured = paths.configured_path(cfg)
        candidates = [configured] if configured else []
        if not configured:
            name = paths.instance_name(cfg, self.arbiter.LISTENERS)
            directory = paths.default_directory()
            candidates = [
                paths.instance_path(directory, name),
                paths.instance_path(directory, f"{name}-{os.getpid()}"),
            ]
        last = ""
        for index, path in enumerate(candidates):
            try:
                listener = paths.bind(path, cfg.control_socket_mode)
            except paths.SocketTaken as exc:
                last = str(exc)
                continue
            except OSError as exc:
                last = f"{path}: {exc}"
                break
            self.path = path
            self._identity = paths.identity(path)
            self.control = ControlEndpoint(listener, self._dispatch)
            log.info("Control socket listening at: %s", path)
            if index > 0:
                # Taken by another instance (e.g. the old master of a USR2 upgrade): move
                # there once it is free.
                self._preferred = candidates[0]
            return
        log.warning("No control socket (gunicornc cannot reach this server): %s", last)

    def _open_metrics(self, address: str, cfg: Any, log: Any) -> None:
        try:
            listener = metrics_http.listen(str(address))
        except (OSError, ValueError) as exc:
            log.error("Cannot serve metrics at %s: %s", address, exc)
            return
        app_addresses = {str(lnr.getsockname()) for lnr in self.arbiter.LISTENERS}
        if str(listener.getsockname()) in app_addresses:
            listener.close()
            log.error("metrics_bind %s is a listener of the application: not serving it", address)
            return
        self.metrics = metrics_http.MetricsEndpoint(listener, self.snapshot)
        log.info("Metrics at: %s", metrics_http.describe(listener))

    def close(self) -> None:
        """Close the sockets; unlink the control socket if it is still this server's."""
        if os.getpid() != self._owner:
            return
        for endpoint in (self.control, self.metrics):
            if endpoint is not None:
                endpoint.shutdown()
        if self.path and self._identity and paths.identity(self.path) == self._identity:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.control = self.metrics = None

    def forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptors, never unlink anything."""
        for endpoint in (self.control, self.metrics):
            if endpoint is not None:
                endpoint.close_in_child()
        self.control = self.metrics = None
        self.path = None

    # -- the loop ----------------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        return [e for e in (self.control, self.metrics) if e is not None]

    def wait(self, pipe: int, timeout: float) -> None:
        """Wait up to ``timeout`` for the signal pipe or a control/metrics socket; serve
        the sockets that are ready. Raises OSError as ``select`` does."""
        endpoints = self._endpoints()
        if not endpoints:
            select.select([pipe], [], [], timeout)
            self._tick()
            return
        reads = [pipe]
        writes: list[int] = []
        for endpoint in endpoints:
            reads += endpoint.read_fds()
            writes += endpoint.write_fds()
        readable, writable, _ = select.select(reads, writes, [], min(timeout, 1.0))
        ready_r, ready_w = set(readable), set(writable)
        for endpoint in endpoints:
            try:
                endpoint.ready(ready_r, ready_w)
            except Exception:
                self.arbiter.log.exception("Error serving the control or metrics socket")
        self._tick()

    def _dispatch(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return commands.run(self, message)
        except Exception as exc:
            self.arbiter.log.exception("Control command failed: %r", message.get("command"))
            return {"id": message.get("id"), "status": "error", "error": f"internal error: {exc}"}

    # -- metrics -----------------------------------------------------------------------------

    def _live(self) -> list[WorkerMetrics]:
        """Metrics of the live workers; workers gone without being reaped are folded in."""
        live: dict[int, WorkerMetrics] = {}
        for child in self.arbiter.children:
            metrics = getattr(child.worker, "metrics", None)
            if isinstance(metrics, WorkerMetrics) and not metrics.closed:
                live[child.pid] = metrics
        for pid in set(self._known) - set(live):
            self.registry.worker_gone(self._known.pop(pid), None)
        self._known.update(live)
        return list(live.values())

    def snapshot(self) -> dict[str, Any]:
        queues = []
        for listener in self.arbiter.LISTENERS:
            depth = listen_queue_depth(getattr(listener, "sock", listener))
            if depth is not None:
                queues.append({"listener": str(listener), "depth": depth})
        data: dict[str, Any] = self.registry.snapshot(self._live(), queues)
        data["workers_target"] = self.arbiter.num_workers
        return data

    def worker_exited(self, child: Any, status: int, stopping: bool = False) -> None:
        """The arbiter reaped ``child``: count why it ended, keep its counters."""
        metrics = getattr(child.worker, "metrics", None)
        if not isinstance(metrics, WorkerMetrics):
            metrics = None
        if os.WIFSIGNALED(status):
            self.workers_killed += 1
        reason = None if stopping else self._reason(child, status, metrics)
        self._known.pop(child.pid, None)
        self.killed.discard(child.pid)
        self.registry.worker_gone(metrics, reason)
        if reason is not None:
            self._statsd("increment", f"gunicorn.worker.restarts.{reason}", 1)

    def _reason(self, child: Any, status: int, metrics: WorkerMetrics | None) -> str | None:
        if child.abort_sent_at is not None:
            return "timeout"
        own = metrics.exit_reason() if metrics is not None else None
        if own is not None:
            return own
        if child.pid in self.killed:
            return "killed"
        if child.term_sent_at is not None:
            # Retired by the master: replaced by a newer generation, or just scaled down.
            return "reload" if child.generation != self.arbiter.generation else None
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            if code == 0:
                return "max_requests"  # a worker only leaves on its own when it is done
        return "crash"

    # -- StatsD ------------------------------------------------------------------------------

    def _statsd(self, kind: str, name: str, value: float) -> None:
        log = self.arbiter.log
        if getattr(log, "sock", None) is None or not hasattr(log, kind):
            return
        with contextlib.suppress(Exception):
            getattr(log, kind)(name, value)

    def _move_to_preferred(self) -> None:
        """Take the default path over once the instance that held it is gone."""
        preferred, control = self._preferred, self.control
        if preferred is None or control is None or paths.is_live(preferred):
            return
        try:
            listener = paths.bind(preferred, self.arbiter.cfg.control_socket_mode)
        except (paths.SocketTaken, OSError):
            return
        old_path, old_identity = self.path, self._identity
        control.listener.close()
        control.listener = listener
        self.path, self._identity, self._preferred = preferred, paths.identity(preferred), None
        if old_path and old_identity and paths.identity(old_path) == old_identity:
            with contextlib.suppress(OSError):
                os.unlink(old_path)
        self.arbiter.log.info("Control socket listening at: %s", preferred)

    def _tick(self) -> None:
        """Once a second: take the default path back if it came free, and push the
        master's gauges to StatsD (when it is set up)."""
        now = time.monotonic()
        if now - self._last_push < STATSD_INTERVAL:
            return
        self._last_push = now
        self._move_to_preferred()
        log = self.arbiter.log
        if getattr(log, "sock", None) is None:
            self._live()  # still fold in workers that vanished
            return
        data = self.snapshot()
        self._statsd("gauge", "gunicorn.workers.busy", data["workers"]["busy"])
        self._statsd("gauge", "gunicorn.workers.idle", data["workers"]["idle"])
        self._statsd("gauge", "gunicorn.requests.in_flight", data["requests_in_flight"])
        self._statsd("gauge", "gunicorn.connections", data["connections_open"])
        if self.arbiter.cfg.enable_backlog_metric and data["listen_queue"]:
            backlog = sum(q["depth"] for q in data["listen_queue"])
            self._statsd("histogram", "gunicorn.backlog", backlog)
