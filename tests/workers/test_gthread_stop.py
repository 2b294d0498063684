"""A stopping gthread worker loses no request: under continuous keep-alive load, HUP,
TTIN/TTOU and max_requests recycling end with every request answered."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.loadgen import Load
from tests.support import Gunicorn, wait_until
from tests.wsgi.wire import WSGI_DIR

ARGS = ["-k", "gthread", "--threads", "4", "--chdir", str(WSGI_DIR), "apps:app"]

pytestmark = pytest.mark.slow


def _assert_nothing_lost(load: Load) -> None:
    assert load.failed == 0, f"{load.failed} failed of {load.ok + load.failed}: {load.reasons}"
    assert load.ok > 0


def test_hup_loses_no_request() -> None:
    with Gunicorn("-w", "2", *ARGS) as server:
        assert server.address is not None and not isinstance(server.address, str)
        with Load(server.address, connections=16) as load:
            load.wait_for_requests(200)
            for _ in range(3):
                before = set(server.wait_workers(2))
                server.send(signal.SIGHUP)
                wait_until(lambda b=before: not (set(server.worker_pids()) & b), timeout=20)
                load.wait_for_requests(200)
        _assert_nothing_lost(load)


def test_ttin_ttou_loses_no_request() -> None:
    with Gunicorn("-w", "2", *ARGS) as server:
        assert server.address is not None and not isinstance(server.address, str)
        with Load(server.address, connections=16) as load:
            load.wait_for_requests(200)
            server.send(signal.SIGTTIN)
            server.wait_workers(3, timeout=20)
            load.wait_for_requests(200)
            server.send(signal.SIGTTOU)
            wait_until(lambda: len(server.worker_pids()) == 2, timeout=20)
            server.send(signal.SIGTTOU)
            wait_until(lambda: len(server.worker_pids()) == 1, timeout=20)
            load.wait_for_requests(200)
        _assert_nothing_lost(load)


def test_max_requests_recycles_on_time_and_loses_no_request() -> None:
    args = ["--max-requests", "100", "--max-requests-jitter", "20"]
    access = ["--access-logfile", "-", "--access-logformat", "served-by %(p)s"]
    with Gunicorn("-w", "2", *args, *access, *ARGS) as server:
        assert server.address is not None and not isinstance(server.address, str)
        with Load(server.address, connections=8) as load:
            wait_until(lambda: server.count("Autorestarting worker") >= 4, timeout=30)
        _assert_nothing_lost(load)
        log = server.log
    served = Counter(re.findall(r"served-by <(\d+)>", log))
    retired = set(re.findall(r"\[(\d+)\] \[INFO\] Autorestarting worker", log))
    assert retired
    for pid in retired:
        # The limit (at most 100 + 20 of jitter), plus what the 8 clients already had in
        # flight when it was reached.
        assert served[pid] <= 120 + 8, (pid, served[pid])


def test_usr2_upgrade_then_term_of_the_old_master_loses_no_request(tmp_path: Path) -> None:
    pidfile = tmp_path / "g.pid"
    with Gunicorn("-w", "2", "--pid", str(pidfile), *ARGS) as server:
        assert server.address is not None and not isinstance(server.address, str)
        server.wait_workers(2)
        with Load(server.address, connections=16) as load:
            load.wait_for_requests(200)
            server.send(signal.SIGUSR2)
            new_pidfile = Path(f"{pidfile}.2")
            wait_until(new_pidfile.exists, timeout=20)
            new_master = int(new_pidfile.read_text())
            server.adopt(new_master)
            server.wait_for("Booting worker", count=4, timeout=20)
            load.wait_for_requests(200)
            server.send(signal.SIGTERM)  # retire the old generation
            assert server.wait() == 0
            load.wait_for_requests(200)
        _assert_nothing_lost(load)
        os.kill(new_master, signal.SIGTERM)
        wait_until(lambda: not psutil.pid_exists(new_master) or _zombie(new_master), timeout=20)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
