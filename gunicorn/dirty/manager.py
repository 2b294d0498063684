"""The master's side of the dirty arbiter: fork it, watch it, forward signals, stop it.

The dirty arbiter is a managed child like an HTTP worker: a :class:`~gunicorn.children.Child`
record with a heartbeat file, respawned when it dies, stopped gracefully then killed.
The socket directory is created once by the master, so ``$GUNICORN_DIRTY_SOCKET`` (which
the HTTP workers inherit) stays valid across respawns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

from gunicorn import osutil
from gunicorn.children import Child, exit_report
from gunicorn.dirty import protocol
from gunicorn.dirty.arbiter import DirtyArbiter
from gunicorn.dirty.client import SOCKET_ENV, DirtyClient
from gunicorn.dirty.errors import DirtyError
from gunicorn.dirty.pidfile import cleanup_orphan, pidfile_path
from gunicorn.workers.workertmp import WorkerTmp

#: Settings whose change on HUP needs a new dirty arbiter (not just new dirty workers).
_RESTART_SETTINGS = ("dirty_apps", "dirty_workers", "dirty_threads", "dirty_timeout")


class DirtyManager:
    """Keeps one dirty arbiter running for the master ``arbiter``."""

    #: Seconds between two spawns when the dirty arbiter keeps dying.
    RESPAWN_DELAY = 1.0

    def __init__(self, arbiter: Any) -> None:
        self.arbiter = arbiter
        self.log = arbiter.log
        self.tmpdir = tempfile.mkdtemp(prefix="gunicorn-dirty-")
        os.chmod(self.tmpdir, 0o700)
        uid, gid = self.cfg.uid, self.cfg.gid
        if uid != os.geteuid() or gid != os.getegid():
            osutil.chown(self.tmpdir, uid, gid)
        self.socket_path = os.path.join(self.tmpdir, "arbiter.sock")
        self.pidfile = pidfile_path(arbiter.proc_name)
        os.environ[SOCKET_ENV] = self.socket_path
        self.child: Child | None = None
        self.stopped = False
        self._last_spawn = 0.0
        self._settings = self._dirty_settings()

    @property
    def cfg(self) -> Any:
        """The master's current settings (a HUP may have replaced them)."""
        return self.arbiter.cfg

    @classmethod
    def create(cls, arbiter: Any) -> DirtyManager | None:
        """A manager when dirty workers are enabled (workers > 0 and apps), else None."""
        cfg = arbiter.cfg
        if int(cfg.dirty_workers) <= 0 or not cfg.dirty_apps:
            return None
        return cls(arbiter)

    @classmethod
    def start(cls, arbiter: Any) -> DirtyManager | None:
        """Create the manager and spawn the dirty arbiter (None when not enabled)."""
        manager = cls.create(arbiter)
        if manager is not None:
            manager.spawn()
        return manager

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def _dirty_settings(self) -> tuple[Any, ...]:
        return tuple(repr(getattr(self.cfg, name)) for name in _RESTART_SETTINGS)

    # -- lifecycle ------------------------------------------------------------------------

    def spawn(self) -> int:
        """Fork the dirty arbiter; returns its pid in the master."""
        if self._last_spawn == 0.0:
            cleanup_orphan(self.pidfile, self.log)
        self._last_spawn = time.monotonic()
        dirty = DirtyArbiter(self.cfg, self.log, self.socket_path, self.pidfile)
        dirty.tmp = WorkerTmp(self.cfg)
        master = self.arbiter
        pid = os.fork()
        if pid != 0:
            self.child = Child(pid=pid, worker=dirty)
            self.child.refresh()
            self.log.info("Booting dirty arbiter with pid: %s", pid)
            return pid
        self._run_child(master, dirty)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_child(self, master: Any, dirty: DirtyArbiter) -> None:
        """In the forked process: drop the master's handles and run the dirty arbiter."""
        code = 0
        try:
            for sig in [*master.SIGNALS, signal.SIGCHLD]:
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for fd in master.PIPE:
                with contextlib.suppress(OSError):
                    os.close(fd)
            for listener in master.LISTENERS:
                with contextlib.suppress(OSError):
                    os.close(listener.fileno())
            for child in master.children:
                child.close()
            if master.boot_reports is not None:
                master.boot_reports.close()
            osutil.set_owner_process(self.cfg.uid, self.cfg.gid, initgroups=self.cfg.initgroups)
            dirty.run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            self.log.error("Exception in the dirty arbiter:\n%s", traceback.format_exc())
            code = 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def check(self) -> None:
        """From the master's loop: respawn a dead dirty arbiter, kill a silent one."""
        if self.stopped:
            return
        child = self.child
        if child is None:
            if time.monotonic() - self._last_spawn >= self.RESPAWN_DELAY:
                self.spawn()
            return
        if child.kill_sent_at is not None:
            return
        timeout = self.arbiter.timeout
        if timeout and child.silence(time.monotonic()) > timeout:
            self.log.critical("DIRTY ARBITER TIMEOUT (pid:%s); killing it", child.pid)
            self._kill(signal.SIGKILL)

    def reaped(self, pid: int, status: int) -> bool:
        """The master reaped ``pid``: True if it was the dirty arbiter (then forgotten)."""
        child = self.child
        if child is None or child.pid != pid:
            return False
        self.child = None
        child.close()
        report = exit_report(pid, status, killed_by_master=child.kill_sent_at is not None)
        if report is not None:
            level, line = report
            self.log.log(level, "Dirty arbiter%s", line[len("Worker") :])
        else:
            self.log.info("Dirty arbiter exited (pid: %s)", pid)
        return True

    def forward(self, sig: int) -> None:
        """Pass a master signal on (HUP: recycle dirty workers; USR1: reopen logs)."""
        if sig == signal.SIGHUP and self._settings != self._dirty_settings():
            self._settings = self._dirty_settings()
            self.log.info("Dirty settings changed: restarting the dirty arbiter")
            self._kill(signal.SIGTERM)
            return
        self._kill(sig)

    def _kill(self, sig: int) -> None:
        child = self.child
        if child is None:
            return
        try:
            os.kill(child.pid, sig)
        except ProcessLookupError:
            return
        now = time.monotonic()
        if sig == signal.SIGKILL:
            child.kill_sent_at = now
        elif sig in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT):
            child.term_sent_at = child.term_sent_at or now

    def stop(self, graceful: bool = True) -> None:
        """Stop the dirty arbiter and wait for it (graceful timeout, then SIGKILL)."""
        self.stopped = True
        child = self.child
        if child is not None:
            self._kill(signal.SIGTERM if graceful else signal.SIGQUIT)
            limit = float(self.cfg.dirty_graceful_timeout) if graceful else 3.0
            if not self._wait_exit(child.pid, limit + 1.0):
                self._kill(signal.SIGKILL)
                self._wait_exit(child.pid, 2.0)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if os.environ.get(SOCKET_ENV) == self.socket_path:
            del os.environ[SOCKET_ENV]

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.child is not None and self.child.pid == pid:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.child = None
                return True
            if done:
                self.reaped(pid, status)
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- control --------------------------------------------------------------------------

    def _call(self, build: Any, what: str) -> Any:
        with DirtyClient(self.socket_path, timeout=5.0) as client:
            return client.roundtrip(build, what)

    def scale(self, delta: int) -> int:
        """Add (delta > 0) or remove dirty workers; returns the new target count."""
        op = protocol.MANAGE_OP_ADD if delta >= 0 else protocol.MANAGE_OP_REMOVE
        count = abs(delta)
        result = self._call(lambda rid: protocol.encode_manage(rid, op, count), "dirty scale")
        return int(result["target"])

    def info(self) -> dict[str, Any]:
        """The dirty arbiter's pid, its workers (pid, apps) and apps."""
        try:
            status = dict(self._call(protocol.encode_status, "dirty status"))
        except DirtyError as exc:
            return {"pid": self.pid, "workers": [], "apps": [], "error": str(exc)}
        status["pid"] = self.pid
        return status
