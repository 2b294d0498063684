"""The fault battery on the gevent worker (the tests: ``green_faults.py``)."""

from __future__ import annotations

import pytest

from tests.reliability.green_faults import (  # noqa: F401 (collected here)
    test_access_log_on_a_full_tmpfs,
    test_access_log_on_dev_full,
    test_deleted_unix_socket_is_bound_again,
    test_five_hups_under_load,
    test_graceful_timeout_cuts_a_long_request,
    test_killed_worker_loses_only_its_own_requests,
    test_max_requests_recycling_loses_nothing,
    test_stuck_worker_is_replaced_within_timeout_plus_two,
    test_term_drains_requests_in_flight,
    test_term_refuses_new_connections_at_once,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def worker() -> str:
    return "gevent"
