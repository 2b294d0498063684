"""The dirty arbiter: the process that owns the dirty workers and routes calls to them.

The master forks it (see :mod:`gunicorn.dirty.manager`). It runs an asyncio loop that
listens on ``arbiter.sock``, forks ``dirty_workers`` dirty workers, and relays each call
to a worker that loaded the app: the message is forwarded as it came, relabelled with an
arbiter-wide id, and the worker's answer is relabelled back for its client. A call that
outlives ``dirty_timeout`` is answered with a timeout error and its worker is replaced;
a reply arriving after that has no task left to go to and is dropped.

It also holds the stash tables, answers status and manage (scale) messages, respawns dead
workers with the same apps, and exits when its parent (the master) dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import socket
import tempfile
import time
from typing import Any

from gunicorn import osutil
from gunicorn.children import Child, Children, describe_status, exit_report
from gunicorn.dirty import protocol
from gunicorn.dirty.app import get_app_workers_attribute, parse_dirty_app_spec
from gunicorn.dirty.calls import CallRelay, action_of
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyNoWorkersAvailableError,
    DirtyWorkerError,
)
from gunicorn.dirty.links import ClientLink, WorkerLink
from gunicorn.dirty.pidfile import remove_pidfile, write_pidfile
from gunicorn.dirty.routing import Allocation, Router, Task
from gunicorn.dirty.stash_store import StashStore
from gunicorn.dirty.worker import DirtyWorker, run_worker

_SIGNALS = "HUP QUIT INT TERM TTIN TTOU USR1 CHLD"


# Seconds of silence after which an idle dirty worker is taken for hung (at the least).
SILENCE_FLOOR = 5.0


class DirtyArbiter(CallRelay):
    """Supervises the dirty workers and relays calls to them (runs in its own process)."""

    SIGNALS = [getattr(signal, f"SIG{name}") for name in _SIGNALS.split()]
    WORKER_BOOT_ERROR = 3
    #: Seconds between housekeeping turns (heartbeat, timeouts, respawns).
    TICK = 1.0
    #: Workers that die sooner than this after their start are respawned on the next turn.
    RESPAWN_DELAY = 1.0
    QUICK_STOP_TIMEOUT = 2.0

    def __init__(
        self, cfg: Any, log: Any, socket_path: str | None = None, pidfile: str | None = None
    ) -> None:
        self.cfg = cfg
        self.log = log
        if socket_path is None:
            socket_path = os.path.join(tempfile.mkdtemp(prefix="gunicorn-dirty-"), "arbiter.sock")
        self.socket_path = socket_path
        self.tmpdir = os.path.dirname(socket_path)
        self.pidfile = pidfile
        self.pid = os.getpid()
        self.ppid = os.getppid()
        self.age = 0
        #: Heartbeat file towards the master (set by the manager before the fork).
        self.tmp: Any = None
        self.num_workers = max(0, int(cfg.dirty_workers))
        self.threads = max(1, int(cfg.dirty_threads))
        self.timeout = float(cfg.dirty_timeout or 0)
        self.allocation = Allocation({})
        #: Apps that cannot be used, with the reason (import errors, failed init()).
        self.app_errors: dict[str, str] = {}
        self.children = Children()
        self.router = Router(self.threads)
        self.clients: set[ClientLink] = set()
        self.tasks: dict[int, Task] = {}
        self.stash = StashStore()
        self.worker_age = 0
        self.stopping = False
        self._stop_deadline = 0.0
        self._next_task = 0
        #: When a worker of each slot last died young (respawns wait RESPAWN_DELAY).
        self._slot_deaths: dict[int, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._done: asyncio.Future[None] | None = None

    # -- process --------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until stopped (in the forked process)."""
        self.pid = os.getpid()
        self.ppid = os.getppid()
        osutil.setproctitle(f"dirty-arbiter [{self.cfg.proc_name}]")
        self.cfg.on_dirty_starting(self)
        self._load_app_specs()
        if self.pidfile:
            write_pidfile(self.pidfile, self.pid, self.ppid)
        try:
            asyncio.run(self._main())
        finally:
            if self.pidfile:
                remove_pidfile(self.pidfile, self.pid)
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
            if os.getppid() != self.ppid:
                # The master died: nobody else will remove the socket directory.
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _load_app_specs(self) -> None:
        limits: dict[str, int | None] = {}
        for spec in self.cfg.dirty_apps:
            try:
                path, count = parse_dirty_app_spec(spec)
                limits[path] = count if count is not None else get_app_workers_attribute(path)
            except DirtyAppError as exc:
                path = spec if exc.app_path is None else exc.app_path
                self.app_errors[path] = exc.message
                self.log.error("Dirty app %s cannot be loaded: %s", path, exc.message)
        self.allocation = Allocation(limits)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = loop.create_future()
        for sig in self.SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        old_umask = os.umask(0o177)
        try:
            self._server = await loop.create_unix_server(
                lambda: ClientLink(self), self.socket_path, backlog=2048
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        self.log.info("Dirty arbiter booted (pid: %s), listening at %s", self.pid, self.socket_path)
        self.manage_workers()
        loop.call_later(self.TICK, self._tick)
        await self._done
        self._fail_all(DirtyWorkerError("The dirty arbiter stopped"))
        for client in list(self.clients):
            client.close()
        self.log.info("Dirty arbiter exiting (pid: %s)", self.pid)

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if sig != signal.SIGCHLD:
            self.log.info("Dirty arbiter handling signal: %s", name[3:].lower())
        getattr(self, f"handle_{name[3:].lower()}")()

    def _tick(self) -> None:
        assert self._loop is not None
        if self.tmp is not None:
            with contextlib.suppress(OSError, ValueError):
                self.tmp.notify()
        if os.getppid() != self.ppid and not self.stopping:
            self.log.info("Master (pid:%s) gone; dirty arbiter exiting", self.ppid)
            self.stop(graceful=False)
        self.reap_workers()
        self.murder_workers()
        self._expire_waiting()
        if not self.stopping:
            self.manage_workers()
        elif time.monotonic() > self._stop_deadline:
            for child in self.children:
                self.kill_worker(child.pid, signal.SIGKILL)
        self._maybe_done()
        if self._done is not None and not self._done.done():
            self._loop.call_later(self.TICK, self._tick)

    def _maybe_done(self) -> None:
        if self.stopping and not len(self.children) and self._done and not self._done.done():
            self._done.set_result(None)

    # -- signals --------------------------------------------------------------------------

    def handle_chld(self) -> None:
        self.reap_workers()

    def handle_hup(self) -> None:
        """Replace every worker: new ones start, each old one stops once its successor is up."""
        for child in self.children:
            if not child.retiring:
                child.worker.replaced = True
        self.manage_workers()

    def handle_usr1(self) -> None:
        self.log.reopen_files()
        for child in self.children:
            self.kill_worker(child.pid, signal.SIGUSR1)

    def handle_ttin(self) -> None:
        self.scale(1)

    def handle_ttou(self) -> None:
        self.scale(-1)

    def handle_term(self) -> None:
        self.stop(graceful=True)

    def handle_quit(self) -> None:
        self.stop(graceful=False)

    def handle_int(self) -> None:
        self.stop(graceful=False)

    def scale(self, delta: int) -> int:
        """Add (or remove) workers; never below the largest per-app worker count."""
        target = self.num_workers + delta
        floor = min(self.allocation.minimum_workers, self.num_workers)
        if delta < 0 and target < floor:
            self.log.info(
                "Dirty workers not reduced below %s (the largest per-app worker count)", floor
            )
            target = floor
        self.num_workers = max(0, target)
        self.log.info("Dirty workers: %s", self.num_workers)
        if not self.stopping:
            self.manage_workers()
        return self.num_workers

    def stop(self, graceful: bool = True) -> None:
        """Stop the workers (TERM: they finish their calls; QUIT: now), then exit."""
        now = time.monotonic()
        limit = self.cfg.dirty_graceful_timeout if graceful else self.QUICK_STOP_TIMEOUT
        if not self.stopping:
            self.stopping = True
            self._stop_deadline = now + limit
            if self._server is not None:
                self._server.close()
            for queue in self.router.waiting.values():
                while queue:
                    waiting = queue.popleft()
                    self._answer_error(
                        waiting.client,
                        waiting.request_id,
                        DirtyNoWorkersAvailableError(
                            protocol.request_app_path(waiting.raw),
                            "The dirty arbiter is shutting down",
                        ),
                    )
        else:
            self._stop_deadline = min(self._stop_deadline, now + limit)
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        for child in self.children:
            if child.term_sent_at is None or not graceful:
                child.term_sent_at = child.term_sent_at or now
                self.kill_worker(child.pid, sig)
        self._maybe_done()

    # -- workers --------------------------------------------------------------------------

    def manage_workers(self) -> None:
        """One live worker per slot 0..num_workers-1; extra slots are retired."""
        if self.stopping:
            return
        occupied = set()
        for child in self.children:
            worker = child.worker
            if child.retiring:
                continue
            if worker.slot >= self.num_workers:
                self.retire(child)
                continue
            if not worker.replaced:
                occupied.add(worker.slot)
        for slot in range(self.num_workers):
            if slot not in occupied and not self._respawn_too_soon(slot):
                self.spawn_worker(slot)

    def _respawn_too_soon(self, slot: int) -> bool:
        last = self._slot_deaths.get(slot)
        return last is not None and time.monotonic() - last < self.RESPAWN_DELAY

    def spawn_worker(self, slot: int) -> int:
        """Fork a dirty worker for ``slot``; returns its pid."""
        assert self._loop is not None
        self.worker_age += 1
        path = os.path.join(self.tmpdir, f"worker-{self.worker_age}.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        listener.listen(16)
        link_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        link_sock.connect(path)  # waits in the backlog until the worker has loaded its apps
        apps = self.allocation.apps_for(slot)
        worker = DirtyWorker(self.worker_age, self.pid, apps, self.cfg, self.log, path, slot)
        worker.listener = listener
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))
        pid = os.fork()
        if pid == 0:
            link_sock.close()
            self._become_worker(worker, blocked)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        listener.close()
        worker.pid = pid
        child = Child(pid=pid, worker=worker)
        child.refresh()
        self.children.add(child)
        self.log.info(
            "Booting dirty worker with pid: %s (apps: %s)", pid, ", ".join(apps) or "none"
        )
        link_sock.setblocking(False)
        self._loop.create_task(self._attach(worker, link_sock))
        return pid

    def _become_worker(self, worker: DirtyWorker, blocked: Any) -> None:
        """In the forked child: drop the arbiter's handles, then run the worker."""
        signal.set_wakeup_fd(-1)
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        fds = [link.fileno() for link in self.clients]
        fds += [c.worker.link.fileno() for c in self.children if c.worker.link is not None]
        fds += [c.worker.tmp.fileno() for c in self.children if not c.worker.tmp.closed]
        server = self._server
        if isinstance(server, asyncio.base_events.Server):
            fds += [s.fileno() for s in server.sockets]
        if self.tmp is not None and not self.tmp.closed:
            fds.append(self.tmp.fileno())
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        run_worker(worker, self)

    async def _attach(self, worker: DirtyWorker, sock: socket.socket) -> None:
        assert self._loop is not None
        try:
            await self._loop.create_unix_connection(lambda: WorkerLink(self, worker), sock=sock)
        except OSError as exc:
            self.log.error("Cannot connect to dirty worker %s: %s", worker.pid, exc)
            sock.close()
            return

    def retire(self, child: Child, sig: int = signal.SIGTERM) -> None:
        worker = child.worker
        worker.ready = False
        if child.term_sent_at is None:
            child.term_sent_at = time.monotonic()
        self.router.rebuild([c.worker for c in self.children])
        self.kill_worker(child.pid, sig)

    def kill_worker(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise
            return
        if sig == signal.SIGKILL:
            child = self.children.get(pid)
            if child is not None:
                child.kill_sent_at = time.monotonic()

    def murder_workers(self) -> None:
        """Kill workers silent for longer than ``dirty_timeout`` or past their stop time."""
        now = time.monotonic()
        for child in self.children:
            if child.kill_sent_at is not None:
                continue
            # A worker running calls is bounded by their own timers (it may run them inline).
            busy = child.worker.in_flight > 0
            # An idle worker beats every BEAT_INTERVAL (0.5 s); a loaded machine may delay a
            # beat, so silence counts only past a floor, whatever a short dirty_timeout says.
            limit = max(self.timeout, SILENCE_FLOOR)
            if self.timeout and not busy and child.silence(now) > limit:
                self.log.error(
                    "Dirty worker (pid:%s) silent for more than %ss; killing it",
                    child.pid,
                    int(limit),
                )
                child.term_sent_at = child.term_sent_at or now
                self.kill_worker(child.pid, signal.SIGKILL)
            elif (
                child.term_sent_at is not None
                and not self.stopping
                and now - child.term_sent_at > self.cfg.dirty_graceful_timeout
            ):
                self.log.warning(
                    "Dirty worker (pid:%s) still running %ss after being asked to stop; killing it",
                    child.pid,
                    self.cfg.dirty_graceful_timeout,
                )
                self.kill_worker(child.pid, signal.SIGKILL)

    def reap_workers(self) -> None:
        respawn = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            child = self.children.pop(pid)
            if child is None:
                continue
            worker = child.worker
            report = exit_report(pid, status, killed_by_master=child.kill_sent_at is not None)
            if report is not None and not (self.stopping and child.kill_sent_at is None):
                level, line = report
                self.log.log(level, "Dirty %s", line[0].lower() + line[1:])
            elif report is None:
                self.log.info("Dirty worker exiting (pid: %s)", pid)
            self._worker_gone(worker, f"exited ({describe_status(status)})")
            child.close()
            with contextlib.suppress(OSError):
                os.unlink(worker.socket_path)
            try:
                self.cfg.dirty_worker_exit(self, worker)
            except Exception:
                self.log.exception("Exception in dirty_worker_exit hook")
            if not child.retiring:
                if time.monotonic() - child.spawned_at < self.RESPAWN_DELAY:
                    self._slot_deaths[worker.slot] = time.monotonic()
                respawn = True
        if respawn and not self.stopping:
            self.manage_workers()
        self._maybe_done()

    def _worker_gone(self, worker: DirtyWorker, reason: str) -> None:
        """The worker can take no more calls: fail the calls it was running."""
        if worker.gone:
            return
        worker.gone = True
        worker.ready = False
        if worker.link is not None:
            worker.link.close()
        self.router.rebuild([c.worker for c in self.children if c.worker is not worker])
        for task_id, task in list(self.tasks.items()):
            if task.worker is not worker:
                continue
            self._forget(task_id, task)
            action = action_of(task.raw)
            message = f"Dirty worker {worker.pid} {reason} while running {task.app_path}.{action}"
            self.log.warning("Dirty call failed: %s", message)
            self._answer_error(task.client, task.request_id, DirtyWorkerError(message, worker.pid))

    def worker_link_lost(self, worker: DirtyWorker) -> None:
        if worker.gone:
            return
        child = self.children.get(worker.pid or 0)
        self._worker_gone(worker, "closed its connection")
        if child is not None and not child.retiring:
            child.term_sent_at = time.monotonic()
            self.kill_worker(child.pid, signal.SIGKILL)

    def status(self) -> dict[str, Any]:
        """What the control socket shows: pid, workers (pid, apps), apps."""
        workers = [
            {
                "pid": c.pid,
                "age": c.worker.age,
                "slot": c.worker.slot,
                "booted": bool(c.worker.ready),
                "apps": list(c.worker.served or c.worker.app_paths),
                "in_flight": c.worker.in_flight,
            }
            for c in sorted(self.children, key=lambda c: c.worker.age)
        ]
        serving = self.router.workers_by_app
        apps = [
            {
                "import_path": app,
                "worker_count": limit,
                "current_workers": len(serving.get(app, ())),
                "error": self.app_errors.get(app),
            }
            for app, limit in self.allocation.limits.items()
        ]
        apps += [
            {"import_path": app, "worker_count": None, "current_workers": 0, "error": reason}
            for app, reason in self.app_errors.items()
            if app not in self.allocation.limits
        ]
        return {
            "pid": self.pid,
            "num_workers": self.num_workers,
            "threads": self.threads,
            "workers": workers,
            "apps": apps,
            "tasks": len(self.tasks),
            "stash_tables": len(self.stash.tables),
        }
