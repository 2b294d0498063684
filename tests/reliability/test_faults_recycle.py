"""``max_requests`` with jitter under load (P9): workers recycle, each after between
``max_requests`` and ``max_requests + jitter`` requests (plus the requests it had in
flight when it reached its limit), and nothing is lost. Every answer names its worker,
so each retired worker's share is counted exactly."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.reliability.fault_harness import (
    WORKERS,
    bad_statuses,
    matrix,
    record_faults,
    serving,
    start,
)
from tests.reliability.load import Load

pytestmark = pytest.mark.slow

MAX_REQUESTS = 30
JITTER = 10
LANES = 6
REQUESTS = 300
#: Requests a worker may finish after reaching its limit: those it had already taken.
IN_FLIGHT = {"sync": 0, "gthread": LANES, "asgi": LANES, "gevent": LANES, "eventlet": LANES}


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_max_requests_recycling_loses_nothing(worker: str) -> None:
    args = ["--max-requests", str(MAX_REQUESTS), "--max-requests-jitter", str(JITTER)]
    server = start(worker, *args, probe=False)
    try:
        probed = serving(server)  # a request too: it counts toward that worker's limit
        with Load(server.address, lanes=LANES) as load:
            load.wait_answered(REQUESTS, timeout=60)
        # Workers that reached their limit finish (gthread lingers 2 s) before counting.
        live = set(server.wait_workers(2, timeout=30))
        served = Counter(o.pid for o in load.answered)
        served[probed] += 1
        retired = {pid: n for pid, n in served.items() if pid not in live}
        answered = len(load.answered)
        most = MAX_REQUESTS + JITTER + IN_FLIGHT[worker]
        record_faults(
            worker,
            f"max_requests {MAX_REQUESTS} + jitter {JITTER}",
            load,
            recycles=len(retired),
            expected_recycles=round(answered / (MAX_REQUESTS + JITTER / 2), 1),
        )
        assert load.lost == [], [(o.lost, o.detail) for o in load.lost[:5]]
        assert bad_statuses(load) == {}
        assert None not in served
        assert all(MAX_REQUESTS <= n <= most for n in retired.values()), retired
        # Whatever the live workers did not serve was served by retired ones.
        assert len(retired) >= (answered - len(live) * most) / most
        assert server.count("Autorestarting worker after current request") >= len(retired)
    finally:
        server.stop()
