"""USR2: the binary upgrade. The master forks and execs a new master from the same command
line, handing over its listeners (``GUNICORN_FD``, or ``LISTEN_FDS`` under systemd).

The pidfile keeps naming the old master until it exits; the new one writes
``<pidfile>.2`` and takes the name over when it is promoted (its parent is gone), as
gunicorn does. Until then the new master runs as ``Master.2``.
"""

from __future__ import annotations

import fcntl
import os
import signal
from typing import Any

from gunicorn import osutil, systemd


def reexec(arbiter: Any) -> None:
    """Fork the new master (in the parent: remember its pid and return)."""
    if arbiter.reexec_pid != 0:
        arbiter.log.warning("USR2 signal ignored. Child exists.")
        return
    if arbiter.master_pid != 0:
        arbiter.log.warning("USR2 signal ignored. Parent exists.")
        return
    master_pid = os.getpid()
    pid = os.fork()
    if pid != 0:
        arbiter.reexec_pid = pid
        return
    try:
        _exec_new_master(arbiter, master_pid)
    finally:
        os._exit(1)


def _exec_new_master(arbiter: Any, master_pid: int) -> None:
    for sig in [*arbiter.SIGNALS, signal.SIGCHLD]:
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    arbiter.cfg.pre_exec(arbiter)
    environ = dict(getattr(arbiter.cfg, "env_orig", os.environ))
    environ["GUNICORN_PID"] = str(master_pid)
    fds = [lnr.fileno() for lnr in arbiter.LISTENERS]
    if arbiter.systemd:
        fds = move_fds(fds, systemd.SD_LISTEN_FDS_START)
        environ["LISTEN_PID"] = str(os.getpid())
        environ["LISTEN_FDS"] = str(len(fds))
        environ.pop("LISTEN_FDNAMES", None)
    else:
        environ["GUNICORN_FD"] = ",".join(str(fd) for fd in fds)
    for fd in fds:
        osutil.set_inheritable(fd)
    os.chdir(arbiter.START_CTX["cwd"])
    os.execvpe(arbiter.START_CTX[0], arbiter.START_CTX["args"], environ)


def maybe_promote(arbiter: Any) -> None:
    """A USR2 child becomes the master once its parent (the old master) is gone."""
    if arbiter.master_pid == 0 or arbiter.master_pid == os.getppid():
        return
    arbiter.log.info("Master has been promoted.")
    arbiter.master_name = "Master"
    arbiter.master_pid = 0
    arbiter.proc_name = arbiter.cfg.proc_name
    os.environ.pop("GUNICORN_PID", None)
    if arbiter.pidfile is not None and arbiter.cfg.pidfile is not None:
        try:
            arbiter.pidfile.rename(arbiter.cfg.pidfile)
        except (OSError, RuntimeError) as exc:
            arbiter.log.error("Cannot rename the pidfile: %s", exc)
    systemd.sd_notify(f"MAINPID={arbiter.pid}", arbiter.log)
    osutil.setproctitle(f"master [{arbiter.proc_name}]")


def move_fds(fds: list[int], start: int) -> list[int]:
    """Renumber ``fds`` to ``start, start + 1, ...`` (systemd's layout); returns the new list."""
    if fds == list(range(start, start + len(fds))):
        return fds
    floor = start + len(fds)
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in fds]
    for i, fd in enumerate(high):
        os.dup2(fd, start + i)
        os.close(fd)
    return list(range(start, start + len(fds)))
