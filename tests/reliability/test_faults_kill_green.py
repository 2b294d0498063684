"""The kill test of ``test_faults_kill.py`` on the gevent worker, in a file of its own so
that a parallel run spreads the load. (eventlet is left out of the fault runs: its
workers take seconds to boot on a loaded machine, too long for this suite's budget.)"""

from __future__ import annotations

import pytest

from tests.reliability.test_faults_kill import run_kills

pytestmark = pytest.mark.slow


def test_killed_gevent_worker_loses_only_its_own_requests() -> None:
    run_kills("gevent")
