"""HUP reloads, USR2 upgrades and --reload, with a client that must see no failure."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import request, wait_until

from .conftest import Load, hook_config, read_hooks


def _title(pid: int) -> str:
    return " ".join(part for part in psutil.Process(pid).cmdline() if part)


def test_process_titles(gunicorn: Any) -> None:
    server = gunicorn("proc_apps:app")
    [worker] = server.wait_workers(1)
    wait_until(lambda: _title(server.pid) == "gunicorn: master [proc_apps:app]")
    wait_until(lambda: _title(worker) == "gunicorn: worker [proc_apps:app]")
    server.stop()
    named = gunicorn("-n", "shop", "proc_apps:app")
    wait_until(lambda: _title(named.pid) == "gunicorn: master [shop]")


@pytest.mark.slow
def test_hup_under_load_loses_nothing(gunicorn: Any) -> None:
    server = gunicorn("-w", "2", "proc_apps:app")
    first = server.wait_workers(2)
    with Load(server.address) as load:
        time.sleep(0.3)
        for round_ in (1, 2):
            server.send(signal.SIGHUP)
            server.wait_for("Hang up: Master", count=round_)
            time.sleep(0.6)
        server.wait_workers(2, exclude=first, timeout=10)
        time.sleep(0.3)
    assert load.failures == []
    assert load.ok > 10
    assert server.proc is not None and server.proc.poll() is None


def test_hup_applies_new_config_and_keeps_old_on_error(gunicorn: Any, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.log"
    conf = tmp_path / "conf.py"
    conf.write_text(hook_config(hooks, "workers = 1\nraw_env = ['STAGE=one']\n"))
    server = gunicorn("-c", str(conf), "proc_apps:app")
    [old] = server.wait_workers(1)
    assert request(server.address, "/env/STAGE")[1] == b"one"

    conf.write_text(hook_config(hooks, "workers = 3\nraw_env = ['STAGE=two']\n"))
    server.send(signal.SIGHUP)
    three = server.wait_workers(3, exclude=[old])
    assert request(server.address, "/env/STAGE")[1] == b"two"
    assert ["on_reload", str(server.pid)] in [c[:2] for c in read_hooks(hooks)]

    conf.write_text("workers = (\n")  # a syntax error: the running config stays
    server.send(signal.SIGHUP)
    server.wait_for("Hang up: Master", count=2)
    server.wait_for(r"\[ERROR\] .*reload", timeout=5)
    time.sleep(1.2)
    assert server.worker_pids() == three
    assert request(server.address, "/env/STAGE")[1] == b"two"


@pytest.mark.slow
def test_usr2_upgrade_loses_nothing(gunicorn: Any, tmp_path: Path) -> None:
    pidfile, path = tmp_path / "g.pid", tmp_path / "up.sock"
    server = gunicorn("-w", "2", "--pid", str(pidfile), "-b", f"unix:{path}", "proc_apps:app")
    old_master = server.pid
    old_workers = server.wait_workers(2)
    with Load(server.address) as load:
        server.send(signal.SIGUSR2)
        new_pidfile = Path(f"{pidfile}.2")
        wait_until(new_pidfile.exists)
        new_master = int(new_pidfile.read_text())
        server.adopt(new_master)
        assert new_master != old_master
        # gunicorn's layout: the pidfile names the old master until it exits.
        assert pidfile.read_text() == f"{old_master}\n"
        server.wait_for("Booting worker", count=4)
        wait_until(lambda: _title(new_master) == "gunicorn: master [proc_apps:app.2]")
        new_workers = wait_until(lambda: _live_children(new_master, 2))
        for pid in new_workers:
            server.adopt(pid)

        server.send(signal.SIGTERM)  # retire the old generation
        assert server.wait() == 0
        assert path.exists()  # the old master leaves the shared socket file alone
        server.wait_for("Master has been promoted.", master_exits=True)
        wait_until(lambda: pidfile.exists() and pidfile.read_text() == f"{new_master}\n")
        time.sleep(0.3)
    assert load.failures == []
    assert load.ok > 5
    assert not new_pidfile.exists()
    assert not set(old_workers) & set(_live_children(new_master, 2))
    wait_until(lambda: _title(new_master) == "gunicorn: master [proc_apps:app]")
    status, body = request(server.address)
    assert status == 200 and int(body) in new_workers

    os.kill(new_master, signal.SIGTERM)
    wait_until(lambda: not psutil.pid_exists(new_master) or _zombie(new_master))
    assert not pidfile.exists()
    assert not path.exists()  # promoted: it owns the socket now


def _live_children(pid: int, n: int) -> list[int] | None:
    pids = [c.pid for c in psutil.Process(pid).children() if c.status() != psutil.STATUS_ZOMBIE]
    return sorted(pids) if len(pids) == n else None


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _write(path: Path, text: str) -> None:
    """Rewrite a module so that its mtime visibly changes."""
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(text)
    os.utime(path, (before + 2, before + 2))


def _serving(server: Any, body: bytes) -> bool:
    try:
        return request(server.address, timeout=3) == (200, body)
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["poll", "inotify"])
def test_reload_follows_code_and_survives_a_syntax_error(
    gunicorn: Any, tmp_path: Path, engine: str
) -> None:
    module = tmp_path / "live_app.py"
    template = (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [{body!r}]\n"
    )
    _write(module, template.format(body=b"v1"))
    hooks, conf = tmp_path / "hooks.log", tmp_path / "conf.py"
    conf.write_text(hook_config(hooks))
    server = gunicorn(
        "-c", str(conf), "--reload", "--reload-engine", engine,
        "--pythonpath", str(tmp_path), "live_app:app",
    )  # fmt: skip
    [first] = server.wait_workers(1)
    assert _serving(server, b"v1")

    _write(module, template.format(body=b"v2"))
    wait_until(lambda: _serving(server, b"v2"), timeout=10)
    server.wait_for(r"Worker reloading: .*live_app\.py modified")
    [second] = server.wait_workers(1, exclude=[first])
    assert ["worker_int", str(first)] in [c[:2] for c in read_hooks(hooks)]

    _write(module, "def app(environ, start_response:\n")  # broken code
    server.wait_for("SyntaxError", timeout=10)
    server.wait_for("previous workers keep serving", timeout=10)
    for _ in range(5):
        assert _serving(server, b"v2")
    assert server.wait_workers(1) == [second]

    _write(module, template.format(body=b"v3"))
    wait_until(lambda: _serving(server, b"v3"), timeout=10)
    assert server.proc is not None and server.proc.poll() is None


@pytest.mark.slow
def test_reload_serves_the_error_until_the_first_fix(gunicorn: Any, tmp_path: Path) -> None:
    module = tmp_path / "first_app.py"
    _write(module, "def app(environ, start_response:\n")
    server = gunicorn(
        "--reload", "--reload-engine", "poll", "--pythonpath", str(tmp_path), "first_app:app"
    )
    status, body = request(server.address)
    assert status == 500 and b"SyntaxError" in body
    _write(
        module,
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'fixed']\n",
    )
    wait_until(lambda: _serving(server, b"fixed"), timeout=10)
