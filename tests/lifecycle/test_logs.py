"""Rejected requests are logged at INFO, through a rate limit that a flood cannot beat."""

from __future__ import annotations

import re

from gunicorn.lifecycle.logs import RateLimit
from tests.support import Gunicorn
from tests.wsgi.wire import WSGI_DIR, exchange


def test_rate_limit_allows_a_burst_then_counts_what_it_drops() -> None:
    limit = RateLimit(burst=3, rate=0.0)
    assert [limit.allow() for _ in range(3)] == [(True, 0)] * 3
    assert limit.allow() == (False, 0)
    assert limit.allow() == (False, 0)
    assert limit.dropped == 2
    limit.rate = 1e9  # refill at once: the next allowed line reports the two it dropped
    assert limit.allow() == (True, 2)
    assert limit.dropped == 0


def test_a_flood_of_bad_requests_writes_a_bounded_number_of_lines() -> None:
    with Gunicorn("-k", "sync", "--chdir", str(WSGI_DIR), "apps:app") as server:
        for _ in range(200):
            exchange(server.address, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
        exchange(server.address, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
        server.wait_for("Invalid request from ip=127.0.0.1")
        lines = re.findall(r"\[INFO\] Invalid request from ip=127\.0\.0\.1", server.log)
        # 20 in the burst, then 5 a second: 200 requests in well under the time that
        # would refill the bucket for all of them.
        assert 20 <= len(lines) < 200
        assert "[ERROR]" not in server.log
