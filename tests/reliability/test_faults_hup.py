"""Five HUPs under load (P5): nothing lost, the master stays (same pid, same number of
open descriptors) and every new generation runs the configuration file as it was at its
HUP (``raw_env`` changes ``STAGE``, which every answer carries in ``X-Stage``).

Two loads run side by side: one opens a connection per request (every error counts), the
other keeps its connections alive (a request that found its reused idle connection closed
is retried once, the only retry allowed).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.reliability.fault_harness import (
    WORKERS,
    bad_statuses,
    fd_count,
    matrix,
    record_faults,
    start,
    zombies,
)
from tests.reliability.load import Load
from tests.support import Gunicorn, request, wait_until

pytestmark = pytest.mark.slow

HUPS = 5


def _config(stage: int) -> str:
    return f"raw_env = ['STAGE={stage}']\n"


def _generation_of(server: Gunicorn, stage: int, load: Load) -> list[int] | None:
    """The live workers, once there are two and both answered with ``stage``."""
    pids = server.worker_pids()
    stages = {o.pid: o.headers.get("x-stage") for o in load.answered if o.pid in pids}
    if len(pids) == 2 and len(stages) == 2 and set(stages.values()) == {str(stage)}:
        return pids
    return None


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_five_hups_under_load(worker: str, tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(_config(0))
    server = start(worker, "-c", str(conf))
    try:
        assert request(server.address)[0] == 200
        fds_before = fd_count(server.pid)
        with (
            Load(server.address, lanes=4) as strict,
            Load(server.address, lanes=4, keepalive=True) as kept,
        ):
            strict.wait_answered(20)
            for stage in range(1, HUPS + 1):
                conf.write_text(_config(stage))
                server.send(signal.SIGHUP)
                # The next HUP comes once this generation answers (about a second apart).
                strict.first_answer(lambda o, s=str(stage): o.headers.get("x-stage") == s)
            newest = wait_until(lambda: _generation_of(server, HUPS, strict), timeout=30)
            after = time.monotonic()
            strict.wait_answered(10, since=after)
        # Each worker runs one configuration, and a generation's is the file at its HUP:
        # every worker answers with a single stage, and the last generation with the last.
        stages: dict[int, set[str]] = {}
        for o in [*strict.answered, *kept.answered]:
            assert o.pid is not None
            stages.setdefault(o.pid, set()).add(o.headers.get("x-stage", ""))
        mixed = {pid: seen for pid, seen in stages.items() if len(seen) != 1}
        stale = [o.id for o in strict.answered if o.opened > after and o.pid not in newest]
        fds_after = wait_until(lambda: fd_count(server.pid) == fds_before and fds_before, 5)
        record_faults(worker, "5x HUP (connection per request)", strict)
        record_faults(worker, "5x HUP (keep-alive, one retry)", kept)
        for load in (strict, kept):
            assert load.lost == [], [(o.lost, o.detail) for o in load.lost[:5]]
            assert bad_statuses(load) == {}
        assert mixed == {}
        assert stale == []
        assert {min(seen) for seen in stages.values()} == {str(n) for n in range(HUPS + 1)}
        assert fds_after == fds_before
        assert server.count("Hang up: Master") == HUPS
        assert server.proc is not None and server.proc.poll() is None
        wait_until(lambda: not zombies(server.pid), timeout=10)
        assert request(server.address)[0] == 200
    finally:
        server.stop()
