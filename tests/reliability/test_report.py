"""``tools/reliability_report.py`` turns a figures file into the published tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability import figures

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "reliability_report.py"


def table_rows(page: str, worker: str) -> dict[str, str]:
    """The ``| # | Figure | Measured |`` rows under ``## worker``, by figure label."""
    section = page.split(f"\n## {worker}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) == 3 and cells[0].isdigit():
            rows[cells[1]] = cells[2]
    return rows


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GUNICORN_FIGURES_DIR", str(tmp_path))
    record = figures.record
    for mode in ("tcp-whole", "unix-bytes"):
        record(
            "h1-battery",
            "gthread",
            mode,
            invalid_tried=100,
            rejected_correctly=100,
            valid_tried=10,
            valid_served=10,
            unexpected_app_calls=0,
            refusals_reset=0,
        )
    record("smuggling", "gthread", "tcp-whole", tried=90, passed=90)
    record(
        "smuggling",
        "gthread",
        "proxy-nginx-tcp-pp-off",
        cases=108,
        mismatches=3,
        address_errors=0,
        answered_by_app=5,
    )
    # An older line for the same item: the later one wins.
    record("smuggling", "gthread", "proxy-haproxy-unix-pp-on", cases=108, mismatches=7)
    record("smuggling", "gthread", "proxy-haproxy-unix-pp-on", cases=108, mismatches=0)
    record("h2-conformance", "gthread", "h2spec-port", passed=265, total=266)
    record(
        "h2-floods",
        "gthread",
        "f1_rapid_reset",
        outcome="passed",
        probe_p99_ms=12.5,
        rss_growth_mib=0.4,
        attack="GOAWAY(code=11)",
    )
    record(
        "h2-floods",
        "gthread",
        "f5_ping",
        outcome="failed",
        probe_p99_ms=300.0,
        rss_growth_mib=2.0,
        attack="no GOAWAY",
    )
    record("faults", "gthread", "5x HUP", sent=2000, answered=2000, lost=0, **{"503s": 0})
    record(
        "soak",
        "gthread",
        "mixed-requests",
        requests=100000,
        answered=100000,
        errors=0,
        seconds=30.0,
        fd_delta={"master": 0, "worker": 1},
        rss_warmup_mib=24.0,
        rss_end_mib=24.5,
        rss_growth_mib=0.5,
    )
    record("replacement", "gthread", "SIGKILL", p50_ms=120.0, max_ms=300.0, samples=4)
    record("fuzzing", "gthread", "atheris", executions=5000, crashes=0)
    # A shape the report does not know: listed raw, not dropped.
    record("faults", "gthread", "brand new fault", something=42)
    record("replacement", "-", "shared", p50_ms=1.0, max_ms=2.0, samples=1)
    output = tmp_path / "reliability.md"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(output)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return output.read_text()


def test_every_worker_class_gets_the_table_of_section_7(page: str) -> None:
    for worker in ("sync", "gthread", "gevent", "eventlet", "asgi"):
        rows = table_rows(page, worker)
        assert len(rows) == len(figures.SECTIONS), rows
    sync = table_rows(page, "sync")
    # Nothing recorded for sync; its replacement row points to the worker-independent one.
    assert sync.pop("Worker replacement time").startswith("measured once for all worker")
    # HTTP/2 does not apply to it; the rest was not measured.
    assert sync.pop("HTTP/2 conformance (h2spec port)").startswith("not applicable")
    assert sync.pop("HTTP/2 floods F1-F13").startswith("not applicable")
    assert set(sync.values()) == {"not measured"}


def test_the_rows_are_computed_from_the_figures(page: str) -> None:
    rows = table_rows(page, "gthread")
    assert rows["H1 invalid inputs rejected"].startswith("**200/200**")
    assert "valid 20/20 served" in rows["H1 invalid inputs rejected"]
    smuggling = rows["Smuggling (S+C+K) and proxy sandwich"]
    assert "**90/90**" in smuggling
    assert "**3 mismatches** in 216 cases" in smuggling  # the latest haproxy line: 0
    assert rows["HTTP/2 conformance (h2spec port)"] == "**265/266** passed (h2spec-port)"
    floods = rows["HTTP/2 floods F1-F13"]
    assert floods.startswith("**1/2** held")
    assert "worst probe p99 300 ms" in floods and "not held: f5_ping" in floods
    assert "fd Δ master +0, worker +1" in rows["Soak: fd Δ and RSS growth"]
    assert "**+0.5 MiB**" in rows["Soak: fd Δ and RSS growth"]
    assert rows["Worker replacement time"].startswith("SIGKILL: p50 120.0 ms, max 300.0 ms")
    assert rows["Graceful drain"] == "not measured"
    assert "atheris: crashes=0, executions=5000" in rows["Fuzzing"]


def test_unknown_items_are_listed_not_dropped(page: str) -> None:
    faults = table_rows(page, "gthread")["Faults survived: requests lost"]
    assert "5x HUP: **0 lost** / 2000 sent" in faults
    assert "brand new fault (unrecognised): something=42" in faults


def test_the_page_says_how_it_was_made(page: str) -> None:
    assert "- Reproduce: `.venv/bin/python -m pytest tests/reliability tests/http2 && " in page
    assert "- Commit: `" in page and " cores" in page
    assert "| f5_ping | failed | 300.0 | 2.0 | no GOAWAY |" in page
    assert "## Figures that do not depend on a worker class" in page
