"""Every control command through the real ``gunicornc``, with its text and JSON output."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator

import pytest
from support import Gunicorn, request, wait_until

from ctl.helpers import control_dir, control_path, ctl_json, gunicornc, server
from gunicorn import __version__


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Gunicorn, str, str]]:
    """One server with two workers for the read-only commands."""
    with control_dir() as runtime, server(runtime, "-w", "2") as srv:
        srv.wait_workers(2)
        yield srv, control_path(srv), runtime


TEXT = {
    "show workers": ["PID", "AGE", "BOOTED", "HEARTBEAT", "2 worker(s)"],
    "show stats": ["uptime", "workers_current", "workers_target", "workers_spawned"],
    "show config": ["bind", "worker_class", "sync", "timeout", "control_socket"],
    "show listeners": ["ADDRESS", "FD", "TYPE", "tcp"],
    "show dirty": ["dirty arbiter: not running"],
    "show all": ["arbiter", "PID", "dirty arbiter"],
    "show metrics": ["requests", "in flight", "RESTART REASON"],
    "help": ["COMMAND", "worker add", "shutdown"],
}


@pytest.mark.parametrize("command", list(TEXT))
def test_show_commands_print_readable_text(shared: tuple[Gunicorn, str, str], command: str) -> None:
    _srv, path, runtime = shared
    done = gunicornc("-s", path, "-c", command, runtime_dir=runtime)
    assert done.returncode == 0, done.stderr
    for word in TEXT[command]:
        assert word in done.stdout, (command, done.stdout)
    assert not done.stdout.lstrip().startswith("{")


def test_show_workers_json(shared: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = shared
    data = ctl_json(path, "show workers", runtime)
    assert data["count"] == 2
    assert sorted(w["pid"] for w in data["workers"]) == srv.worker_pids()
    for row in data["workers"]:
        assert row["booted"] is True and row["aborted"] is False
        assert 0 <= row["last_heartbeat"] < 60
        assert {"age", "requests", "in_flight"} <= set(row)


def test_show_stats_config_listeners_json(shared: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = shared
    stats = ctl_json(path, "show stats", runtime)
    assert stats["pid"] == srv.pid
    assert stats["workers_current"] == stats["workers_target"] == 2
    assert stats["workers_spawned"] >= 2 and stats["uptime"] > 0
    assert stats["dirty_arbiter_pid"] is None
    config = ctl_json(path, "show config", runtime)
    assert config["workers"] == 2 and config["worker_class"] == "sync"
    assert config["control_socket"] == path
    listeners = ctl_json(path, "show listeners", runtime)
    assert listeners["count"] == 1
    assert listeners["listeners"][0]["address"] == srv.url
    assert listeners["listeners"][0]["type"] == "tcp"


def test_show_all_and_dirty_json(shared: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = shared
    tree = ctl_json(path, "show all", runtime)
    assert tree["arbiter"]["pid"] == srv.pid
    assert len(tree["workers"]) == 2
    assert tree["dirty"]["enabled"] is False
    assert ctl_json(path, "show dirty", runtime)["enabled"] is False


def test_raw_json_reply_carries_id_and_status(shared: tuple[Gunicorn, str, str]) -> None:
    _srv, path, runtime = shared
    done = gunicornc("--json", "--socket", path, "--command", "help", runtime_dir=runtime)
    reply = json.loads(done.stdout)
    assert reply["status"] == "ok" and isinstance(reply["id"], int)
    assert any(c["command"] == "show metrics" for c in reply["data"]["commands"])


def test_dirty_commands_without_a_dirty_arbiter(shared: tuple[Gunicorn, str, str]) -> None:
    _srv, path, runtime = shared
    for command in ("dirty add", "dirty remove 2"):
        done = gunicornc("-s", path, "-c", command, runtime_dir=runtime)
        assert done.returncode == 1
        assert "no dirty arbiter is running" in done.stderr
        done = gunicornc("-j", "-s", path, "-c", command, runtime_dir=runtime)
        assert done.returncode == 1
        assert json.loads(done.stdout)["status"] == "error"


def test_error_reply_exits_non_zero(shared: tuple[Gunicorn, str, str]) -> None:
    _srv, path, runtime = shared
    done = gunicornc("-s", path, "-c", "frobnicate", runtime_dir=runtime)
    assert done.returncode == 1
    assert "unknown command: frobnicate" in done.stderr
    done = gunicornc("-s", path, "-c", "worker kill 1", runtime_dir=runtime)
    assert done.returncode == 1 and "no worker with pid 1" in done.stderr


def test_command_words_after_the_options(shared: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = shared
    done = gunicornc("-j", "-s", path, "show", "stats", runtime_dir=runtime)
    assert done.returncode == 0
    assert json.loads(done.stdout)["data"]["pid"] == srv.pid


def test_version() -> None:
    with control_dir() as runtime:
        for flag in ("-v", "--version"):
            done = gunicornc(flag, runtime_dir=runtime)
            assert done.returncode == 0
            assert done.stdout.strip() == f"gunicornc (gunicorn {__version__})"


def test_no_server_names_the_path_it_tried() -> None:
    with control_dir() as runtime:
        done = gunicornc("-c", "show stats", runtime_dir=runtime)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1
        assert f"{runtime}/gunicorn-*.ctl" in done.stderr
        missing = os.path.join(runtime, "nope.ctl")
        done = gunicornc("-s", missing, "-c", "show stats", runtime_dir=runtime)
        assert done.returncode == 2
        assert missing in done.stderr and done.stderr.count("\n") == 1


def test_worker_add_and_remove() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        path = control_path(srv)
        srv.wait_workers(1)
        assert ctl_json(path, "worker add 2", runtime) == {"added": 2, "workers_target": 3}
        srv.wait_workers(3)
        assert ctl_json(path, "worker add", runtime)["workers_target"] == 4
        srv.wait_workers(4)
        assert ctl_json(path, "worker remove", runtime) == {"removed": 1, "workers_target": 3}
        srv.wait_workers(3)
        # never below one
        assert ctl_json(path, "worker remove 10", runtime) == {"removed": 2, "workers_target": 1}
        srv.wait_workers(1)
        assert ctl_json(path, "show stats", runtime)["workers_target"] == 1


def test_worker_kill_replaces_that_worker() -> None:
    with control_dir() as runtime, server(runtime, "-w", "2") as srv:
        path = control_path(srv)
        pids = srv.wait_workers(2)
        done = gunicornc("-s", path, "-c", f"worker kill {pids[0]}", runtime_dir=runtime)
        assert done.returncode == 0 and str(pids[0]) in done.stdout
        after = srv.wait_workers(2, exclude=[pids[0]])
        assert pids[1] in after
        restarts = ctl_json(path, "show metrics", runtime)["worker_restarts"]
        assert restarts["killed"] == 1 and restarts["crash"] == 0


def test_reload_and_reopen() -> None:
    with control_dir() as runtime, server(runtime, "-w", "2") as srv:
        path = control_path(srv)
        pids = srv.wait_workers(2)
        assert ctl_json(path, "reload", runtime) == {"reloading": True}
        srv.wait_for("Handling signal: hup")
        srv.wait_workers(2, exclude=pids, timeout=20)
        wait_until(
            lambda: ctl_json(path, "show metrics", runtime)["worker_restarts"]["reload"] == 2
        )
        assert ctl_json(path, "show stats", runtime)["reloads"] == 1
        assert ctl_json(path, "reopen", runtime) == {"reopening": True}
        srv.wait_for("Handling signal: usr1")
        assert request(srv.address, "/")[0] == 200


@pytest.mark.parametrize(("mode", "signal_name"), [("graceful", "term"), ("quick", "int")])
def test_shutdown(mode: str, signal_name: str) -> None:
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        path = control_path(srv)
        data = ctl_json(path, f"shutdown {mode}", runtime)
        assert data == {"shutdown": mode, "pid": srv.pid}
        assert srv.wait(timeout=20) == 0
        assert f"Handling signal: {signal_name}" in srv.log
        assert not os.path.exists(path)  # the master removed its socket


def test_shutdown_defaults_to_graceful() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        path = control_path(srv)
        assert ctl_json(path, "shutdown", runtime)["shutdown"] == "graceful"
        assert srv.wait(timeout=20) == 0
        assert "Handling signal: term" in srv.log


def test_interactive_prompt_keeps_history(tmp_path: os.PathLike[str]) -> None:
    state = os.path.join(str(tmp_path), "state")
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        path = control_path(srv)
        srv.wait_workers(1)
        done = gunicornc(
            "-s",
            path,
            runtime_dir=runtime,
            stdin="show stats\n\nworker add\nbogus\nshow workers\nquit\nshow stats\n",
            env={"XDG_STATE_HOME": state},
        )
        assert done.returncode == 0, done.stderr
        assert f"Connected to {path}" in done.stdout
        assert "workers_target" in done.stdout and "added" in done.stdout
        assert "unknown command: bogus" in done.stderr
        assert done.stdout.count("worker(s)") == 1  # nothing ran after quit
        srv.wait_workers(2)
        history = os.path.join(state, "gunicorn", "gunicornc_history")
        with open(history, encoding="utf-8") as f:
            lines = f.read().splitlines()
        assert "worker add" in lines and "show workers" in lines


def test_permission_bits_and_directory() -> None:
    with control_dir() as runtime:
        nested = os.path.join(runtime, "sub")
        with server(nested, "-w", "1") as srv:
            path = control_path(srv)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(nested).st_mode) == 0o700
        explicit = os.path.join(runtime, "ctl.sock")
        with server(
            runtime, "-w", "1", "--control-socket", explicit, "--control-socket-mode", "0660"
        ) as srv:
            assert control_path(srv) == explicit
            assert stat.S_IMODE(os.stat(explicit).st_mode) == 0o660
            assert ctl_json(explicit, "show stats", runtime)["pid"] == srv.pid


def test_no_control_socket() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1", "--no-control-socket") as srv:
        srv.wait_workers(1)
        assert os.listdir(runtime) == []
        assert "Control socket" not in srv.log
        done = gunicornc("-c", "show stats", runtime_dir=runtime)
        assert done.returncode == 2


def test_signals_still_work_while_a_command_runs() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        path = control_path(srv)
        pids = srv.wait_workers(1)
        srv.send(signal.SIGTTIN)
        srv.wait_workers(2)
        assert ctl_json(path, "show stats", runtime)["workers_target"] == 2
        assert pids[0] in srv.worker_pids()


DIRTY_APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dirty")


def test_dirty_arbiter_in_show_all_stats_and_text() -> None:
    args = ("-w", "1", "--pythonpath", DIRTY_APPS)
    dirty = ("--dirty-workers", "1", "--dirty-app", "dirty_apps:Echo")
    with control_dir() as runtime, server(runtime, *args, *dirty) as srv:
        path = control_path(srv)
        srv.wait_workers(2)  # one HTTP worker and the dirty arbiter

        def booted() -> object:
            info = ctl_json(path, "show dirty", runtime)
            return info if info["workers"] and all(w["booted"] for w in info["workers"]) else None

        info = wait_until(booted)
        assert info["enabled"] is True and info["pid"] in srv.worker_pids()
        for pid in [w["pid"] for w in info["workers"]]:
            srv.adopt(pid)
        assert ctl_json(path, "show stats", runtime)["dirty_arbiter_pid"] == info["pid"]
        tree = ctl_json(path, "show all", runtime)
        assert tree["dirty"]["pid"] == info["pid"] and len(tree["workers"]) == 1
        text = gunicornc("-s", path, "-c", "show dirty", runtime_dir=runtime).stdout
        assert f"dirty arbiter: pid {info['pid']}" in text
        assert "dirty_apps:Echo" in text
        assert ctl_json(path, "dirty add", runtime) == {"dirty_workers": 2}

        def two_workers() -> object:
            found = ctl_json(path, "show dirty", runtime)["workers"]
            return found if len(found) == 2 else None

        workers = wait_until(two_workers)
        for worker in workers:
            srv.adopt(worker["pid"])  # stopped with the server, killed by the test if not
        assert ctl_json(path, "dirty remove", runtime) == {"dirty_workers": 1}
