"""The soak against the asgi worker (soak_harness.py; GUNICORN_SOAK_REQUESTS sets its size)."""

import pytest

from tests.reliability.soak_harness import run_soak


@pytest.mark.slow
@pytest.mark.timeout(600)  # 100k requests; slower on a loaded machine
def test_soak_asgi() -> None:
    run_soak("asgi")
