"""What the gevent and eventlet workers share: greenlets on the server's own core.

Theory of operation
-------------------
The worker monkey-patches the process in ``init_process``, after the fork and before the
application is imported (the arbiter is never patched), so sockets, ``ssl``, ``select``,
``time`` and ``threading`` are green for the application and for the server alike.

* One *acceptor* greenlet per listener waits for connections through the hub and starts
  one greenlet per connection (``gunicorn.drivers.green.GreenConnection``), at most
  ``worker_connections`` at a time; at the cap, connections that have not begun a request
  make room (``gunicorn.drivers.admission``), and EMFILE pauses accepting for 0.5 s.
  HTTP/2 streams run in greenlets of their own, at most
  ``worker_connections`` at a time as well (more wait in a queue for a free one).
* The main greenlet writes the heartbeat and wakes on signals (the wakeup pipe of the
  base class). It runs only when the hub does: an application that blocks the hub with a
  call that is not green (a C library doing its own I/O, an unpatched sleep) silences the
  heartbeat, the arbiter sends SIGABRT after ``timeout``, and the handler says where the
  application was blocked before the worker is replaced.
* Signal handlers only set flags; the main greenlet acts. TERM (and ``max_requests``, or a
  vanished arbiter) is graceful: stop accepting, answer requests already on their way with
  ``Connection: close`` (GOAWAY on HTTP/2), end idle keep-alive connections after a short
  linger, and give the rest ``graceful_timeout``. INT and QUIT leave at once.
"""

from __future__ import annotations

import _socket
import _thread
import contextlib
import errno
import os
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any

from gunicorn.drivers import admission, tls
from gunicorn.drivers.green import GreenConnection, GreenIO
from gunicorn.errors import RequestTimeout, WorkerExit
from gunicorn.lifecycle.logs import application_stack
from gunicorn.lifecycle.options import DriverOptions, worker_options
from gunicorn.workers import base

# How long an idle keep-alive connection stays open once the worker stops, so that a
# request already on its way is answered (with Connection: close) instead of being cut.
_LINGER = 2.0
# The main greenlet's longest sleep (heartbeat, parent check, connection deadlines).
_TICK = 0.5
# How often the acceptor looks again once worker_connections are open.
_FULL_WAIT = 0.05
# How often a stopping worker looks at its open connections.
_STOP_STEP = 0.05
# How often the acceptor looks again while connections it ended are closing.
_ROOM_WAIT = 0.001
_ACCEPT_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_TRANSIENT = _ACCEPT_EXHAUSTED | {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}


# The lock types of the unpatched ``_thread`` (this module is imported by the arbiter,
# before any patch).
_NATIVE_LOCKS = (type(_thread.allocate_lock()), type(_thread.RLock()))
_NOT_APPLICATION = ("gunicorn", "gevent", "eventlet", "greenlet", "_pytest", "pytest")


def _green_module_locks() -> None:
    """Swap the module-level locks that code imported before the patch made (``--preload``
    apps) for green ones. A native lock held by one greenlet across a green wait would
    block the whole worker when another greenlet asks for it. (The libraries themselves
    convert the existing RLocks; the standard library's own locks are left alone.)"""
    skip = sys.stdlib_module_names
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if module is None or top in skip or top in _NOT_APPLICATION:
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            kind = type(value)
            if kind not in _NATIVE_LOCKS or not repr(value).startswith("<unlocked"):
                continue
            namespace[attr] = threading.Lock() if kind is _NATIVE_LOCKS[0] else threading.RLock()


class GreenKit(GreenIO):
    """A green library as the worker sees it (``gunicorn.workers.ggevent`` and ``geventlet``)."""

    name: str

    def patch(self) -> None:
        """Monkey-patch the process (called once, in the worker, after the fork)."""

    def spawn(self, function: Callable[..., None], *args: Any) -> None:
        """Run ``function(*args)`` in a new greenlet."""

    def in_hub(self) -> bool:
        """Whether the running greenlet is the hub's own."""
        raise NotImplementedError


