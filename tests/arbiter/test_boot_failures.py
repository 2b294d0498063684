"""An application that cannot be loaded: exit statuses as gunicorn 27 gives them at the first
boot, its own traceback in the log, and a server that keeps serving when a later HUP, USR2 or
``--reload`` brings a broken deploy."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import request, wait_until

from .conftest import Load

GOOD_APP = (
    "import os, time\n"
    "def app(environ, start_response):\n"
    "    if environ['PATH_INFO'].startswith('/sleep/'):\n"
    "        time.sleep(float(environ['PATH_INFO'][7:]))\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [{body!r}]\n"
)
BROKEN_APP = "def app(environ, start_response:\n"

MODULES = {
    "syntax_app.py": BROKEN_APP,
    "raising_app.py": "import raising_helper\napp = None\n",
    "raising_helper.py": (
        "def connect():\n    raise RuntimeError('database unreachable')\n\nconnect()\n"
    ),
    "needs_dep_app.py": "import gunicorn_absent_dependency_z\n",
    "objects_app.py": (
        "def create_app():\n    raise ValueError('bad settings')\n\n"
        "def empty_factory():\n    return None\n\n"
        "app = 42\n"
    ),
}


def _write(path: Path, text: str) -> None:
    """Rewrite a module so that its mtime visibly changes."""
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(text)
    os.utime(path, (before + 2, before + 2))


@pytest.fixture
def apps(tmp_path: Path) -> Path:
    for name, source in MODULES.items():
        (tmp_path / name).write_text(source)
    return tmp_path


# Each case checked against gunicorn 27.0.1: its exit status and the master's last line.
BOOT_EXITS = [
    ("no_such_module_q:app", 3, "Worker failed to boot."),
    ("syntax_app:app", 3, "Worker failed to boot."),
    ("raising_app:app", 3, "Worker failed to boot."),
    ("needs_dep_app:app", 3, "Worker failed to boot."),
    ("objects_app:create_app()", 3, "Worker failed to boot."),
    ("objects_app:missing", 4, "App failed to load."),
    ("objects_app:app", 4, "App failed to load."),
    ("objects_app:empty_factory()", 4, "App failed to load."),
    ("objects_app:create_app(1)", 4, "App failed to load."),
]


@pytest.mark.parametrize(("uri", "status", "reason"), BOOT_EXITS)
def test_first_boot_failure_exit_status(
    gunicorn: Any, apps: Path, uri: str, status: int, reason: str
) -> None:
    server = gunicorn(uri, ready=None)
    assert server.wait() == status
    log = server.log
    assert re.search(rf"\[ERROR\] Worker \(pid:\d+\) exited with code {status}\.\n", log)
    assert log.rstrip().endswith(f"[ERROR] Reason: {reason}")
    assert server.count("Booting worker") == 1


@pytest.mark.parametrize("uri", ["raising_app:app", "objects_app:missing", "no_such_module_q"])
def test_preload_failure_exits_1(gunicorn: Any, apps: Path, uri: str) -> None:
    server = gunicorn("--preload", uri, ready=None)
    assert server.wait() == 1
    assert server.log.splitlines()[-1].startswith("Error: ")
    assert "Booting worker" not in server.log


def test_import_error_shows_the_apps_own_frames_then_one_line(gunicorn: Any, apps: Path) -> None:
    server = gunicorn("raising_app:app", ready=None)
    assert server.wait() == 3
    log = server.log
    frames = re.findall(r'File "([^"]+)", line \d+', log)
    assert frames == [str(apps / "raising_app.py"), *[str(apps / "raising_helper.py")] * 2]
    assert log.splitlines().count("RuntimeError: database unreachable") == 1
    summary = "[ERROR] Failed to import module 'raising_app': RuntimeError: database unreachable"
    lines = log.splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith(summary))
    assert lines[at - 1] == "RuntimeError: database unreachable"
    assert "    raise RuntimeError('database unreachable')" in lines


def test_syntax_error_shows_the_file_and_the_caret(gunicorn: Any, apps: Path) -> None:
    server = gunicorn("syntax_app:app", ready=None)
    assert server.wait() == 3
    log = server.log
    assert f'File "{apps / "syntax_app.py"}", line 1\n' in log
    assert "    def app(environ, start_response:\n" in log
    assert "importlib" not in log and "gunicorn/arbiter.py" not in log


@pytest.mark.slow
def test_hup_with_a_broken_deploy_keeps_the_old_workers_serving(
    gunicorn: Any, tmp_path: Path
) -> None:
    module = tmp_path / "deployed_app.py"
    _write(module, GOOD_APP.format(body=b"v1"))
    server = gunicorn("-w", "2", "--log-level", "debug", "deployed_app:app")
    old = server.wait_workers(2)
    server.wait_for("All 2 workers booted")  # the first boot is over
    slow: list[tuple[int, bytes]] = []
    in_flight = threading.Thread(target=lambda: slow.append(request(server.address, "/sleep/2")))
    with Load(server.address) as load:
        wait_until(lambda: load.ok > 5)
        _write(module, BROKEN_APP)
        in_flight.start()
        for attempt in (1, 2):
            server.send(signal.SIGHUP)
            server.wait_for(
                r"\[ERROR\] New workers failed to boot; the previous workers keep serving "
                r"until the next HUP: Failed to import module 'deployed_app': SyntaxError",
                count=attempt,
            )
        in_flight.join(timeout=10)
        assert server.wait_workers(2) == old
        assert server.count("Booting worker") == 4  # one new worker per failed HUP
        _write(module, GOOD_APP.format(body=b"v2"))
        server.send(signal.SIGHUP)
        server.wait_workers(2, exclude=old)
        wait_until(lambda: b"v2" in load.bodies)
    assert load.failures == []
    assert load.bodies == {b"v1", b"v2"}
    assert slow == [(200, b"v1")]
    assert server.count(r"\[ERROR\] Failed to import module") == 2


@pytest.mark.slow
def test_a_replacement_that_cannot_boot_does_not_stop_the_server(
    gunicorn: Any, tmp_path: Path
) -> None:
    module = tmp_path / "replaced_app.py"
    _write(module, GOOD_APP.format(body=b"v1"))
    server = gunicorn("-w", "2", "--log-level", "debug", "replaced_app:app")
    first, second = server.wait_workers(2)
    server.wait_for("All 2 workers booted")
    _write(module, BROKEN_APP)  # deployed without a HUP; then one worker dies
    os.kill(first, signal.SIGKILL)
    server.wait_for("A worker failed to boot; no worker is started until the next HUP")
    assert request(server.address) == (200, b"v1")
    assert server.worker_pids() == [second]
    _write(module, GOOD_APP.format(body=b"v2"))
    server.send(signal.SIGHUP)
    server.wait_workers(2, exclude=[second])
    assert request(server.address) == (200, b"v2")


@pytest.mark.slow
def test_usr2_with_a_broken_deploy_keeps_the_old_master(gunicorn: Any, tmp_path: Path) -> None:
    module, pidfile = tmp_path / "upgraded_app.py", tmp_path / "app.pid"
    _write(module, GOOD_APP.format(body=b"v1"))
    server = gunicorn("-w", "2", "--pid", str(pidfile), "--log-level", "debug", "upgraded_app:app")
    workers = server.wait_workers(2)
    server.wait_for("All 2 workers booted")  # the first boot is over
    with Load(server.address) as load:
        _write(module, BROKEN_APP)
        server.send(signal.SIGUSR2)
        server.wait_for(r"New master \(USR2\) exited with status 3")
        assert server.wait_workers(2) == workers
        wait_until(lambda: load.ok > 5)
    assert load.failures == []
    assert pidfile.read_text() == f"{server.pid}\n"
    assert not Path(f"{pidfile}.2").exists()


@pytest.mark.slow
def test_reload_never_serves_from_a_worker_that_cannot_load(gunicorn: Any, tmp_path: Path) -> None:
    module = tmp_path / "edited_app.py"
    _write(module, GOOD_APP.format(body=b"v1"))
    server = gunicorn(
        "-w", "2", "--reload", "--reload-engine", "poll", "--pythonpath", str(tmp_path),
        "--log-level", "debug", "edited_app:app",
    )  # fmt: skip
    old = server.wait_workers(2)
    server.wait_for("All 2 workers booted")  # the first boot is over
    with Load(server.address) as load:
        wait_until(lambda: load.ok > 5)
        _write(module, BROKEN_APP)
        server.wait_for("the previous workers keep serving until the next code change")
        ok = load.ok
        wait_until(lambda: load.ok > ok + 5)
        assert server.wait_workers(2) == old
        _write(module, GOOD_APP.format(body=b"v2"))
        wait_until(lambda: b"v2" in load.bodies, timeout=15)
    assert load.failures == []  # never a 500 from the worker that failed
    assert load.bodies == {b"v1", b"v2"}


@pytest.mark.slow
def test_pidfile_names_the_old_master_until_it_exits(gunicorn: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "app.pid"
    server = gunicorn("--pid", str(pidfile), "proc_apps:app")
    server.wait_workers(1)
    server.send(signal.SIGUSR2)
    new_pidfile = Path(f"{pidfile}.2")
    wait_until(new_pidfile.exists)
    new_master = int(new_pidfile.read_text())
    server.adopt(new_master)
    wait_until(lambda: len(psutil.Process(new_master).children()) == 1)
    # What deploy scripts do after USR2: kill -TERM $(cat app.pid) stops the OLD master.
    os.kill(int(pidfile.read_text()), signal.SIGTERM)
    assert server.wait() == 0
    wait_until(lambda: pidfile.exists() and pidfile.read_text() == f"{new_master}\n")
    assert not new_pidfile.exists()
    assert psutil.pid_exists(new_master)
    os.kill(new_master, signal.SIGTERM)
    wait_until(lambda: not pidfile.exists())


def test_worker_death_log_levels(gunicorn: Any, tmp_path: Path) -> None:
    """Each way a worker can die, logged at gunicorn 27's level with its wording."""
    counter = tmp_path / "count"
    conf = tmp_path / "conf.py"
    conf.write_text(
        "import os, signal\n"
        "def post_fork(server, worker):\n"
        f"    path = {str(counter)!r}\n"
        "    n = int(open(path).read()) if os.path.exists(path) else 0\n"
        "    open(path, 'w').write(str(n + 1))\n"
        "    if n == 0: os.kill(os.getpid(), signal.SIGTERM)\n"
        "    if n == 1: os.kill(os.getpid(), signal.SIGUSR2)\n"
        "    if n == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
        "    if n == 3: os._exit(7)\n"
    )
    server = gunicorn("-c", str(conf), "proc_apps:app")
    server.wait_for("Booting worker", count=5)
    status, _ = request(server.address)
    assert status == 200
    deaths = re.findall(r"\[(\w+)\] (Worker \(pid:\d+\) .*)\n", server.log)
    assert [(level, re.sub(r"pid:\d+|code \d+", "N", line)) for level, line in deaths] == [
        ("INFO", "Worker (N) was sent SIGTERM!"),
        ("WARNING", "Worker (N) was sent SIGUSR2!"),
        ("ERROR", "Worker (N) was sent SIGKILL! Perhaps out of memory?"),
        ("ERROR", "Worker (N) exited with N."),
    ]
    assert "exited with code 7." in server.log


