"""A worker stuck past ``timeout`` under load (P3).

sync and asgi: the stuck request blocks the worker's loop, its heartbeat stops, the
arbiter logs ``WORKER TIMEOUT`` and sends SIGABRT, the ``worker_abort`` hook runs, and a
replacement is running within ``timeout + 2`` seconds of the moment the request got stuck.
gthread by design keeps beating while one thread is stuck: the request times out in its
thread (a 500), the blocked thread makes the worker retire gracefully, and a replacement
comes within the same bound. Lost requests are excused only if they were on the stuck
worker (its connections are listed while its loop is blocked and can accept nothing; for
gthread, whose other threads keep serving, nothing may be lost).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.reliability import figures
from tests.reliability.fault_harness import (
    WORKERS,
    bad_statuses,
    held_connections,
    matrix,
    port_of,
    record_faults,
    start,
    xfail_known,
)
from tests.reliability.load import Load, on_connections
from tests.support import Gunicorn, request, wait_until

pytestmark = pytest.mark.slow

TIMEOUT = 2
HOOK = """
import time

def worker_abort(worker):
    with open({path!r}, "a") as f:
        f.write(f"worker_abort {{worker.pid}}\\n")

def post_fork(server, worker):
    with open({path!r}, "a") as f:
        f.write(f"post_fork {{worker.pid}} {{time.monotonic()}}\\n")
"""


def _forked_after(hooks: Path, since: float) -> float | None:
    """When the first worker forked after ``since`` ran its post_fork hook (monotonic)."""
    times = [float(t) for t in re.findall(r"post_fork \d+ ([\d.]+)", hooks.read_text())]
    later = [t for t in times if t > since]
    return min(later) if later else None


def _stuck_request(server: Gunicorn, answers: list[int]) -> threading.Thread:
    def send() -> None:
        try:
            answers.append(request(server.address, "/stuck?t=30", timeout=30)[0])
        except OSError:
            answers.append(0)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


#: Seen here: aborted, the asgi worker's loop runs on for a moment and accepts new
#: connections that it then closes with the rest (gunicorn/workers/gasgi.py).
ASGI_ACCEPTS_WHEN_ABORTED = (
    "asgi worker: after SIGABRT its event loop still accepts connections, then closes them "
    "unanswered (workers/gasgi.py handle_abort / _begin_stop)"
)


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_stuck_worker_is_replaced_within_timeout_plus_two(worker: str, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.log"
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(HOOK.format(path=str(hooks)))
    server = start(worker, "-c", str(conf), "--timeout", str(TIMEOUT))
    port = port_of(server)
    answers: list[int] = []
    try:
        with Load(server.address, lanes=6) as load:
            load.wait_answered(20)
            stuck = _stuck_request(server, answers)
            log = server.wait_for(r"stuck in \d+ at [\d.]+", timeout=10)
            victim_s, since_s = re.findall(r"stuck in (\d+) at ([\d.]+)", log)[-1]
            victim, stuck_since = int(victim_s), float(since_s)
            at = time.monotonic()
            try:
                held = held_connections(victim, port) if worker != "gthread" else set()
            except psutil.NoSuchProcess:
                held = set()  # already replaced (a slow test process): nothing is excused
            looked = time.monotonic()
            replaced_at = wait_until(lambda: _forked_after(hooks, stuck_since), timeout=20)
            stuck.join(35)
            load.wait_answered(20, since=time.monotonic())
        seconds = replaced_at - stuck_since
        excused = on_connections(load.lost, held, at)
        unexplained = [o for o in load.lost if o not in excused]
        record_faults(
            worker,
            f"worker stuck past timeout {TIMEOUT}s",
            load,
            lost=len(unexplained),
            lost_on_stuck_worker=len(excused),
        )
        figures.record(
            "replacement", worker, f"stuck past timeout {TIMEOUT}s", seconds=round(seconds, 2)
        )
        xfail_known(worker, unexplained, ASGI_ACCEPTS_WHEN_ABORTED)
        assert unexplained == [], [
            (o.lost, o.detail, o.port, o.opened - stuck_since, o.ended - stuck_since)
            for o in unexplained[:5]
        ] + [sorted(held), at - stuck_since, looked - stuck_since, replaced_at - stuck_since]
        assert bad_statuses(load) == {}
        # gthread answers the request at ``timeout`` and retires the worker when the thread
        # is still blocked a grace second later (gunicorn.workers.gthread._ABORT_GRACE).
        assert seconds <= TIMEOUT + 2 + (1 if worker == "gthread" else 0)
        if worker == "gthread":
            server.wait_for(rf"timed out after {TIMEOUT}\.0s and its thread is blocked")
            assert answers == [500]
        else:
            assert f"WORKER TIMEOUT (pid:{victim})" in server.log
            wait_until(lambda: f"worker_abort {victim}" in hooks.read_text(), timeout=5)
    finally:
        server.stop()