class GreenWorker(base.Worker):
    """Serves HTTP/1.x and HTTP/2 with one greenlet per connection (and per stream)."""

    wsgi_multithread = True  # greenlets run the application concurrently
    supports_http2 = True
    kit: GreenKit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_connections = max(1, int(self.cfg.worker_connections))
        self.accepting = True
        # Insertion-ordered: the oldest connection first (admission closes those first).
        self.connections: dict[GreenConnection, None] = {}
        self._ending: set[GreenConnection] = set()  # ended by admission, not closed yet
        self._quick = False
        self._abort_status: int | None = None
        self._blocked_at = ""
        self._tasks: deque[Callable[[], None]] = deque()
        self._task_greenlets = 0

    # -- process set-up ---------------------------------------------------------------------

    def init_process(self) -> None:
        self.kit.patch()
        _green_module_locks()
        super().init_process()

    # -- signals: flags only, the main greenlet acts ---------------------------------------

    # The main greenlet wakes through the wakeup pipe the base class gave to ``signal``.

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        self.alive = False
        self._quick = True
        self.accepting = False  # what the acceptors took now would be closed unanswered

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """The arbiter heard no heartbeat for ``timeout``: the hub was blocked. The frame
        the signal interrupted is the blocking call: it is kept for the log, and a
        request's greenlet gets ``RequestTimeout`` (its client a 500)."""
        self.alive = False
        self._quick = True
        # The acceptors run again when the hub does: what they took now would be closed
        # unanswered by the exit, instead of waiting for another worker.
        self.accepting = False
        self._abort_status = 1
        self.cfg.worker_abort(self)
        if self.kit.in_hub() or frame is None:
            return
        self._blocked_at = application_stack(traceback.extract_stack(frame))
        raise RequestTimeout(1)

    # -- the main greenlet ------------------------------------------------------------------

    def run(self) -> None:
        options = worker_options(self)  # after post_worker_init (a hook may patch Server)
        context = tls.ssl_context(self.cfg) if self.cfg.is_ssl else None
        for listener in self.sockets:
            self.kit.spawn(self._accept_loop, listener, options, context)
        tick = min(_TICK, max(float(self.timeout) / 2.0, 0.05))
        wakeup = self.PIPE[0] if self.PIPE else -1
        while self.alive:
            self.notify()
            self._close_expired()
            if self.parent_changed():
                self.log.info("Parent changed, shutting down: %s", self)
                self.alive = False
                break
            if wakeup >= 0 and self.kit.wait(wakeup, False, tick):
                # One read: eventlet's green os.read would wait on an empty pipe.
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    os.read(wakeup, 4096)
            elif wakeup < 0:
                self.kit.sleep(tick)
        self.accepting = False
        if self._quick:
            self._quick_exit()
        # New clients are refused from now on, not queued behind a worker that will not
        # accept them (the acceptors close their copies within a tick).
        for listener in self.sockets:
            listener.close()
        self._graceful_stop()

    def _close_expired(self) -> None:
        """End the connections idle past their deadline (keep-alive, or no whole request
        head within ``timeout``)."""
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.idle and conn.deadline <= now:
                conn.stop_reading()

    def _quick_exit(self) -> None:
        if self._abort_status is not None:
            where = self._blocked_at
            self.log.error(
                "The %s hub was blocked for more than %ss (no heartbeat): a call that is "
                "not green (blocking I/O, a long computation) held it%s",
                self.kit.name,
                self.cfg.timeout,
                f"; it was at:\n{where}" if where else "",
            )
            raise WorkerExit(self._abort_status)
        self.cfg.worker_int(self)
        raise WorkerExit(0)

    def _graceful_stop(self) -> None:
        now = time.monotonic()
        deadline = now + float(self.cfg.graceful_timeout)
        linger_until = min(now + _LINGER, deadline)
        for conn in list(self.connections):
            conn.shutdown()
        while self.connections and not self._quick:
            now = time.monotonic()
            if now >= deadline:
                self.log.info("Graceful timeout: %d connection(s) left", len(self.connections))
                break
            if now >= linger_until:
                for conn in list(self.connections):
                    conn.stop_reading()
            self.notify()
            self.kit.sleep(_STOP_STEP)
        if self._quick:
            self._quick_exit()

    def count_request(self) -> None:
        super().count_request()
        if not self.alive:
            self.accepting = False
            self.wakeup()

    # -- accepting --------------------------------------------------------------------------

    def _accept_loop(self, listener: Any, options: DriverOptions, context: Any) -> None:
        """One listener's greenlet: accept while the worker does, up to the cap."""
        try:
            raw = _socket.socket(fileno=os.dup(listener.fileno()))
        except OSError:
            self.log.exception("Cannot accept on %s", listener)
            return
        raw.setblocking(False)
        family = raw.family
        fileno = raw.fileno()
        wait = self.kit.wait
        try:
            while self.accepting:
                if len(self.connections) >= self.worker_connections:
                    # Room is made by ending connections that have not begun a request;
                    # their greenlets close them at the hub's next turn.
                    if self._ending:
                        self.kit.sleep(_ROOM_WAIT)
                    else:
                        self.kit.sleep(0 if self._make_room() else _FULL_WAIT)
                    continue
                try:
                    fd, addr = raw._accept()  # type: ignore[attr-defined]
                except (BlockingIOError, InterruptedError):
                    wait(fileno, False, _TICK)
                    continue
                except OSError as exc:
                    if exc.errno not in _ACCEPT_TRANSIENT:
                        raise
                    if exc.errno in _ACCEPT_EXHAUSTED:
                        self.log.error("accept() failed (%s); retrying in a while", exc)
                        self.kit.sleep(0.5)
                    continue
                if not self.accepting:
                    os.close(fd)
                    break
                sock = socket.socket(family, socket.SOCK_STREAM, 0, fileno=fd)
                conn = GreenConnection(self, self.kit, sock, addr, listener, self._spawn_tasks)
                self.connections[conn] = None
                self.kit.spawn(self._serve, conn, options, context)
        except Exception:
            self.log.exception("Error accepting connections on %s", listener)
        finally:
            raw.close()

    def _make_room(self) -> int:
        """At ``worker_connections``: end idle connections (oldest first; as nginx, up to
        1/8 of them and at most 32 at a time); how many."""
        count = max(1, min(32, len(self.connections) // 8))
        chosen = admission.choose(self.connections, _kind, _sock_of, count)
        for conn in chosen:
            conn.stop_reading()
            self._ending.add(conn)
        if chosen:
            self.log.debug("worker_connections reached: closing %d idle connection(s)", len(chosen))
        return len(chosen)

    def _serve(self, conn: GreenConnection, options: DriverOptions, context: Any) -> None:
        try:
            conn.run(options, context)
        finally:
            self.connections.pop(conn, None)
            self._ending.discard(conn)

    # -- HTTP/2 streams ---------------------------------------------------------------------

    def _spawn_tasks(self, tasks: list[Callable[[], None]]) -> None:
        """Run each task (an HTTP/2 stream) in a greenlet, at most ``worker_connections``
        at once; the others wait their turn in order."""
        self._tasks.extend(tasks)
        while self._tasks and self._task_greenlets < self.worker_connections:
            self._task_greenlets += 1
            self.kit.spawn(self._run_tasks)

    def _run_tasks(self) -> None:
        tasks = self._tasks
        try:
            while tasks:
                task = tasks.popleft()
                try:
                    task()
                except RequestTimeout:
                    pass  # answered and logged by the request cycle
                except Exception:
                    self.log.exception("Error in an HTTP/2 stream")
        finally:
            self._task_greenlets -= 1


def _kind(conn: GreenConnection) -> int:
    return conn.admission_kind()


def _sock_of(conn: GreenConnection) -> Any:
    return conn.sock


__all__ = ["GreenKit", "GreenWorker"]