@pytest.mark.slow
def test_reload_retries_when_a_new_broken_module_is_fixed(gunicorn: Any, tmp_path: Path) -> None:
    """The good workers never imported the new module; the master watches the files of
    the failure's traceback."""
    module, helper = tmp_path / "grown_app.py", tmp_path / "grown_helper.py"
    _write(module, GOOD_APP.format(body=b"v1"))
    server = gunicorn(
        "--reload", "--reload-engine", "poll", "--pythonpath", str(tmp_path), "grown_app:app"
    )
    [old] = server.wait_workers(1)
    wait_until(lambda: request(server.address) == (200, b"v1"))
    _write(helper, "VALUE = (\n")
    _write(module, "import grown_helper\n" + GOOD_APP.format(body=b"v2"))
    server.wait_for("the previous workers keep serving until the next code change")
    assert request(server.address) == (200, b"v1")
    _write(helper, "VALUE = 2\n")
    server.wait_workers(1, exclude=[old], timeout=15)
    wait_until(lambda: request(server.address) == (200, b"v2"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_reuse_port_worker_that_cannot_boot_never_listens(gunicorn: Any, tmp_path: Path) -> None:
    """With reuse_port each worker has its own listener; one whose app fails to load
    must never have bound it, or the kernel would route connections to it."""
    module = tmp_path / "ported_app.py"
    _write(module, GOOD_APP.format(body=b"v1"))
    port = _free_port()
    server = gunicorn(
        "-w", "2", "--reuse-port", "-b", f"127.0.0.1:{port}", "--log-level", "debug",
        "ported_app:app",
    )  # fmt: skip
    server.wait_workers(2)
    server.wait_for("All 2 workers booted")  # the first boot is over
    with Load(("127.0.0.1", port)) as load:
        wait_until(lambda: load.ok > 20)
        _write(module, BROKEN_APP)
        server.send(signal.SIGHUP)
        server.wait_for("New workers failed to boot")
        ok = load.ok
        wait_until(lambda: load.ok > ok + 20)
    assert load.failures == []
