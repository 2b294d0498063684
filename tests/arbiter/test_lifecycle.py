"""Start, serve and stop a real gunicorn: log lines, hooks, exit codes, stop modes."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import connect, request, wait_until

from gunicorn import __version__

from .conftest import hook_config, read_hooks


def test_startup_and_graceful_stop_log_lines(gunicorn: Any) -> None:
    server = gunicorn("-w", "2", "proc_apps:app")
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    workers = server.wait_workers(2)
    log = server.wait_for("Booting worker with pid", count=2)
    assert f"[INFO] Starting gunicorn {__version__}" in log
    assert f"[INFO] Listening at: http://127.0.0.1:{port} ({server.pid})" in log
    assert "[INFO] Using worker: sync" in log
    booted = sorted(int(p) for p in re.findall(r"Booting worker with pid: (\d+)", log))
    assert booted == workers

    status, body = request(server.address)
    assert status == 200 and int(body) in workers

    server.send(signal.SIGTERM)
    assert server.wait() == 0
    log = server.log
    assert "[INFO] Handling signal: term" in log
    for pid in workers:
        assert f"Worker exiting (pid: {pid})" in log
    assert log.rstrip().endswith("[INFO] Shutting down: Master")
    with pytest.raises(OSError):
        connect(server.address, timeout=1)


def test_web_concurrency_sets_the_worker_count(gunicorn: Any) -> None:
    server = gunicorn("proc_apps:app", env={"WEB_CONCURRENCY": "3"})
    server.wait_workers(3)


def test_hooks_fire_in_order(gunicorn: Any, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.log"
    conf = tmp_path / "hooks_conf.py"
    conf.write_text(hook_config(hooks))
    server = gunicorn("-c", str(conf), "proc_apps:app")
    [worker] = server.wait_workers(1)
    wait_until(lambda: ["post_worker_init", str(worker)] in [h[:2] for h in read_hooks(hooks)])
    assert request(server.address, "/x")[0] == 200
    server.send(signal.SIGTERM)
    assert server.wait() == 0

    calls = read_hooks(hooks)
    master = str(server.pid)
    names = [c[0] for c in calls]
    assert names == [
        "nworkers_changed",
        "on_starting",
        "when_ready",
        "pre_fork",
        "post_fork",
        "post_worker_init",
        "pre_request",
        "post_request",
        "worker_exit",
        "child_exit",
        "on_exit",
    ]
    by_name = {c[0]: c for c in calls}
    assert by_name["nworkers_changed"][2:] == ["1", "None"]
    for name in ("nworkers_changed", "on_starting", "when_ready", "pre_fork", "child_exit"):
        assert by_name[name][1] == master, name
    for name in ("post_fork", "post_worker_init", "pre_request", "post_request", "worker_exit"):
        assert by_name[name][1] == str(worker), name
    assert by_name["on_exit"][1] == master


def _slow_request(server: Any, seconds: float, results: list[Any]) -> threading.Thread:
    def run() -> None:
        try:
            results.append(request(server.address, f"/sleep/{seconds}", timeout=15))
        except Exception as exc:  # recorded for the assertion
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_in_flight(server: Any) -> None:
    """Give the worker time to pick the request up (it sleeps inside the app)."""
    time.sleep(0.5)


@pytest.mark.slow
def test_term_drains_the_request_in_flight(gunicorn: Any) -> None:
    server = gunicorn("-w", "1", "--graceful-timeout", "10", "proc_apps:app")
    server.wait_workers(1)
    results: list[Any] = []
    thread = _slow_request(server, 2, results)
    _wait_in_flight(server)
    server.send(signal.SIGTERM)
    # Listeners close at once: new connections are refused while the request finishes.
    wait_until(lambda: _refused(server.address), timeout=3)
    thread.join(timeout=15)
    assert server.wait() == 0
    [result] = results
    assert not isinstance(result, Exception), result
    assert result[0] == 200


def _refused(address: Any) -> bool:
    try:
        connect(address, timeout=0.5).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGINT], ids=["quit", "int"])
def test_quit_and_int_stop_quickly(gunicorn: Any, tmp_path: Path, sig: int) -> None:
    hooks = tmp_path / "hooks.log"
    conf = tmp_path / "hooks_conf.py"
    conf.write_text(hook_config(hooks))
    server = gunicorn("-c", str(conf), "--graceful-timeout", "30", "proc_apps:app")
    [worker] = server.wait_workers(1)
    results: list[Any] = []
    thread = _slow_request(server, 20, results)
    _wait_in_flight(server)
    started = time.monotonic()
    server.send(sig)
    assert server.wait(timeout=10) == 0
    assert time.monotonic() - started < 8  # not the 20 s request, not the 30 s grace
    thread.join(timeout=5)
    assert isinstance(results[0], Exception)  # the request was cut
    name = signal.Signals(sig).name[3:].lower()
    assert f"Handling signal: {name}" in server.log
    assert ["worker_int", str(worker)] in [c[:2] for c in read_hooks(hooks)]


def test_graceful_stop_switches_to_quick_on_quit(gunicorn: Any) -> None:
    server = gunicorn("--graceful-timeout", "30", "proc_apps:app")
    server.wait_workers(1)
    results: list[Any] = []
    thread = _slow_request(server, 20, results)
    _wait_in_flight(server)
    server.send(signal.SIGTERM)
    server.wait_for("Handling signal: term")
    server.send(signal.SIGQUIT)
    assert server.wait(timeout=10) == 0
    thread.join(timeout=5)
    assert "Quick shutdown requested" in server.log


def test_winch_is_ignored_when_not_daemonized(gunicorn: Any) -> None:
    server = gunicorn("-w", "2", "proc_apps:app")
    workers = server.wait_workers(2)
    server.send(signal.SIGWINCH)
    server.wait_for("Handling signal: winch")
    assert request(server.address)[0] == 200
    assert server.worker_pids() == workers


def test_usr1_reopens_the_log_file(gunicorn: Any, tmp_path: Path) -> None:
    errlog = tmp_path / "error.log"
    server = gunicorn("--error-logfile", str(errlog), "proc_apps:app", ready=None)
    wait_until(lambda: errlog.exists() and "Booting worker" in errlog.read_text())
    rotated = tmp_path / "error.log.1"
    errlog.rename(rotated)
    server.send(signal.SIGUSR1)
    wait_until(lambda: errlog.exists())
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    assert "Handling signal: usr1" in rotated.read_text()
    assert "Shutting down: Master" in errlog.read_text()


def test_unknown_children_are_reaped_silently(gunicorn: Any, tmp_path: Path) -> None:
    # A post_fork-free way to get a foreign child: when_ready forks a process that exits 3.
    conf = tmp_path / "conf.py"
    conf.write_text(
        "import os\ndef when_ready(server):\n    if os.fork() == 0:\n        os._exit(3)\n"
    )
    server = gunicorn("-c", str(conf), "proc_apps:app")
    server.wait_workers(1)
    time.sleep(1.2)  # one loop turn: the foreign child is reaped
    assert request(server.address)[0] == 200
    assert "exited with code" not in server.log
    assert all(p.status() != "zombie" for p in _children(server.pid))


def _children(pid: int) -> list[Any]:
    import psutil

    return psutil.Process(pid).children()
