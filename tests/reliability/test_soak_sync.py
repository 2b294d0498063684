"""The soak against the sync worker (soak_harness.py; GUNICORN_SOAK_REQUESTS sets its size)."""

import pytest

from tests.reliability.soak_harness import run_soak


@pytest.mark.slow
@pytest.mark.timeout(600)  # 10k connections; slower on a loaded machine
def test_soak_sync() -> None:
    run_soak("sync")
