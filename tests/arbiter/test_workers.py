"""Worker supervision: counts, timeouts, recycling, crashes and boot failures."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import request, wait_until

from .conftest import hook_config, read_hooks


def test_ttin_and_ttou_change_the_worker_count(gunicorn: Any, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.log"
    conf = tmp_path / "conf.py"
    conf.write_text(hook_config(hooks))
    server = gunicorn("-c", str(conf), "-w", "2", "proc_apps:app")
    first = server.wait_workers(2)
    server.send(signal.SIGTTIN)
    server.wait_for("Handling signal: ttin")
    three = server.wait_workers(3)
    assert set(first) < set(three)
    for _ in range(3):  # one more than possible: never below one worker
        server.send(signal.SIGTTOU)
        server.wait_for("Handling signal: ttou", count=_ + 1)
    [last] = server.wait_workers(1)
    assert last == max(three)  # the oldest workers go first
    assert request(server.address)[0] == 200
    changes = [c[2:] for c in read_hooks(hooks) if c[0] == "nworkers_changed"]
    assert changes == [["2", "None"], ["3", "2"], ["2", "3"], ["1", "2"]]


@pytest.mark.slow
def test_silent_worker_is_aborted_and_replaced(gunicorn: Any, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.log"
    conf = tmp_path / "conf.py"
    conf.write_text(hook_config(hooks))
    server = gunicorn("-c", str(conf), "--timeout", "1", "proc_apps:app")
    [stuck] = server.wait_workers(1)
    assert request(server.address, "/hang", timeout=6)[0] == 500  # answered before it goes
    server.wait_for(rf"\[CRITICAL\] WORKER TIMEOUT \(pid:{stuck}\)")
    [fresh] = server.wait_workers(1, exclude=[stuck])
    assert request(server.address)[0] == 200
    assert ["worker_abort", str(stuck)] in [c[:2] for c in read_hooks(hooks)]
    assert fresh != stuck


@pytest.mark.slow
def test_a_hung_import_is_still_aborted_after_timeout(gunicorn: Any, tmp_path: Path) -> None:
    """A boot that hangs (here in the application's import) is silence: the worker is
    aborted after ``timeout``, as one that hangs while serving."""
    (tmp_path / "hung_import.py").write_text(
        "import time\ntime.sleep(120)\n\ndef app(environ, start_response):\n    pass\n"
    )
    server = gunicorn("--timeout", "2", "--chdir", str(tmp_path), "hung_import:app")
    [hung] = server.wait_workers(1)
    server.wait_for(rf"\[CRITICAL\] WORKER TIMEOUT \(pid:{hung}\)", timeout=20)
    server.wait_workers(1, exclude=[hung], timeout=20)


def test_max_requests_recycles_the_worker(gunicorn: Any) -> None:
    server = gunicorn("--max-requests", "3", "proc_apps:app")
    [first] = server.wait_workers(1)
    bodies = [int(request(server.address)[1]) for _ in range(3)]
    assert bodies == [first] * 3
    server.wait_for("Autorestarting worker after current request.")
    [second] = server.wait_workers(1, exclude=[first])
    assert int(request(server.address)[1]) == second


def test_killed_worker_is_reported_and_replaced(gunicorn: Any) -> None:
    server = gunicorn("-w", "2", "proc_apps:app")
    victim, other = server.wait_workers(2)
    os.kill(victim, signal.SIGKILL)
    server.wait_for(rf"Worker \(pid:{victim}\) was sent SIGKILL! Perhaps out of memory\?")
    pids = server.wait_workers(2, exclude=[victim])
    assert other in pids


def test_crashing_worker_is_replaced(gunicorn: Any) -> None:
    server = gunicorn("proc_apps:app")
    [victim] = server.wait_workers(1)
    os.kill(victim, signal.SIGSEGV)
    server.wait_for(rf"Worker \(pid:{victim}\) was sent SIGSEGV!")
    server.wait_workers(1, exclude=[victim])
    assert "Perhaps out of memory" not in server.log
    assert request(server.address)[0] == 200


def test_app_raising_at_import_halts_once(gunicorn: Any, tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('database unreachable')\n")
    server = gunicorn("-w", "2", "--pythonpath", str(tmp_path), "broken_app:app", ready=None)
    code = server.wait()
    reasons = {3: "Worker failed to boot.", 4: "App failed to load."}
    assert code in reasons
    log = server.log
    assert "RuntimeError: database unreachable" in log
    assert "[ERROR] Shutting down: Master" in log
    assert log.rstrip().endswith(f"[ERROR] Reason: {reasons[code]}")
    # One failure halts the master: no respawn loop.
    assert server.count("Booting worker") <= 2


def test_boot_error_halts_with_exit_3(gunicorn: Any, tmp_path: Path) -> None:
    conf = tmp_path / "conf.py"
    conf.write_text("def post_fork(server, worker):\n    raise ValueError('no license')\n")
    pidfile = tmp_path / "g.pid"
    server = gunicorn("-c", str(conf), "--pid", str(pidfile), "proc_apps:app", ready=None)
    assert server.wait() == 3
    log = server.log
    assert "Exception in worker process" in log
    assert log.count("ValueError: no license") == 1
    assert "[ERROR] Shutting down: Master" in log
    assert log.rstrip().endswith("[ERROR] Reason: Worker failed to boot.")
    assert server.count("Booting worker") == 1
    assert not pidfile.exists()


def test_app_load_error_halts_with_exit_4(gunicorn: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "g.pid"
    server = gunicorn("--pid", str(pidfile), "proc_apps:no_such_app", ready=None)
    assert server.wait() == 4
    log = server.log
    assert "Failed to find attribute 'no_such_app' in 'proc_apps'." in log
    assert "[ERROR] Worker (pid:" in log and "exited with code 4." in log
    assert log.rstrip().endswith("[ERROR] Reason: App failed to load.")
    assert "Traceback" not in log  # one line, the traceback is at debug level
    assert not pidfile.exists()


def test_worker_exits_when_the_master_dies(gunicorn: Any) -> None:
    # The worker checks its parent at least every timeout/2 seconds.
    server = gunicorn("--timeout", "2", "proc_apps:app")
    [worker] = server.wait_workers(1)
    server.proc.kill()  # type: ignore[union-attr]
    server.wait()

    def gone() -> bool:
        try:  # an orphan is reparented; a zombie is an exited process
            return psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, timeout=5)


@pytest.mark.slow
def test_quit_while_the_app_imports_replaces_the_worker(gunicorn: Any, tmp_path: Path) -> None:
    """A worker told to quit during its app import leaves quietly; it is not an app load
    error that would stop the whole server."""
    started = tmp_path / "importing"
    (tmp_path / "slow_import_app.py").write_text(
        "import pathlib, time\n"
        f"pathlib.Path({str(started)!r}).write_text('1')\n"
        "time.sleep(1.5)\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'imported']\n"
    )
    server = gunicorn("--pythonpath", str(tmp_path), "slow_import_app:app")
    [first] = server.wait_workers(1)
    wait_until(started.exists)
    os.kill(first, signal.SIGQUIT)
    server.wait_for("Booting worker", count=2)
    wait_until(lambda: request(server.address) == (200, b"imported"), timeout=15)
    assert server.proc is not None and server.proc.poll() is None
    assert "App failed to load" not in server.log
    assert "called sys.exit" not in server.log
