"""The worker base class contract and the heartbeat file, in this process and a forked one."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gunicorn.children import Child
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http import errors
from gunicorn.workers.base import Worker
from gunicorn.workers.workertmp import BOOTED, BOOTING, BROKEN, WorkerTmp


class App:
    def wsgi(self) -> Any:
        return lambda environ, start_response: [b""]


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    config = Config()
    config.set("worker_tmp_dir", str(tmp_path))
    return config


def make_worker(cfg: Config, **settings: Any) -> Worker:
    for name, value in settings.items():
        cfg.set(name, value)
    return Worker(1, os.getpid(), [], App(), cfg.timeout / 2, cfg, Logger(cfg))


def test_attributes_of_a_new_worker(cfg: Config) -> None:
    worker = make_worker(cfg)
    try:
        assert worker.pid == "[booting]"
        assert str(worker) == "<Worker [booting]>"
        assert (worker.booted, worker.aborted, worker.alive, worker.nr) == (False, False, True, 0)
        assert worker.max_requests == sys.maxsize
        assert worker.timeout == 15
        assert worker.reloader is None and worker.wsgi is None
        names = {s.name for s in worker.SIGNALS}
        expected = {"SIGABRT", "SIGHUP", "SIGQUIT", "SIGINT", "SIGTERM"}
        assert names == expected | {"SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCHLD"}
    finally:
        worker.tmp.close()


def test_max_requests_with_jitter(cfg: Config) -> None:
    seen = set()
    for _ in range(60):
        worker = make_worker(cfg, max_requests=100, max_requests_jitter=5)
        seen.add(worker.max_requests)
        worker.tmp.close()
    assert seen <= set(range(100, 106))
    assert len(seen) > 1


def test_count_request_stops_after_max_requests(cfg: Config) -> None:
    worker = make_worker(cfg, max_requests=2)
    try:
        worker.count_request()
        assert worker.alive
        worker.count_request()
        assert not worker.alive and worker.nr == 2
    finally:
        worker.tmp.close()


def test_heartbeat_file_is_unlinked_and_tracks_notify(cfg: Config, tmp_path: Path) -> None:
    tmp = WorkerTmp(cfg)
    try:
        assert list(tmp_path.iterdir()) == []  # nothing left on disk
        first = tmp.last_update()
        time.sleep(0.01)
        tmp.notify()
        assert tmp.last_update() > first
        assert abs(tmp.last_update() - time.monotonic()) < 1
    finally:
        tmp.close()
    assert tmp.closed


def test_heartbeat_tmp_dir_must_exist(cfg: Config, tmp_path: Path) -> None:
    cfg.set("worker_tmp_dir", str(tmp_path))
    os.rmdir(tmp_path)
    with pytest.raises(RuntimeError, match="doesn't exist"):
        WorkerTmp(cfg)


def test_child_record_reads_a_forked_worker(cfg: Config) -> None:
    worker = make_worker(cfg)
    child = Child(pid=0, worker=worker)
    child.refresh()
    assert not child.booted and worker.tmp.boot_state() == BOOTING
    pid = os.fork()
    if pid == 0:  # the "worker": boot, ask for a reload, then beat
        try:
            worker.tmp.mark_booted()
            worker.tmp.request_reload()
            time.sleep(0.02)
            worker.notify()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child.refresh()
    assert child.booted and not child.broken and child.reload_requested
    assert worker.tmp.boot_state() == BOOTED
    assert child.silence(time.monotonic()) < 1
    child.clear_reload_request()
    child.refresh()
    assert not child.reload_requested
    worker.tmp.mark_broken()
    child.refresh()
    assert child.broken and worker.tmp.boot_state() == BROKEN
    child.close()
    child.refresh()  # a closed record keeps its last state
    assert child.booted


def test_heartbeat_alone_counts_as_booted(cfg: Config) -> None:
    worker = make_worker(cfg)
    child = Child(pid=0, worker=worker)
    child.refresh()
    time.sleep(0.01)
    worker.notify()  # a worker class that never calls the base boot flag
    child.refresh()
    assert child.booted
    child.close()


def _response(worker: Worker, exc: BaseException, req: Any = None) -> bytes:
    server, client = socket.socketpair()
    with server, client:
        worker.handle_error(req, server, ("127.0.0.1", 5000), exc)
        server.close()
        client.settimeout(2)
        data = b""
        while chunk := client.recv(4096):
            data += chunk
    return data


def test_handle_error_answers_with_the_error_status(cfg: Config) -> None:
    worker = make_worker(cfg)
    try:
        too_big = _response(worker, errors.LimitRequestHeaders("too many headers"))
        assert too_big.startswith(b"HTTP/1.1 431 ")
        assert b"connection: close" in too_big.lower()
        bad = _response(worker, errors.InvalidHeader("bad"))
        assert bad.startswith(b"HTTP/1.1 400 ")
        crash = _response(worker, ValueError("boom"))
        assert crash.startswith(b"HTTP/1.1 500 ")
        assert b"boom" not in crash  # internals are not sent to the client
    finally:
        worker.tmp.close()


def test_worker_signal_handlers(cfg: Config, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    cfg.set("worker_int", lambda w: marks.write_text("int"))
    worker = make_worker(cfg)
    pid = os.fork()
    if pid == 0:
        code = 9
        try:
            worker.PIPE = os.pipe()
            os.set_blocking(worker.PIPE[1], False)
            worker.init_signals()
            os.kill(os.getpid(), signal.SIGTERM)  # graceful: a flag only
            code = 5 if not worker.alive else 6
            os.kill(os.getpid(), signal.SIGWINCH)  # ignored
            os.kill(os.getpid(), signal.SIGQUIT)  # quick: worker_int hook, exit 0
            code = 7
        except SystemExit as exc:
            code = 10 + int(exc.code or 0) if code == 5 else 8
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 10
    assert marks.read_text() == "int"
    worker.tmp.close()
