"""The fault battery on the gevent worker (the tests: ``green_faults.py``)."""

from __future__ import annotations

import pytest

from tests.reliability.green_faults import *  # noqa: F403 (the tests, collected here)

pytestmark = pytest.mark.slow


@pytest.fixture
def worker() -> str:
    return "gevent"
