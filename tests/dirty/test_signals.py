"""Signals, hooks and orphan clean-up of the dirty arbiter, on a real server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import parse_url, wait_until

from gunicorn.dirty.pidfile import pidfile_path

ECHO = "dirty_apps:Echo"
MODEL = "dirty_apps:Model"


def test_hup_recycles_dirty_workers(dirty_server: Any) -> None:
    server = dirty_server(
        "--dirty-workers", "2", "--dirty-app", ECHO, "--no-control-socket", "web_apps:app"
    )
    old = server.dirty_workers()
    arbiter = server.dirty_arbiter().pid
    server.send(signal.SIGHUP)
    new = server.wait_dirty_workers(2, exclude=old)
    assert server.dirty_arbiter().pid == arbiter  # the arbiter stays, its workers are new
    answer = server.call(app=ECHO, action="ping")
    assert answer["result"]["pid"] in new


def test_usr1_reopens_dirty_logs(dirty_server: Any, tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    server = dirty_server(
        f"--dirty-workers 1 --dirty-app {ECHO} --error-logfile {log}",
        "--no-control-socket web_apps:app",
        ready=None,
    )
    wait_until(lambda: log.exists() and re.search(r"Dirty worker \d+ ready", log.read_text()))
    server.address = parse_url(re.findall(r"Listening at: (\S+)", log.read_text())[0])
    log.rename(tmp_path / "error.log.1")
    server.send(signal.SIGUSR1)
    wait_until(log.exists)

    def logged_in_new_file() -> bool:
        server.call(app=ECHO, action="fail", args=["after-usr1"])
        return "Dirty call dirty_apps:Echo.fail failed: ValueError: after-usr1" in log.read_text()

    wait_until(logged_in_new_file, timeout=10, interval=0.2)


def test_ttin_ttou_scale_the_dirty_pool(dirty_server: Any) -> None:
    server = dirty_server(
        f"--dirty-workers 2 --dirty-app {ECHO} --dirty-app dirty_apps:Limited:2",
        "--no-control-socket web_apps:app",
    )
    arbiter = server.dirty_arbiter()
    os.kill(arbiter.pid, signal.SIGTTIN)
    three = server.wait_dirty_workers(3)
    server.wait_for(r"Dirty worker \d+ ready", count=3)
    os.kill(arbiter.pid, signal.SIGTTOU)
    two = server.wait_dirty_workers(2)
    assert set(two) < set(three)
    os.kill(arbiter.pid, signal.SIGTTOU)  # Limited:2 needs two workers: refused
    server.wait_for(r"Dirty workers not reduced below 2 \(the largest per-app worker count\)")
    assert server.dirty_workers() == two
    pids = {server.call(app="dirty_apps:Limited", action="where")["result"] for _ in range(4)}
    assert pids == set(two)


def test_hooks_run_where_documented(dirty_server: Any, tmp_path: Path) -> None:
    record = tmp_path / "hooks.log"
    config = tmp_path / "conf.py"
    config.write_text(
        "import os\n"
        f"LOG = {str(record)!r}\n"
        "def _w(*parts):\n"
        "    with open(LOG, 'a') as f:\n"
        "        f.write(' '.join(str(p) for p in parts) + '\\n')\n"
        "def on_dirty_starting(arbiter):\n"
        "    _w('on_dirty_starting', os.getpid(), arbiter.pid)\n"
        "def dirty_post_fork(arbiter, worker):\n"
        "    _w('dirty_post_fork', os.getpid(), worker.pid, sorted(worker.app_paths))\n"
        "def dirty_worker_init(worker):\n"
        "    _w('dirty_worker_init', os.getpid(), sorted(worker.apps))\n"
        "def dirty_worker_exit(arbiter, worker):\n"
        "    _w('dirty_worker_exit', os.getpid(), worker.pid)\n"
    )
    server = dirty_server(
        f"-c {config} --dirty-workers 1 --dirty-app {ECHO} --no-control-socket web_apps:app"
    )
    arbiter = server.dirty_arbiter().pid
    (worker,) = server.dirty_workers()
    lines = record.read_text().splitlines()
    assert lines[0] == f"on_dirty_starting {arbiter} {arbiter}"
    assert lines[1] == f"dirty_post_fork {worker} {worker} ['{ECHO}']"
    assert lines[2] == f"dirty_worker_init {worker} ['{ECHO}']"
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: f"dirty_worker_exit {arbiter} {worker}" in record.read_text())


def test_dirty_arbiter_exits_when_master_dies(dirty_server: Any) -> None:
    server = dirty_server(
        "--dirty-workers", "1", "--dirty-app", ECHO, "--no-control-socket", "web_apps:app"
    )
    dirty = [server.dirty_arbiter().pid, *server.dirty_workers()]
    for pid in server.worker_pids():
        server.adopt(pid)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=5)
    wait_until(lambda: not any(_alive(pid) for pid in dirty), timeout=10)


def test_orphan_cleanup_trusts_only_our_pid_file(dirty_server: Any, tmp_path: Path) -> None:
    proc_name = f"dirty-orphan-test-{os.getpid()}"
    path = pidfile_path(proc_name)
    # A stand-in orphan whose command line names gunicorn, left by a master that is gone.
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "gunicorn-dirty-orphan"]
    )
    dead_master = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_master.wait()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, f"{orphan.pid}\n{dead_master.pid}\n".encode())
        os.close(fd)
        server = dirty_server(
            f"-n {proc_name} --dirty-workers 1 --dirty-app {ECHO} --no-control-socket web_apps:app"
        )
        server.wait_for(rf"Stopping orphaned dirty arbiter \(pid:{orphan.pid}\)")
        assert orphan.wait(timeout=10) == -signal.SIGTERM
        assert server.call(app=ECHO, action="ping")["result"]
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_orphan_cleanup_ignores_a_file_writable_by_others(tmp_path: Path) -> None:
    from gunicorn.dirty.pidfile import cleanup_orphan

    victim = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "gunicorn-not-ours"]
    )
    try:
        path = tmp_path / "gunicorn-dirty-x.pid"
        path.write_text(f"{victim.pid}\n999999\n")
        os.chmod(path, 0o666)

        class Log:
            def warning(self, *args: Any) -> None:
                raise AssertionError("must not act on an untrusted file")

        assert cleanup_orphan(str(path), Log()) is False
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
