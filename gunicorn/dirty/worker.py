"""A dirty worker: one process that loads dirty apps and runs the calls routed to it.

The dirty arbiter forks it with a listening socket (``worker-N.sock``) it has already
connected to. The worker loads its apps, tells the arbiter which ones it serves (a
status message), then answers requests: inline when ``dirty_threads`` is 1, otherwise
on a thread pool. Results go back as one response, or as chunks and an end marker when
the action returns a generator or an async generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import inspect
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gunicorn import osutil
from gunicorn.dirty import protocol
from gunicorn.dirty.app import load_dirty_app_class, not_found
from gunicorn.dirty.errors import DirtyAppError, DirtyError, DirtyProtocolError
from gunicorn.workers.workertmp import WorkerTmp

_RECV_SIZE = 256 * 1024
#: Room for a few large chunks in flight, so that a stream needs fewer context switches.
_SEND_BUFFER = 1024 * 1024


class DirtyWorker:
    """One dirty worker (the object exists in the dirty arbiter, and runs in the child)."""

    SIGNALS = [
        signal.SIGABRT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGUSR1,
        signal.SIGTTIN,
        signal.SIGTTOU,
        signal.SIGCHLD,
    ]

    #: Seconds between heartbeats (and parent checks) while the loop is busy.
    BEAT_INTERVAL = 0.5

    def __init__(
        self,
        age: int,
        ppid: int,
        app_paths: list[str],
        cfg: Any,
        log: Any,
        socket_path: str,
        slot: int = 0,
    ) -> None:
        self.age = age
        self.ppid = ppid
        self.app_paths = list(app_paths)
        self.cfg = cfg
        self.log = log
        self.socket_path = socket_path
        self.slot = slot
        self.pid: int | None = None
        self.tmp = WorkerTmp(cfg)
        self.apps: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.alive = True
        self.booted = False
        self.aborted = False
        self.listener: socket.socket | None = None
        # Arbiter-side routing state (unused in the child).
        self.link: Any = None
        self.ready = False
        self.in_flight = 0
        self.served: list[str] = []
        #: HUP: a successor is starting; this worker stops once the successor is ready.
        self.replaced = False
        #: Exited or lost: it takes no more calls.
        self.gone = False
        self._quit = False
        self._send_lock = threading.Lock()
        self._loops = threading.local()
        self._wake_r = self._wake_w = -1

    def __str__(self) -> str:
        return f"<DirtyWorker {self.pid}>"

    def notify(self) -> None:
        self.tmp.notify()

    # -- in the child ---------------------------------------------------------------------

    def init_process(self, arbiter: Any) -> None:
        """Become the worker: signals, hooks, apps; then serve until told to stop."""
        self.pid = os.getpid()
        _die_with_parent()
        if os.getppid() != self.ppid:
            return  # the dirty arbiter is already gone
        osutil.setproctitle(f"dirty-worker [{self.cfg.proc_name}]")
        self.init_signals()
        self.cfg.dirty_post_fork(arbiter, self)
        self.load_apps()
        self.cfg.dirty_worker_init(self)
        self.tmp.mark_booted()
        self.booted = True
        try:
            self.run()
        finally:
            self._close_apps()

    def init_signals(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
            osutil.close_on_exec(fd)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._handle_term)
        signal.signal(signal.SIGHUP, self._handle_term)
        signal.signal(signal.SIGQUIT, self._handle_quit)
        signal.signal(signal.SIGINT, self._handle_quit)
        signal.signal(signal.SIGUSR1, self._handle_usr1)

    def _handle_term(self, sig: int, frame: Any) -> None:
        self.alive = False

    def _handle_quit(self, sig: int, frame: Any) -> None:
        self.alive = False
        self._quit = True

    def _handle_usr1(self, sig: int, frame: Any) -> None:
        self._reopen = True

    _reopen = False

    def load_apps(self) -> None:
        """Instantiate and ``init()`` each app; a failure is reported, not fatal."""
        for path in self.app_paths:
            try:
                app = load_dirty_app_class(path)()
                init = getattr(app, "init", None)
                if callable(init):
                    init()
            except Exception as exc:
                reason = str(exc) if isinstance(exc, DirtyError) else f"{type(exc).__name__}: {exc}"
                reason = f"init failed: {reason}" if not isinstance(exc, DirtyError) else reason
                self.failed[path] = reason
                self.log.error(
                    "Dirty app %s failed to load in worker %s: %s", path, self.pid, reason
                )
                continue
            self.apps[path] = app

    def run(self) -> None:
        listener = self.listener
        assert listener is not None
        threads = max(1, int(self.cfg.dirty_threads))
        pool = ThreadPoolExecutor(threads, "dirty") if threads > 1 else None
        conns: dict[socket.socket, protocol.FrameReader] = {}
        last_beat = 0.0
        try:
            while self.alive:
                now = time.monotonic()
                if now - last_beat >= self.BEAT_INTERVAL:
                    last_beat = now
                    self.notify()
                    if os.getppid() != self.ppid:
                        self.log.info("Dirty arbiter gone; dirty worker %s exiting", self.pid)
                        return
                try:
                    watched: list[Any] = [listener, self._wake_r, *conns]
                    readable = select.select(watched, [], [], self.BEAT_INTERVAL)[0]
                except InterruptedError:
                    continue
                if self._reopen:
                    self._reopen = False
                    self.log.reopen_files()
                if self._wake_r in readable:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                if listener in readable:
                    self._accept(listener, conns)
                for conn in list(conns):
                    if conn in readable and self.alive:
                        self._read(conn, conns, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=not self._quit, cancel_futures=self._quit)
            for conn in conns:
                conn.close()

    def _accept(self, listener: socket.socket, conns: dict[socket.socket, Any]) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.setblocking(True)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        conns[conn] = protocol.FrameReader()
        status = {"pid": self.pid, "apps": list(self.apps), "failed": self.failed}
        self._send(conn, protocol.encode_status(0, status))

    def _read(self, conn: socket.socket, conns: dict[socket.socket, Any], pool: Any) -> None:
        try:
            data = conn.recv(_RECV_SIZE)
        except OSError:
            data = b""
        if not data:
            conns.pop(conn, None)
            conn.close()
            return
        try:
            frames = conns[conn].feed(data)
        except DirtyProtocolError as exc:
            self.log.error("Dirty worker %s: bad message from the arbiter: %s", self.pid, exc)
            conns.pop(conn, None)
            conn.close()
            return
        for msg_type, request_id, raw in frames:
            if msg_type != protocol.MSG_TYPE_REQUEST:
                continue
            if pool is None:
                self.handle_request(conn, request_id, raw)
            else:
                pool.submit(self.handle_request, conn, request_id, raw)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        # OSError: the arbiter dropped this connection (e.g. the call timed out).
        with self._send_lock, contextlib.suppress(OSError):
            conn.sendall(data)

    def handle_request(self, conn: socket.socket, request_id: int, raw: bytes) -> None:
        """Run one request and send its answer (never raises)."""
        app_path = action = "?"
        try:
            request = protocol.payload_of(raw)
            app_path = str(request.get("app_path"))
            action = request.get("action")
            args = request.get("args") or []
            kwargs = request.get("kwargs") or {}
            result = self.execute(app_path, action, args, kwargs)
            self._send_result(conn, request_id, result)
        except DirtyError as exc:
            if isinstance(exc, DirtyAppError) and exc.app_path is None:
                exc.app_path = app_path
                exc.details["app_path"] = app_path
            self.log.error("Dirty call %s.%s failed: %s", app_path, action, exc.message)
            self._send_error(conn, request_id, exc)
        except Exception as exc:
            self.log.error(
                "Dirty call %s.%s failed: %s: %s", app_path, action, type(exc).__name__, exc
            )
            self.log.debug("Dirty call traceback", exc_info=True)
            error = DirtyAppError(
                f"{type(exc).__name__}: {exc}",
                app_path=app_path,
                action=str(action),
                traceback=traceback.format_exc(),
            )
            self._send_error(conn, request_id, error)

    def _send_error(self, conn: socket.socket, request_id: int, error: DirtyError) -> None:
        try:
            message = protocol.encode_error(request_id, error)
        except DirtyError:
            message = protocol.encode_error(request_id, DirtyAppError(error.message))
        self._send(conn, message)

    def execute(self, app_path: str, action: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Call ``action`` of the app; coroutines are run to completion here."""
        app = self.apps.get(app_path)
        if app is None:
            raise not_found(app_path, self.failed.get(app_path))
        result = app(action, *args, **kwargs)
        if inspect.iscoroutine(result):
            result = self._loop().run_until_complete(result)
        return result

    def _send_result(self, conn: socket.socket, request_id: int, result: Any) -> None:
        if inspect.isgenerator(result):
            try:
                for chunk in result:
                    self._send(conn, protocol.encode_chunk(request_id, chunk))
            finally:
                result.close()
            self._send(conn, protocol.encode_end(request_id))
        elif inspect.isasyncgen(result):
            loop = self._loop()
            try:
                while True:
                    try:
                        chunk = loop.run_until_complete(result.__anext__())
                    except StopAsyncIteration:
                        break
                    self._send(conn, protocol.encode_chunk(request_id, chunk))
            finally:
                loop.run_until_complete(result.aclose())
            self._send(conn, protocol.encode_end(request_id))
        else:
            self._send(conn, protocol.encode_response(request_id, result))

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._loops, "loop", None)
        if loop is None:
            loop = asyncio.new_event_loop()
            self._loops.loop = loop
        return loop

    def _close_apps(self) -> None:
        for path, app in self.apps.items():
            close = getattr(app, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:
                    self.log.error("Dirty app %s failed to close: %s", path, exc)


def _die_with_parent() -> None:
    """Linux: be killed when the dirty arbiter dies, even in the middle of a call (its
    answer could not be delivered anyway). Elsewhere the loop notices within a second of
    finishing the call."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return


_PR_SET_PDEATHSIG = 1


def run_worker(worker: DirtyWorker, arbiter: Any) -> None:
    """In the forked child: run ``worker`` and exit the process (never returns)."""
    code = 0
    try:
        worker.init_process(arbiter)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        worker.log.exception("Exception in dirty worker process")
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
