"""A gunicorn config file that profiles the gthread pool thread with cProfile.

    cd benchmarks
    ../.venv/bin/gunicorn -c profile_conf.py -k gthread --threads 1 apps:hello &
    wrk -t1 -c64 -d8s http://127.0.0.1:8000/
    python -m pstats /tmp/gthread.prof   # then: sort tottime, stats 20

The profile is written 5 s after the worker booted (``PROFILE_SECONDS`` changes that),
to ``PROFILE_OUT`` (default /tmp/gthread.prof).
"""

from __future__ import annotations

import cProfile
import os
import threading
from typing import Any

from gunicorn.workers import gthread

PROFILE = cProfile.Profile()
OUT = os.environ.get("PROFILE_OUT", "/tmp/gthread.prof")
SECONDS = float(os.environ.get("PROFILE_SECONDS", "5"))
_pool_thread = gthread.ThreadWorker._pool_thread


def _profiled(self: Any, *args: Any, **kwargs: Any) -> Any:
    PROFILE.enable()
    try:
        return _pool_thread(self, *args, **kwargs)
    finally:
        PROFILE.disable()


gthread.ThreadWorker._pool_thread = _profiled  # type: ignore[method-assign]


def post_worker_init(worker: Any) -> None:
    threading.Timer(SECONDS, PROFILE.dump_stats, args=(OUT,)).start()
