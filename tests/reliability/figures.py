"""Figures that the reliability tests measure, collected for ``docs/reliability.md``.

A test calls ``record(section, worker, item, **values)``; each call appends one JSON line
to ``figures.jsonl`` in ``$GUNICORN_FIGURES_DIR`` (default: ``tests/reliability/results``).
Lines are written with one ``write`` on an ``O_APPEND`` descriptor, so the processes of a
parallel (xdist) run never interleave within a line. ``tools/reliability_report.py`` turns
the file into the published tables; nothing in the page is typed by hand.

``section`` is one of the rows of hostile-inputs §7 (``SECTIONS``); ``worker`` is a worker
class name, or ``"-"`` for figures that do not depend on one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

SECTIONS = (
    "h1-battery",  # invalid inputs tried / rejected, per feed mode and socket kind
    "smuggling",  # S+C+K variants rejected; proxy-sandwich mismatches
    "differential",  # disagreements with h11 (and why)
    "h2-conformance",  # the h2spec-style port: passed/total
    "h2-floods",  # F1-F13: held, peak RSS growth, probe p99
    "faults",  # requests lost under HUP/USR2/TTIN/TTOU/max_requests/kill/...
    "graceful",  # in-flight requests completed on TERM; seconds to exit
    "soak",  # fd delta and RSS growth after mixed requests
    "replacement",  # worker replacement time after a crash
    "slow-clients",  # slowloris / slow POST / slow read: probe p99 and errors
    "idle-flood",  # connections held that never send a byte: probe answered
    "fuzzing",  # executions, crashes, slowest input
)

DEFAULT_DIR = Path(__file__).resolve().parent / "results"


def results_path() -> Path:
    """The JSON-lines file the figures go to (its directory is created)."""
    directory = Path(os.environ.get("GUNICORN_FIGURES_DIR") or DEFAULT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "figures.jsonl"


def record(section: str, worker: str, item: str, **values: Any) -> None:
    """Append one measured figure: ``values`` must be JSON-serialisable."""
    if section not in SECTIONS:
        raise ValueError(f"unknown figures section {section!r}; one of {SECTIONS}")
    line = json.dumps(
        {"section": section, "worker": worker, "item": item, "at": time.time(), **values},
        sort_keys=True,
    )
    fd = os.open(results_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def load(path: Path | None = None) -> list[dict[str, Any]]:
    """Every figure recorded so far (the latest run's lines come last)."""
    source = path or results_path()
    if not source.exists():
        return []
    return [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
