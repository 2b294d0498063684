"""The worker base class: the contract every worker type (bundled or third party) builds on.

An arbiter creates a ``Worker`` in the master, forks, and calls :meth:`Worker.init_process`
in the child. ``init_process`` prepares the process (environment, user, signals, heartbeat),
loads the application and then runs the worker's own :meth:`Worker.run` loop.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

from gunicorn import osutil
from gunicorn.errors import WorkerExit
from gunicorn.instrument.metrics import WorkerMetrics
from gunicorn.sock import create_sockets
from gunicorn.workers.workertmp import WorkerTmp

#: Exit status of a worker that could not boot: its app module is missing or raised.
WORKER_BOOT_ERROR = 3
#: Exit status of a worker whose app could not be found in its module (a naming error).
APP_LOAD_ERROR = 4

WSGIApp = Callable[..., Any]


def _signals(names: str) -> list[signal.Signals]:
    return [getattr(signal, f"SIG{name}") for name in names.split()]


def make_fail_app(message: str) -> WSGIApp:
    """A WSGI app answering every request with 500 and ``message`` (``--reload`` only)."""
    body = message.encode("utf-8", "replace")

    def fail_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(
            "500 Internal Server Error",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return fail_app


def files_in_traceback(exc: BaseException) -> list[str]:
    """Existing files named in ``exc``'s traceback and causes (a SyntaxError's file too)."""
    files: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        files += [frame.filename for frame in traceback.extract_tb(current.__traceback__)]
        if isinstance(current, SyntaxError) and current.filename:
            files.append(current.filename)
        current = current.__cause__
    return [f for f in dict.fromkeys(files) if os.path.isfile(f)]


class Worker:
    """Base class of all workers (upstream gunicorn ``gunicorn.workers.base.Worker``)."""

    SIGNALS = _signals("ABRT HUP QUIT INT TERM USR1 USR2 WINCH CHLD")

    PIPE: tuple[int, int] | list[int] = []

    def __init__(
        self,
        age: int,
        ppid: int,
        sockets: list[Any],
        app: Any,
        timeout: float,
        cfg: Any,
        log: Any,
    ) -> None:
        """Built in the master just before the fork; ``timeout`` is the heartbeat interval."""
        self.age = age
        self.pid: int | str = "[booting]"
        self.ppid = ppid
        self.sockets = sockets
        self.app = app
        self.timeout = timeout
        self.cfg = cfg
        self.log = log
        self.booted = False
        self.aborted = False
        self.alive = True
        self.nr = 0
        self.reloader: Any = None
        self.wsgi: Any = None
        self.wait_fds: list[Any] = []
        self.load_error: BaseException | None = None
        #: Under ``--reload``, serve an error page when the app fails to load. The arbiter
        #: turns it off while other workers serve: a failure then ends this worker.
        self.serve_load_errors = True
        #: TCP addresses this worker binds itself (reuse_port), once its app is loaded.
        self.own_addresses: list[Any] = []
        self._reload_pending = False
        self._told_leaving = False
        if cfg.max_requests > 0:
            self.max_requests = cfg.max_requests + random.randint(0, cfg.max_requests_jitter)
        else:
            self.max_requests = sys.maxsize
        self.tmp = WorkerTmp(cfg)
        #: Request counters in memory shared with the master (made here, before the fork).
        self.metrics = WorkerMetrics(int(getattr(cfg, "threads", 1) or 1))

    def __str__(self) -> str:
        return f"<Worker {self.pid}>"

    def notify(self) -> None:
        """Tell the arbiter this worker is alive; call it at least every ``timeout`` s."""
        self.tmp.notify()
        if not self.alive and not self._told_leaving:
            self._told_leaving = True
            if os.getppid() == self.ppid:
                # Leaving (``max_requests``, a blocked thread, a stop): wake the arbiter so
                # that it starts the replacement now rather than at its next loop turn.
                with contextlib.suppress(OSError):
                    os.kill(self.ppid, signal.SIGCHLD)

    def run(self) -> None:
        """The worker's main loop. Subclasses implement it."""
        raise NotImplementedError()

    # -- process set-up ---------------------------------------------------------------

    def init_process(self) -> None:
        """Prepare the forked process, load the application, then :meth:`run`."""
        for key, value in (self.cfg.env or {}).items():
            os.environ[key] = value
        osutil.set_owner_process(self.cfg.uid, self.cfg.gid, initgroups=self.cfg.initgroups)
        osutil.seed()

        self.PIPE = os.pipe()
        for fd in self.PIPE:
            osutil.set_non_blocking(fd)
            osutil.close_on_exec(fd)
        for listener in self.sockets:
            osutil.close_on_exec(listener)
        osutil.close_on_exec(self.tmp.fileno())
        self.wait_fds = [*self.sockets, self.PIPE[0]]
        self.log.close_on_exec()

        self.init_signals()
        self.load_wsgi()
        if self.own_addresses:
            own = create_sockets(self.cfg, self.log, addresses=self.own_addresses)
            for listener in own:
                osutil.close_on_exec(listener)
            self.sockets = [*self.sockets, *own]
            self.wait_fds = [*self.sockets, self.PIPE[0]]
        if self.reloader is not None:
            self.log.warning("Reloader is on. Use in development only!")
            self.reloader.start()
        self.cfg.post_worker_init(self)
        self.booted = True
        if self.load_error is None:
            self.tmp.mark_booted()
        self.run()

    def load_wsgi(self) -> None:
        """Load the application into ``self.wsgi``.

        Without ``--reload`` a failure propagates (the worker exits 3 or 4). With
        ``--reload`` and no other worker serving, an error in the application's code
        (anything but an unknown module or attribute) is logged, served as a 500 page,
        and the files named in its traceback are watched until they change.
        """
        try:
            self.wsgi = self.app.wsgi()
        except Exception as exc:
            from gunicorn.errors import AppImportError

            # A naming error (no such module or attribute) has no cause: not fixable by
            # editing the code that is loaded, so it stays fatal.
            naming_error = isinstance(exc, AppImportError) and exc.__cause__ is None
            if not self.cfg.reload or naming_error or not self.serve_load_errors:
                raise
            self.load_error = exc
            text = getattr(exc, "details", "")
            if not text:
                shown = exc.__cause__ if exc.__cause__ is not None else exc
                text = "".join(traceback.format_exception(type(shown), shown, shown.__traceback__))
            self.log.error("Failed to load the application:\n%s%s", text, exc)
            self.wsgi = make_fail_app(f"{text}{exc}\n")
            self.tmp.mark_broken()
            if self.reloader is not None:
                for path in files_in_traceback(exc):
                    self.reloader.add_extra_file(path)

    # -- signals ----------------------------------------------------------------------

    def init_signals(self) -> None:
        """Reset inherited handlers and install the worker's own."""
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, self.handle_quit)
        signal.signal(signal.SIGTERM, self.handle_exit)
        signal.signal(signal.SIGINT, self.handle_quit)
        signal.signal(signal.SIGWINCH, self.handle_winch)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.signal(signal.SIGABRT, self.handle_abort)
        # A graceful stop or a log reopen must not break a request in a system call.
        signal.siginterrupt(signal.SIGTERM, False)
        signal.siginterrupt(signal.SIGUSR1, False)
        if self.PIPE:
            signal.set_wakeup_fd(self.PIPE[1])

    def handle_usr1(self, sig: int, frame: FrameType | None) -> None:
        self.log.reopen_files()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.alive = False
        if self._reload_pending:
            # Retired because the code changed: gunicorn runs worker_int on a reload exit.
            self._reload_pending = False
            self.cfg.worker_int(self)

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        self.alive = False
        self.cfg.worker_int(self)
        time.sleep(0.1)
        raise WorkerExit(0)

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        self.alive = False
        self.cfg.worker_abort(self)
        raise WorkerExit(1)

    def handle_winch(self, sig: int, frame: FrameType | None) -> None:
        """SIGWINCH is ignored by workers."""

    # -- helpers for run loops ----------------------------------------------------------

    def wakeup(self) -> None:
        """Interrupt a ``select()`` on ``wait_fds`` (safe from any thread)."""
        if self.PIPE:
            with contextlib.suppress(BlockingIOError):
                os.write(self.PIPE[1], b".")

    def parent_changed(self) -> bool:
        """True when the arbiter that forked this worker is gone (the worker should exit)."""
        return self.ppid != os.getppid()

    def count_request(self) -> None:
        """Count a served request; stop after ``max_requests`` (logged once)."""
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
            self.metrics.exiting_because("max_requests")

    def reload_requested(self, filename: str) -> None:
        """Reloader callback: a watched file changed.

        The worker keeps serving; the arbiter starts fresh workers and retires
        this one once they booted (or keeps it if the new code fails to load).
        """
        self.log.info("Worker reloading: %s modified", filename)
        self._reload_pending = True
        self.tmp.request_reload()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Log a request failure and answer it with the error's status if nothing was sent.

        The status comes from ``exc.status`` (protocol errors carry theirs); anything
        else is a 500. The response bytes come from the protocol core.
        """
        status = getattr(exc, "status", 500)
        peer = addr[0] if isinstance(addr, (tuple, list)) and addr else addr
        if status >= 500:
            uri = getattr(req, "uri", None)
            if uri is None:
                self.log.exception("Error handling request (no URI read)")
            else:
                self.log.exception("Error handling request %s", uri)
        else:
            self.log.debug("Invalid request from ip=%s: %s", peer, exc)
        try:
            payload = _error_bytes(exc)
            if payload:
                client.sendall(payload)
        except Exception:
            self.log.debug("Failed to send the error response", exc_info=True)


def _error_bytes(exc: BaseException) -> bytes:
    from gunicorn.http.errors import LocalProtocolError
    from gunicorn.http.h1 import H1Connection
    from gunicorn.http.limits import Limits, Policy

    error: Any = exc
    if not isinstance(getattr(exc, "status", None), int):
        error = LocalProtocolError()  # the details stay in the log
    conn = H1Connection(limits=Limits(), policy=Policy(), clock=time.time)
    return conn.error_response(error)
