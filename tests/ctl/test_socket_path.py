"""Where the control socket goes: one per instance by default, never stolen, stale replaced."""

from __future__ import annotations

import os
import signal
import socket
from unittest import mock

from support import wait_until

from ctl.helpers import control_dir, control_path, ctl_json, gunicornc, server
from gunicorn.config import Config
from gunicorn.ctl import paths


def test_two_instances_with_default_settings_are_both_controllable() -> None:
    with control_dir() as runtime:
        with server(runtime, "-w", "1") as first, server(runtime, "-w", "1") as second:
            path1, path2 = control_path(first), control_path(second)
            assert path1 != path2
            assert os.path.dirname(path1) == os.path.dirname(path2) == runtime
            port1 = first.address[1]  # type: ignore[index]
            assert os.path.basename(path1) == f"gunicorn-127.0.0.1-{port1}.ctl"
            assert ctl_json(path1, "show stats", runtime)["pid"] == first.pid
            assert ctl_json(path2, "show stats", runtime)["pid"] == second.pid
            # an instance name stands for its path
            name = f"127.0.0.1-{port1}"
            done = gunicornc("-j", "-s", name, "-c", "show stats", runtime_dir=runtime)
            assert done.returncode == 0 and str(first.pid) in done.stdout
            # without -s, gunicornc cannot guess which one
            done = gunicornc("-c", "show stats", runtime_dir=runtime)
            assert done.returncode == 2
            assert "several gunicorn servers" in done.stderr
            assert path1 in done.stderr and path2 in done.stderr
        assert os.listdir(runtime) == []  # each removed its own socket


def test_one_server_is_found_without_socket_option() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        control_path(srv)
        done = gunicornc("-j", "-c", "show stats", runtime_dir=runtime)
        assert done.returncode == 0, done.stderr
        assert str(srv.pid) in done.stdout


def test_proc_name_names_the_default_socket() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1", "-n", "shop api") as srv:
        path = control_path(srv)
        assert os.path.basename(path) == "gunicorn-shop-api.ctl"
        done = gunicornc("-j", "-s", "shop-api", "-c", "show stats", runtime_dir=runtime)
        assert done.returncode == 0 and str(srv.pid) in done.stdout


def test_same_proc_name_twice_gets_a_path_of_its_own() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1", "-n", "twin") as first:
        path1 = control_path(first)
        with server(runtime, "-w", "1", "-n", "twin") as second:
            path2 = control_path(second)
            assert path2 == os.path.join(runtime, f"gunicorn-twin-{second.pid}.ctl")
            assert ctl_json(path1, "show stats", runtime)["pid"] == first.pid
            assert ctl_json(path2, "show stats", runtime)["pid"] == second.pid


def test_a_live_configured_socket_is_never_stolen() -> None:
    with control_dir() as runtime:
        shared = os.path.join(runtime, "shared.ctl")
        with server(runtime, "-w", "1", "--control-socket", shared) as first:
            assert control_path(first) == shared
            with server(runtime, "-w", "1", "--control-socket", shared) as second:
                second.wait_for("No control socket")
                assert second.count("No control socket") == 1
                assert f"another server listens on {shared}" in second.log
                assert ctl_json(shared, "show stats", runtime)["pid"] == first.pid
            # the second one leaving does not remove the first one's socket
            assert ctl_json(shared, "show stats", runtime)["pid"] == first.pid


def test_a_stale_socket_is_replaced() -> None:
    with control_dir() as runtime:
        stale = os.path.join(runtime, "stale.ctl")
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(stale)
        dead.close()  # the file stays, nobody listens
        assert os.path.exists(stale)
        with server(runtime, "-w", "1", "--control-socket", stale) as srv:
            assert control_path(srv) == stale
            assert ctl_json(stale, "show stats", runtime)["pid"] == srv.pid


def test_a_file_that_is_not_a_socket_is_left_alone() -> None:
    with control_dir() as runtime:
        target = os.path.join(runtime, "data.ctl")
        with open(target, "w") as f:
            f.write("keep me")
        with server(runtime, "-w", "1", "--control-socket", target) as srv:
            srv.wait_for("No control socket")
        with open(target) as f:
            assert f.read() == "keep me"


def test_relative_path_is_taken_from_the_working_directory() -> None:
    with control_dir() as runtime:
        cfg = Config()
        cfg.set("control_socket", "run/app.ctl")
        with mock.patch("os.getcwd", return_value=runtime):
            assert paths.configured_path(cfg) == os.path.join(runtime, "run", "app.ctl")


def test_default_path_follows_xdg_runtime_dir() -> None:
    with control_dir() as runtime, mock.patch.dict(os.environ, {"XDG_RUNTIME_DIR": runtime}):
        cfg = Config()
        assert paths.configured_path(cfg) is None  # the default: per instance
        cfg.set("bind", ["unix:/run/app/web.sock"])
        name = paths.instance_name(cfg, [])
        assert name == "unix-run-app-web.sock"
        assert paths.instance_path(runtime, name) == f"{runtime}/gunicorn-{name}.ctl"


def test_long_names_are_shortened_to_fit_a_unix_socket_path() -> None:
    long_name = "x" * 300
    path = paths.instance_path("/tmp", long_name)
    assert len(path) <= 100
    assert path != paths.instance_path("/tmp", "x" * 299)


def test_usr2_upgrade_new_master_takes_the_path_over() -> None:
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        path = control_path(srv)
        old_master = srv.pid
        srv.wait_workers(1)
        srv.send(signal.SIGUSR2)
        log = srv.wait_for(r"Control socket listening at: ", count=2)
        fallback = log.split("Control socket listening at: ")[2].split()[0]
        assert fallback.startswith(path.removesuffix(".ctl") + "-")
        new_master = int(fallback.rsplit("-", 1)[1].removesuffix(".ctl"))
        srv.adopt(new_master)
        assert new_master != old_master
        # both masters answer, each on its own socket
        assert ctl_json(path, "show stats", runtime)["pid"] == old_master
        assert wait_until(lambda: ctl_json(fallback, "show stats", runtime))["pid"] == new_master
        srv.send(signal.SIGTERM)  # the old master leaves
        assert srv.wait() == 0
        # the new master moves to the instance's path and removes its temporary one
        wait_until(lambda: not os.path.exists(fallback))
        assert ctl_json(path, "show stats", runtime)["pid"] == new_master
        for pid in ctl_json(path, "show workers", runtime)["workers"]:
            srv.adopt(pid["pid"])
        os.kill(new_master, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(path))
