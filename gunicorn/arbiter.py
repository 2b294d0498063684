"""The arbiter: the master process that binds the listeners and keeps the workers running.

Signal handlers only enqueue the signal number and wake the loop through a pipe;
the loop then calls ``handle_<name>`` (``handle_hup``, ``handle_term``...), checks
heartbeats, and spawns or retires workers to match the target count.

Workers belong to a *generation*. HUP (configuration reload) and ``--reload``
code changes start a new generation; the previous one keeps serving until the
new workers have booted and is then stopped gracefully. A new generation starts
with one worker and spawns the rest once that one booted, so a broken deploy
costs one failed worker. Until the server has booted once, a worker that cannot
boot stops it (exit 3 or 4, as gunicorn); afterwards a new generation that cannot
boot is discarded, the previous workers keep serving, and the next HUP (or code
change under ``--reload``) tries again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import random
import signal
import socket
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from gunicorn import __version__, osutil, sock, systemd, upgrade, util
from gunicorn.children import BootReports, Child, Children, describe_status, exit_report
from gunicorn.ctl.master import MasterControl
from gunicorn.errors import AppImportError, HaltServer
from gunicorn.pidfile import Pidfile
from gunicorn.workers.base import APP_LOAD_ERROR, WORKER_BOOT_ERROR, files_in_traceback

if TYPE_CHECKING:
    from gunicorn.dirty.manager import DirtyManager


def _signal_names(names: str) -> list[signal.Signals]:
    return [getattr(signal, f"SIG{name}") for name in names.split()]


class Arbiter:
    """Keeps ``num_workers`` workers alive, reacts to signals, upgrades itself on USR2."""

    WORKER_BOOT_ERROR = WORKER_BOOT_ERROR
    APP_LOAD_ERROR = APP_LOAD_ERROR

    #: Seconds the loop sleeps at most between checks.
    LOOP_INTERVAL = 1.0
    #: After a QUIT/INT during a graceful stop, workers get this long before SIGKILL.
    QUICK_STOP_TIMEOUT = 2.0
    #: Loop interval while a worker is booting (its boot flag is polled).
    BOOT_POLL_INTERVAL = 0.1

    SIGNALS = _signal_names("HUP QUIT INT TERM TTIN TTOU USR1 USR2 WINCH")
    SIG_NAMES: dict[int, str] = {s: s.name[3:].lower() for s in [*SIGNALS, signal.SIGCHLD]}
    # Signals whose repeats within one batch mean the same thing as one.
    _COALESCED = frozenset({signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGWINCH})

    def __init__(self, app: Any) -> None:
        os.environ["SERVER_SOFTWARE"] = f"gunicorn/{__version__}"
        self.log: Any = None
        self.LISTENERS: list[Any] = []
        self.PIPE: list[int] = []
        self.SIG_QUEUE: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.children = Children()
        self.generation = 0
        self.pidfile: Pidfile | None = None
        self.systemd = False
        self.worker_age = 0
        self.reexec_pid = 0
        self.master_pid = 0
        self.master_name = "Master"
        self.pid = os.getpid()
        self._num_workers: int | None = None
        self._last_logged_active_worker_count: int | None = None
        self._watchdog_interval = systemd.watchdog_interval()
        self._last_watchdog = 0.0
        self.boot_reports: BootReports | None = None
        #: True once a full set of workers has booted: from then on a boot failure no
        #: longer stops the server.
        self.booted_once = False
        #: Set when workers cannot boot while others keep serving: no new worker is
        #: spawned until the next HUP or code change.
        self.boot_failure: HaltServer | None = None
        #: Files named by the last boot failure's traceback (``--reload``), with mtimes.
        self._failed_files: dict[str, float] = {}
        #: Unix socket paths found removed that could not be bound again (warned once).
        self._lost_paths: set[str | None] = set()
        #: The control socket, the metrics endpoint and the metric totals (gunicorn/ctl/).
        self.ctl = MasterControl(self)

        #: The dirty arbiter's manager (gunicorn/dirty/), when dirty workers are enabled.
        self.dirty: DirtyManager | None = None

        args = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
        args[0] = sys.executable
        self.START_CTX: dict[Any, Any] = {"args": args, "cwd": util.getcwd(), 0: sys.executable}
        self.setup(app)

    # -- configuration ---------------------------------------------------------------------

    @property
    def WORKERS(self) -> dict[int, Any]:
        """pid -> worker object for every live worker."""
        return self.children.workers()

    @property
    def num_workers(self) -> int:
        return self._num_workers or 0

    @num_workers.setter
    def num_workers(self, value: int) -> None:
        old = self._num_workers
        self._num_workers = value
        self.cfg.nworkers_changed(self, value, old)

    def setup(self, app: Any) -> None:
        """Take the settings of ``app.cfg`` (at start and after HUP)."""
        self.app = app
        self.cfg = app.cfg
        if self.log is None:
            self.log = self.cfg.logger_class(app.cfg)
            if hasattr(app, "logger"):
                app.logger = self.log
        if "GUNICORN_FD" in os.environ:
            self.log.reopen_files()
        for warning in self.cfg.warnings:
            self.log.warning("%s", warning)
        self.worker_class = self.cfg.worker_class
        self.address = self.cfg.address
        self.num_workers = self.cfg.workers
        self.timeout = self.cfg.timeout
        self.proc_name = self.cfg.proc_name
        if self.master_pid:
            self.proc_name += ".2"
        self.log.debug(
            "Current configuration:\n%s",
            "\n".join(
                f"  {name}: {setting.value}" for name, setting in sorted(self.cfg.settings.items())
            ),
        )
        for key, value in self.cfg.env.items():
            os.environ[key] = value
        if self.cfg.preload_app:
            self._preload()

    def _preload(self) -> None:
        """Load the app in the master (``--preload``); any failure exits 1, as gunicorn."""
        try:
            self.app.wsgi()
        except AppImportError as exc:
            # The one-line reason is printed as "Error: ..." on the way out.
            self.log_app_error(exc, summary=False)
            raise HaltServer(str(exc), 1) from exc
        except Exception as exc:
            self.log.exception("Exception while loading the application")
            raise HaltServer(f"{type(exc).__name__}: {exc}", 1) from exc

    def log_app_error(self, exc: AppImportError, summary: bool = True) -> None:
        """Log why the app could not be loaded: its own frames, then the one-line reason."""
        self.log.debug("Exception while loading the application", exc_info=True)
        details = getattr(exc, "details", "")
        if details:
            self.log.error("%s", details.rstrip("\n"))
        if summary:
            self.log.error("%s", exc)

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        """Write the pidfile, install signals, bind (or inherit) listeners."""
        self.log.info("Starting gunicorn %s", __version__)
        if "GUNICORN_PID" in os.environ:
            self.master_pid = int(os.environ["GUNICORN_PID"])
            self.proc_name = self.cfg.proc_name + ".2"
            self.master_name = "Master.2"
        self.pid = os.getpid()
        if self.cfg.pidfile is not None:
            name = self.cfg.pidfile + (".2" if self.master_pid else "")
            pidfile = Pidfile(name)
            pidfile.create(self.pid)
            self.pidfile = pidfile
        self.cfg.on_starting(self)
        self.init_signals()
        self.boot_reports = BootReports()
        try:
            self._create_listeners()
        except (sock.BindError, OSError) as exc:
            self.halt(reason=str(exc), exit_status=1)

        self.log.debug("Arbiter booted")
        self.log.info("Listening at: %s (%s)", self._listeners_str(), self.pid)
        self.log.info("Using worker: %s", self.cfg.worker_class_str)
        systemd.sd_notify("READY=1\nSTATUS=Gunicorn arbiter booted", self.log)
        if hasattr(self.worker_class, "check_config"):
            self.worker_class.check_config(self.cfg, self.log)
        if int(self.cfg.dirty_workers) > 0 and self.cfg.dirty_apps:
            # Imported only when used: it brings asyncio, which a master without dirty
            # workers (and its sync or gthread workers) never needs.
            from gunicorn.dirty.manager import DirtyManager

            self.dirty = DirtyManager.start(self)
        self.cfg.when_ready(self)

    def _create_listeners(self) -> None:
        if self.LISTENERS:
            return
        fds: list[int] | None = None
        count = systemd.listen_fds()
        if count:
            self.systemd = True
            fds = list(range(systemd.SD_LISTEN_FDS_START, systemd.SD_LISTEN_FDS_START + count))
        elif self.master_pid and os.environ.get("GUNICORN_FD"):
            fds = [int(fd) for fd in os.environ.pop("GUNICORN_FD").split(",") if fd]
        addresses = None
        if fds is None and self._per_worker_ports():
            addresses = [a for a in self.cfg.address if not isinstance(a, tuple)]
        self.LISTENERS = sock.create_sockets(
            self.cfg, self.log, fds=fds, systemd=self.systemd, addresses=addresses
        )

    def _per_worker_ports(self) -> bool:
        """reuse_port: each worker binds its own TCP listeners (the kernel balances)."""
        return bool(self.cfg.reuse_port) and hasattr(socket, "SO_REUSEPORT") and not self.systemd

    def _listeners_str(self) -> str:
        shown = [str(listener) for listener in self.LISTENERS]
        if self._per_worker_ports():
            scheme = "https" if self.cfg.is_ssl else "http"
            for addr in self.cfg.address:
                if isinstance(addr, tuple):
                    host = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
                    shown.append(f"{scheme}://{host}:{addr[1]}")
        return ",".join(shown)

    def init_signals(self) -> None:
        """Install handlers that only enqueue; a pipe wakes the loop."""
        for fd in self.PIPE:
            os.close(fd)
        self.PIPE = list(os.pipe())
        for fd in self.PIPE:
            osutil.set_non_blocking(fd)
            osutil.close_on_exec(fd)
        for sig in [*self.SIGNALS, signal.SIGCHLD]:
            signal.signal(sig, self.signal)
        signal.set_wakeup_fd(self.PIPE[1], warn_on_full_buffer=False)

    def wakeup(self) -> None:
        """Wake the main loop."""
        if self.PIPE:
            with contextlib.suppress(OSError):
                os.write(self.PIPE[1], b".")

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Start and supervise until stopped; exits the process."""
        self.start()
        osutil.setproctitle(f"master [{self.proc_name}]")
        try:
            self.ctl.start()
            self.manage_workers()
            while True:
                self.maybe_promote_master()
                for sig in self._wait_signals(self._loop_timeout()):
                    self._dispatch(sig)
                self.reap_workers()
                self.check_children()
                self.murder_workers()
                if self.dirty is not None:
                    self.dirty.check()
                self.manage_workers()
                self.check_listeners()
                self._ping_watchdog()
        except (StopIteration, KeyboardInterrupt):
            self.halt()
        except HaltServer as inst:
            self.halt(reason=inst.reason, exit_status=inst.exit_status)
        except SystemExit:
            raise
        except Exception:
            self.log.error("Unhandled exception in main loop", exc_info=True)
            self.stop(False)
            if self.pidfile is not None:
                self.pidfile.unlink()
            sys.exit(-1)

    def _loop_timeout(self) -> float:
        timeout = self.LOOP_INTERVAL
        if any(not c.booted and not c.retiring for c in self.children):
            timeout = self.BOOT_POLL_INTERVAL
        beats = [c.last_heartbeat for c in self.children if c.booted and not c.retiring]
        if self.timeout and beats:
            # Wake up when the quietest worker reaches ``timeout``, not up to a turn later.
            due = min(beats) + self.timeout - time.monotonic() + 0.01
            timeout = min(timeout, max(due, 0.05))
        if self._watchdog_interval is not None:
            return min(timeout, self._watchdog_interval)
        return timeout

    def _wait_signals(self, timeout: float) -> list[int]:
        """Signals received, waiting up to ``timeout`` seconds for the first one."""
        if self.SIG_QUEUE.empty():
            try:
                self.ctl.wait(self.PIPE[0], timeout)  # also serves the control socket
            except OSError as exc:  # pragma: no cover - select is retried on EINTR
                if exc.errno != errno.EINTR:
                    raise
        try:
            while os.read(self.PIPE[0], 4096):
                pass
        except BlockingIOError:
            pass
        batch: list[int] = []
        while not self.SIG_QUEUE.empty():
            sig = self.SIG_QUEUE.get_nowait()
            if sig in self._COALESCED and sig in batch:
                continue
            batch.append(sig)
        return batch

    def _dispatch(self, sig: int) -> None:
        name = self.SIG_NAMES.get(sig)
        if name is None:
            self.log.info("Ignoring unknown signal: %s", sig)
            return
        handler = getattr(self, f"handle_{name}", None)
        if handler is None:
            self.log.error("Unhandled signal: %s", name)
            return
        if sig != signal.SIGCHLD:
            self.log.info("Handling signal: %s", name)
        handler()

    def _ping_watchdog(self) -> None:
        if self._watchdog_interval is None:
            return
        now = time.monotonic()
        if now - self._last_watchdog >= self._watchdog_interval:
            self._last_watchdog = now
            systemd.sd_notify("WATCHDOG=1", self.log)

    # -- signal handlers (run from the loop) ----------------------------------------------

    def handle_chld(self) -> None:
        self.reap_workers()

    def handle_hup(self) -> None:
        """Reload the configuration and replace the workers gracefully."""
        self.log.info("Hang up: %s", self.master_name)
        self.reload()
        if self.dirty is not None:
            self.dirty.forward(signal.SIGHUP)

    def handle_term(self) -> None:
        """Graceful stop."""
        raise StopIteration

    def handle_int(self) -> None:
        """Quick stop."""
        self.stop(False)
        raise StopIteration

    def handle_quit(self) -> None:
        """Quick stop."""
        self.stop(False)
        raise StopIteration

    def handle_ttin(self) -> None:
        """One more worker."""
        self.num_workers += 1
        self.manage_workers()

    def handle_ttou(self) -> None:
        """One worker less (never below one)."""
        if self.num_workers <= 1:
            return
        self.num_workers -= 1
        self.manage_workers()

    def handle_usr1(self) -> None:
        """Reopen log files here and in the workers."""
        self.log.reopen_files()
        self.kill_workers(signal.SIGUSR1)
        if self.dirty is not None:
            self.dirty.forward(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        """Start a new master from the same command line, handing over the listeners."""
        self.reexec()

    def handle_winch(self) -> None:
        """Stop the workers gracefully when daemonized (the old master of an upgrade)."""
        if self.cfg.daemon:
            self.log.info("graceful stop of workers")
            self.num_workers = 0
            self.kill_workers(signal.SIGTERM)
        else:
            self.log.debug("SIGWINCH ignored. Not daemonized")

    # -- stop ------------------------------------------------------------------------------

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        """Stop everything, run ``on_exit`` and exit with ``exit_status``."""
        systemd.sd_notify("STOPPING=1", self.log)
        self.stop()
        log = self.log.info if exit_status == 0 else self.log.error
        log("Shutting down: %s", self.master_name)
        if reason is not None:
            log("Reason: %s", reason)
        if self.pidfile is not None:
            self.pidfile.unlink()
        self.cfg.on_exit(self)
        sys.exit(exit_status)

    def stop(self, graceful: bool = True) -> None:
        """Close the listeners and stop the workers (TERM, or QUIT when not graceful).

        Workers get ``graceful_timeout`` seconds (a QUIT/INT meanwhile cuts it to
        ``QUICK_STOP_TIMEOUT``), then SIGKILL. Unix socket files are removed unless
        a new master (USR2) or systemd owns them.
        """
        unlink = (
            self.reexec_pid == self.master_pid == 0 and not self.systemd and not self.cfg.reuse_port
        )
        sock.close_sockets(self.LISTENERS, unlink)
        self.LISTENERS = []
        deadline = time.monotonic() + self.cfg.graceful_timeout
        self.kill_workers(signal.SIGTERM if graceful else signal.SIGQUIT)
        while len(self.children) and time.monotonic() < deadline:
            for sig in self._wait_signals(0.1) if self.PIPE else []:
                if graceful and sig in (signal.SIGINT, signal.SIGQUIT):
                    graceful = False
                    self.log.info("Quick shutdown requested")
                    self.kill_workers(signal.SIGQUIT)
                    deadline = min(deadline, time.monotonic() + self.QUICK_STOP_TIMEOUT)
            if not self.PIPE:
                time.sleep(0.1)
            self.reap_workers(stopping=True)
        if len(self.children):
            self.kill_workers(signal.SIGKILL)
            end = time.monotonic() + 1.0
            while len(self.children) and time.monotonic() < end:
                self.reap_workers(stopping=True)
                time.sleep(0.02)
        if self.dirty is not None:
            self.dirty.stop(graceful)

    # -- reload (HUP) ----------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the configuration; on success start a new generation of workers."""
        old_address = self.address
        old_cfg = self.cfg
        old_env = self.cfg.env
        self._restore_env(old_env)
        try:
            self.app.reload()
        except Exception as exc:
            self.log.error("%s", " ".join(str(exc).split()) or type(exc).__name__)
            for key, value in old_env.items():
                os.environ[key] = value
            return
        except SystemExit:
            self.log.error("Reload failed (invalid configuration); keeping the current one")
            for key, value in old_env.items():
                os.environ[key] = value
            return
        try:
            self.setup(self.app)
        except Exception:
            self.log.exception("Reload failed, keeping the current configuration")
            self.app.cfg = old_cfg
            self.setup(self.app)
            return
        self.log.reopen_files()
        if old_address != self.cfg.address:
            self._rebind()
        self.cfg.on_reload(self)
        if self.pidfile is not None:
            self.pidfile.unlink()
            self.pidfile = None
        if self.cfg.pidfile is not None:
            pidfile = Pidfile(self.cfg.pidfile + (".2" if self.master_pid else ""))
            try:
                pidfile.create(self.pid)
                self.pidfile = pidfile
            except RuntimeError as exc:
                self.log.error("%s", exc)
        osutil.setproctitle(f"master [{self.proc_name}]")
        self.start_generation()

    def _restore_env(self, env: dict[str, str]) -> None:
        original = getattr(self.cfg, "env_orig", {})
        for key in env:
            if key in original:
                os.environ[key] = original[key]
            else:
                os.environ.pop(key, None)

    def _rebind(self) -> None:
        """Listen on the new ``bind`` list: keep unchanged listeners, bind new, close removed."""
        wanted = self.cfg.address
        keep = [lnr for lnr in self.LISTENERS if lnr.cfg_addr in wanted]
        kept_addrs = [lnr.cfg_addr for lnr in keep]
        new_addrs = [a for a in wanted if a not in kept_addrs]
        if self._per_worker_ports():
            new_addrs = [a for a in new_addrs if not isinstance(a, tuple)]
        try:
            added = (
                sock.create_sockets(self.cfg, self.log, addresses=new_addrs) if new_addrs else []
            )
        except (sock.BindError, OSError) as exc:
            self.log.error("Cannot listen on the new addresses, keeping the old ones: %s", exc)
            return
        removed = [lnr for lnr in self.LISTENERS if lnr not in keep]
        unlink = self.reexec_pid == self.master_pid == 0 and not self.systemd
        sock.close_sockets(removed, unlink=unlink)
        self.LISTENERS = keep + added
        self.log.info("Listening at: %s", self._listeners_str())

    def check_listeners(self) -> None:
        """A unix socket file removed (or replaced) under the running server is bound
        again and handed to a new generation of workers, as a HUP would; the current
        workers finish what they hold. Logged once per loss. Left alone during a USR2
        upgrade (both masters share the listeners) and for sockets systemd made."""
        if self.reexec_pid or self.master_pid:
            return
        for listener in sock.lost_unix_paths(self.LISTENERS):
            path = listener.path
            try:
                if listener.inherited:
                    raise sock.BindError("it is not ours to re-create")
                fresh = sock.UnixSocket(listener.cfg_addr, self.cfg, self.log)
            except (sock.BindError, OSError) as exc:
                if path not in self._lost_paths:
                    self._lost_paths.add(path)
                    self.log.warning(
                        "Unix socket %s was removed; cannot listen there: %s", path, exc
                    )
                continue
            self._lost_paths.discard(path)
            self.log.warning("Unix socket %s was removed; listening there again", path)
            self.LISTENERS = [fresh if lnr is listener else lnr for lnr in self.LISTENERS]
            listener.close()  # the current workers keep their own copy until they stop
            self.start_generation()

    def start_generation(self) -> None:
        """Spawn new workers; the current ones stop once a full set of these booted."""
        for child in self.children:
            child.clear_reload_request()
        self.boot_failure = None
        self._failed_files = {}
        self.generation += 1
        self.manage_workers()

    # -- upgrade (USR2): gunicorn/upgrade.py ----------------------------------------------

    def reexec(self) -> None:
        """Fork and exec a new master that inherits the listeners."""
        upgrade.reexec(self)

    def maybe_promote_master(self) -> None:
        """A USR2 child becomes the master once its parent (the old master) is gone."""
        upgrade.maybe_promote(self)

    # -- workers ---------------------------------------------------------------------------

    def manage_workers(self) -> None:
        """Spawn or retire workers so the current generation has ``num_workers``."""
        serving = self.children.serving(self.generation)
        missing = self.num_workers - len(serving)
        if missing > 0 and self.boot_failure is not None:
            if not serving and not self.children.older(self.generation):
                raise self.boot_failure  # nothing left serving: stop as at first boot
            missing = 0
        if missing > 0 and self.children.older(self.generation):
            # A new generation proves itself with one worker before the rest start.
            missing = missing if any(c.booted for c in serving) else 1 - len(serving)
        if missing > 0:
            self.spawn_workers(missing)
            serving = self.children.serving(self.generation)
        while len(serving) > self.num_workers:
            self.retire(serving.pop(0))
        older = self.children.older(self.generation)
        booted = sum(1 for c in serving if c.booted)
        full = booted >= self.num_workers and not any(c.broken for c in serving)
        if full and not self.booted_once:
            self.booted_once = True
            self.log.debug("All %s workers booted", booted)
        if older and booted >= self.num_workers:
            for child in older:
                self.retire(child)
        active = len(serving)
        if self._last_logged_active_worker_count != active:
            self._last_logged_active_worker_count = active
            self.log.debug(
                f"{active} workers",
                extra={"metric": "gunicorn.workers", "value": active, "mtype": "gauge"},
            )

    def spawn_workers(self, count: int | None = None) -> None:
        """Spawn ``count`` workers (default: up to ``num_workers``), a little apart."""
        if count is None:
            count = self.num_workers - len(self.children.serving(self.generation))
        for i in range(count):
            self.spawn_worker()
            if i + 1 < count:
                time.sleep(0.1 * random.random())

    def _working_children(self) -> list[Child]:
        """Workers serving the application (booted, not broken, not asked to stop)."""
        return [c for c in self.children if c.booted and not c.broken and not c.retiring]

    def spawn_worker(self) -> int:
        """Fork one worker; returns its pid in the master (never returns in the child)."""
        self.worker_age += 1
        worker = self.worker_class(
            self.worker_age,
            self.pid,
            self.LISTENERS,
            self.app,
            self.timeout / 2.0,
            self.cfg,
            self.log,
        )
        # While other workers serve, a load failure must end this one (never an error page).
        worker.serve_load_errors = not self._working_children()
        if self._per_worker_ports() and hasattr(worker, "own_addresses"):
            # reuse_port: the worker binds its TCP listeners once its app has loaded.
            worker.own_addresses = [a for a in self.cfg.address if isinstance(a, tuple)]
        self.cfg.pre_fork(self, worker)
        # Until the child has dropped the master's handlers, a signal sent to it (a TERM
        # from a TTOU right after this TTIN) would be swallowed by them: hold signals.
        handled = [*self.SIGNALS, signal.SIGCHLD]
        signal.pthread_sigmask(signal.SIG_BLOCK, handled)
        try:
            pid = os.fork()
        finally:
            if os.getpid() == self.pid:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
        if pid != 0:
            worker.pid = pid
            child = Child(pid=pid, worker=worker, generation=self.generation)
            child.refresh()
            self.children.add(child)
            return pid
        self._run_worker(worker)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_worker(self, worker: Any) -> None:
        """In the forked child: become ``worker`` and exit with its status."""
        handled = [*self.SIGNALS, signal.SIGCHLD]
        for sig in handled:
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)  # blocked across the fork
        for fd in self.PIPE:
            os.close(fd)
        self.PIPE = []
        for child in self.children:
            child.close()
        if self.boot_reports is not None:
            self.boot_reports.close_reader()
        worker.pid = os.getpid()
        try:
            osutil.setproctitle(f"worker [{self.proc_name}]")
            self.log.info("Booting worker with pid: %s", worker.pid)
            if self._per_worker_ports() and not hasattr(worker, "own_addresses"):
                # A worker class not built on gunicorn's base: bind for it now.
                tcp = [a for a in self.cfg.address if isinstance(a, tuple)]
                own = sock.create_sockets(self.cfg, self.log, addresses=tcp)
                worker.sockets = [*worker.sockets, *own]
            self.cfg.post_fork(self, worker)
            if self.cfg.reload:
                from gunicorn.reloader import make_reloader

                worker.reloader = make_reloader(
                    self.cfg.reload_engine, self.cfg.reload_extra_files, worker.reload_requested
                )
            worker.init_process()
            sys.exit(0)
        except SystemExit:
            raise
        except AppImportError as exc:
            self.log_app_error(exc)
            self._report_boot_failure(worker, exc)
            sys.exit(getattr(exc, "exit_status", self.APP_LOAD_ERROR))
        except Exception as exc:
            self.log.exception("Exception in worker process")
            if not worker.booted:
                self._report_boot_failure(worker, exc)
                sys.exit(self.WORKER_BOOT_ERROR)
            sys.exit(-1)
        finally:
            self.log.info("Worker exiting (pid: %s)", worker.pid)
            try:
                worker.tmp.close()
                self.cfg.worker_exit(self, worker)
            except Exception:
                self.log.warning("Exception during worker exit:\n%s", traceback.format_exc())

    def _report_boot_failure(self, worker: Any, exc: BaseException) -> None:
        if self.boot_reports is None:
            return
        summary = str(exc) if isinstance(exc, AppImportError) else f"{type(exc).__name__}: {exc}"
        summary = " ".join(summary.split())
        self.boot_reports.send(worker.pid, summary, files_in_traceback(exc))

    def retire(self, child: Child, sig: int = signal.SIGTERM) -> None:
        """Ask a worker to stop (gracefully by default)."""
        if child.term_sent_at is None:
            child.term_sent_at = time.monotonic()
        self.kill_worker(child.pid, sig)

    def kill_workers(self, sig: int) -> None:
        """Send ``sig`` to every worker."""
        for child in self.children:
            if sig in (signal.SIGTERM, signal.SIGQUIT) and child.term_sent_at is None:
                child.term_sent_at = time.monotonic()
            self.kill_worker(child.pid, sig)

    def kill_worker(self, pid: int, sig: int) -> None:
        """Send ``sig`` to one worker; a worker already gone is forgotten."""
        try:
            os.kill(pid, sig)
            if sig == signal.SIGKILL:
                child = self.children.get(pid)
                if child is not None:
                    child.kill_sent_at = time.monotonic()
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise
            child = self.children.pop(pid)
            if child is not None:
                child.close()
                self.cfg.worker_exit(self, child.worker)

    def check_children(self) -> None:
        """Read heartbeat files: boot state, broken reloads, code-reload requests."""
        reload_wanted = False
        for child in self.children:
            child.refresh()
            if child.retiring or child.generation != self.generation:
                continue
            if child.reload_requested:
                reload_wanted = True
        if self._failed_files and self._failed_files_changed():
            reload_wanted = True
        if reload_wanted:
            self.log.info("Code changed: starting new workers")
            self.start_generation()

    def _failed_files_changed(self) -> bool:
        for path, mtime in self._failed_files.items():
            try:
                if os.stat(path).st_mtime != mtime:
                    return True
            except OSError:
                return True
        return False

    def _roll_back(self) -> bool:
        """New workers could not boot: keep serving with the previous ones.

        Returns False when there is no previous working generation to go back to.
        """
        previous = [c for c in self.children.older(self.generation) if not c.broken]
        if not any(c.booted for c in previous):
            return False
        for child in self.children.serving(self.generation):
            self.retire(child, signal.SIGQUIT)
        self.generation += 1
        for child in previous:
            child.generation = self.generation
            child.clear_reload_request()
        return True

    def murder_workers(self) -> None:
        """Kill workers silent for longer than ``timeout`` (ABRT, then KILL one loop turn
        later, or ``timeout`` later whatever they do) and workers that outlived
        ``graceful_timeout`` after being asked to stop."""
        now = time.monotonic()
        for child in self.children:
            if child.kill_sent_at is not None:
                continue
            worker = child.worker
            if child.abort_sent_at is not None and now - child.abort_sent_at > self.timeout:
                # Aborted but still alive (e.g. its clean-up keeps beating): no more waiting.
                self.kill_worker(child.pid, signal.SIGKILL)
                continue
            if self.timeout and child.silence(now) > self.timeout:
                if not worker.aborted:
                    self.log.critical("WORKER TIMEOUT (pid:%s)", child.pid)
                    worker.aborted = True
                    child.abort_sent_at = now
                    self.kill_worker(child.pid, signal.SIGABRT)
                elif child.abort_sent_at is None or now - child.abort_sent_at >= 1.0:
                    self.kill_worker(child.pid, signal.SIGKILL)
                continue
            if (
                child.term_sent_at is not None
                and now - child.term_sent_at > self.cfg.graceful_timeout
            ):
                self.log.warning(
                    "Worker (pid:%s) still running %ss after being asked to stop; killing it",
                    child.pid,
                    self.cfg.graceful_timeout,
                )
                self.kill_worker(child.pid, signal.SIGKILL)

    def reap_workers(self, stopping: bool = False) -> None:
        """Collect exited children; a worker that could not boot may halt the arbiter."""
        halt: HaltServer | None = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            if pid == self.reexec_pid:
                self._reexec_child_exited(status)
                continue
            if self.dirty is not None and self.dirty.reaped(pid, status):
                continue
            child = self.children.pop(pid)
            if child is None:
                self.log.debug("Reaped unknown child process (pid:%s, status:%s)", pid, status)
                continue  # not ours (orphans re-parented to us when we are PID 1)
            report = exit_report(pid, status, killed_by_master=child.kill_sent_at is not None)
            if report is not None:
                level, line = report
                log = {logging.ERROR: self.log.error, logging.WARNING: self.log.warning}
                log.get(level, self.log.info)(line)
            child.refresh()  # the boot flag it set just before exiting, if any
            child.close()
            self.ctl.worker_exited(child, status, stopping)
            self.cfg.child_exit(self, child.worker)
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            if code in (self.WORKER_BOOT_ERROR, self.APP_LOAD_ERROR) and not stopping:
                stop = self._boot_failed(child, code)
                halt = halt or stop
        if halt is not None:
            raise halt

    def _boot_failed(self, child: Child, code: int) -> HaltServer | None:
        """A worker could not boot. Before the first full boot this stops the server, as in
        gunicorn; afterwards a new generation is rolled back to the previous workers, or,
        when the failure is in the serving generation, no more workers are started until
        the next HUP. Returns the HaltServer to raise, if any."""
        if code == self.WORKER_BOOT_ERROR:
            halt = HaltServer("Worker failed to boot.", self.WORKER_BOOT_ERROR)
        else:
            halt = HaltServer("App failed to load.", self.APP_LOAD_ERROR)
        failure = self.boot_reports.pop(child.pid) if self.boot_reports is not None else None
        if child.retiring or (child.booted and not child.broken):
            return None  # asked to stop while booting, or it had booted: not a boot failure
        first_boot = child.generation == 0 and not self.booted_once
        if first_boot or not self._working_children():
            return halt
        if child.generation != self.generation:
            return None  # a newer generation (another HUP) has replaced it already
        reason = failure.summary if failure is not None else halt.reason
        retry = "code change" if self.cfg.reload else "HUP"
        if self._roll_back():
            self.log.error(
                "New workers failed to boot; the previous workers keep serving until the "
                "next %s: %s",
                retry,
                reason,
            )
        elif self.boot_failure is None:
            self.log.error(
                "A worker failed to boot; no worker is started until the next %s: %s",
                retry,
                reason,
            )
        self.boot_failure = halt
        if self.cfg.reload and failure is not None:
            self._watch_failed_files(failure.files)
        return None

    def _watch_failed_files(self, files: tuple[str, ...]) -> None:
        """Under ``--reload``, a change to a file of the failure's traceback retries."""
        for path in files:
            try:
                self._failed_files[path] = os.stat(path).st_mtime
            except OSError:
                continue

    def _reexec_child_exited(self, status: int) -> None:
        self.reexec_pid = 0
        self.log.info("New master (USR2) exited with status %s", describe_status(status))

    # Defined last: inside the class body this name would hide the ``signal`` module.
    def signal(self, sig: int, frame: Any) -> None:
        """Signal handler: enqueue only (the loop does the work)."""
        self.SIG_QUEUE.put(sig)
