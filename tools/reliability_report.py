"""Write ``docs/reliability.md`` from the figures the reliability tests recorded.

Reads the JSON-lines figures file (``tests/reliability/figures.py``: ``$GUNICORN_FIGURES_DIR``
or ``tests/reliability/results``), keeps the latest line for each (section, worker, item),
and writes, for each worker class, the table of hostile-inputs §7: every row is computed
from the figures, a row with none says "not measured", and items this script does not know
are listed with their raw values. Nothing in the page is typed by hand.

Usage (from the repository root)::

    .venv/bin/python -m pytest tests/reliability tests/http2
    .venv/bin/python tools/reliability_report.py [--figures FILE] [--output FILE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.reliability.figures import SECTIONS, load, results_path  # noqa: E402

WORKERS = ("sync", "gthread", "gevent", "eventlet", "asgi")
COMMAND = (
    ".venv/bin/python -m pytest tests/reliability tests/http2 && "
    ".venv/bin/python tools/reliability_report.py"
)
META_KEYS = ("section", "worker", "item", "at")

Record = dict[str, Any]
Items = dict[str, Record]  # item -> its latest record


def latest(records: Iterable[Record]) -> dict[tuple[str, str, str], Record]:
    """The newest record for each (section, worker, item); ties go to the later line."""
    kept: dict[tuple[str, str, str], Record] = {}
    for record in records:
        key = (str(record["section"]), str(record["worker"]), str(record["item"]))
        old = kept.get(key)
        if old is None or float(record.get("at", 0)) >= float(old.get("at", 0)):
            kept[key] = record
    return kept


def values(record: Record) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in META_KEYS}


def raw(record: Record) -> str:
    """Any record, as ``key=value`` pairs."""
    return ", ".join(f"{k}={v}" for k, v in sorted(values(record).items()))


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------- one row per section
# Each summariser turns the items of one section (for one worker class) into the text of
# its row; an item whose shape it does not know raises KeyError/TypeError/ValueError and
# is listed raw instead.


def _total(items: Items, key: str) -> int:
    return sum(int(r[key]) for r in items.values())


def h1_battery(items: Items) -> str:
    tried, rejected = _total(items, "invalid_tried"), _total(items, "rejected_correctly")
    valid, served = _total(items, "valid_tried"), _total(items, "valid_served")
    calls = _total(items, "unexpected_app_calls")
    runs = ", ".join(
        f"{name} {r['rejected_correctly']}/{r['invalid_tried']}" for name, r in items.items()
    )
    return (
        f"**{rejected}/{tried}** invalid inputs rejected correctly ({runs}); "
        f"valid {served}/{valid} served; {calls} unexpected app calls"
    )


def smuggling(items: Items) -> str:
    direct = {k: r for k, r in items.items() if not k.startswith("proxy-")}
    proxied = {k: r for k, r in items.items() if k.startswith("proxy-")}
    parts = []
    if direct:
        passed, tried = _total(direct, "passed"), _total(direct, "tried")
        parts.append(f"**{passed}/{tried}** S/C/K variants handled as specified")
    if proxied:
        mismatches = _total(proxied, "mismatches")
        cases = _total(proxied, "cases")
        routes = ", ".join(
            f"{k.removeprefix('proxy-')} {r['mismatches']}" for k, r in proxied.items()
        )
        parts.append(f"proxy sandwich: **{mismatches} mismatches** in {cases} cases ({routes})")
    return "; ".join(parts)


def h2_conformance(items: Items) -> str:
    return "; ".join(f"**{r['passed']}/{r['total']}** passed ({k})" for k, r in items.items())


def h2_floods(items: Items) -> str:
    held = sum(1 for r in items.values() if r["outcome"] in ("passed", "xfailed"))
    rss = [float(r["rss_growth_mib"]) for r in items.values() if "rss_growth_mib" in r]
    p99 = [float(r["probe_p99_ms"]) for r in items.values() if "probe_p99_ms" in r]
    failed = [k for k, r in items.items() if r["outcome"] not in ("passed", "xfailed")]
    text = f"**{held}/{len(items)}** held"
    if rss:
        text += f"; peak RSS growth {max(rss):.1f} MiB"
    if p99:
        text += f"; worst probe p99 {max(p99):.0f} ms"
    if failed:
        text += f"; not held: {', '.join(failed)}"
    return text


def faults(items: Items) -> str:
    return "; ".join(
        f"{k}: **{r['lost']} lost** / {r['sent']} sent"
        + (f" ({r['503s']} answered 503)" if r.get("503s") else "")
        for k, r in items.items()
    )


def soak(items: Items) -> str:
    parts = []
    for _, r in items.items():
        delta = r["fd_delta"]
        parts.append(
            f"{r['answered']}/{r['requests']} answered, {r['errors']} errors; fd Δ master "
            f"{delta['master']:+d}, worker {delta['worker']:+d}; RSS {r['rss_warmup_mib']} → "
            f"{r['rss_end_mib']} MiB (**{r['rss_growth_mib']:+} MiB**) in {r['seconds']} s"
        )
    return "; ".join(parts)


def replacement(items: Items) -> str:
    return "; ".join(
        f"{k}: p50 {r['p50_ms']} ms, max {r['max_ms']} ms ({r['samples']} replacements)"
        if "p50_ms" in r
        else f"{k}: {r['seconds']} s"
        for k, r in items.items()
    )


def graceful(items: Items) -> str:
    parts = []
    for k, r in items.items():
        if "seconds" in r:
            parts.append(f"{k}: after **{r['seconds']} s**")
        else:
            parts.append(
                f"{k}: **{r['completed']}/{r['total']}** completed, "
                f"exit after {r['exit_seconds']} s"
            )
    return "; ".join(parts)


def slow_clients(items: Items) -> str:
    parts = []
    for name, r in items.items():
        probe = r["probe"]
        parts.append(
            f"{name} ({r['connections']} connections, {r['attack_s']} s, `{r['tool']}`): "
            f"probe {probe['answered']} answered, {probe['errors']} errors, p99 "
            f"{probe['p99_ms']} ms; worker survived: {r['worker_survived']}; recovery "
            f"{r['recovery_s']} s"
        )
    return "; ".join(parts)


def idle_flood(items: Items) -> str:
    parts = []
    for name, r in items.items():
        probes = "; ".join(
            f"{label} probe {p['answered']} answered, {p['errors']} errors, p99 {p['p99_ms']} ms"
            for label, p in (
                ("new-connection", r["probe_new"]),
                ("keep-alive", r["probe_keepalive"]),
            )
        )
        parts.append(
            f"{name}: {r['connections']} idle connections for {r['hold_s']} s: {probes}; "
            f"{r['closed_by_server']} closed by the server; worker survived: "
            f"{r['worker_survived']}; recovery {r['recovery_s']} s"
        )
    return "; ".join(parts)


def generic(items: Items) -> str:
    return "; ".join(f"{k}: {raw(r)}" for k, r in items.items())


#: The rows of §7 in order: (label, figures section, summariser).
ROWS: tuple[tuple[str, str, Callable[[Items], str]], ...] = (
    ("H1 invalid inputs rejected", "h1-battery", h1_battery),
    ("Smuggling (S+C+K) and proxy sandwich", "smuggling", smuggling),
    ("Differential (vs h11)", "differential", generic),
    ("HTTP/2 conformance (h2spec port)", "h2-conformance", h2_conformance),
    ("HTTP/2 floods F1-F13", "h2-floods", h2_floods),
    ("Faults survived: requests lost", "faults", faults),
    ("Graceful drain", "graceful", graceful),
    ("Soak: fd Δ and RSS growth", "soak", soak),
    ("Worker replacement time", "replacement", replacement),
    ("Slow clients", "slow-clients", slow_clients),
    ("Idle-connection flood", "idle-flood", idle_flood),
    ("Fuzzing", "fuzzing", generic),
)
assert {section for _, section, _ in ROWS} == set(SECTIONS), "a section has no row"


def row_text(items: Items, summarise: Callable[[Items], str]) -> str:
    if not items:
        return "not measured"
    try:
        return summarise(items)
    except (KeyError, TypeError, ValueError):
        known: Items = {}
        unknown: Items = {}
        for name, record in items.items():
            try:
                summarise({name: record})
                known[name] = record
            except (KeyError, TypeError, ValueError):
                unknown[name] = record
        parts = [summarise(known)] if known else []
        parts += [f"{name} (unrecognised): {raw(r)}" for name, r in unknown.items()]
        return "; ".join(parts)


#: Rows that do not apply to a worker class, and why (instead of "not measured").
_HTTP1_ONLY = "not applicable: the sync worker speaks HTTP/1.1 only"
NOT_APPLICABLE = {
    ("sync", "h2-conformance"): _HTTP1_ONLY,
    ("sync", "h2-floods"): _HTTP1_ONLY,
    ("eventlet", "h2-floods"): "not run: the floods run on gthread, gevent and asgi",
}


def worker_table(kept: dict[tuple[str, str, str], Record], worker: str) -> list[str]:
    """The §7 rows for ``worker``; for a variant (such as ``asgi-asyncio``) or the
    worker-independent table, only the rows it measured."""
    lines = ["| # | Figure | Measured |", "|---|---|---|"]
    full = worker in WORKERS
    for number, (label, section, summarise) in enumerate(ROWS, start=1):
        items = {k[2]: r for k, r in sorted(kept.items()) if k[0] == section and k[1] == worker}
        if not items and not full:
            continue
        text = row_text(items, summarise)
        if not items and any(k[:2] == (section, "-") for k in kept):
            text = "measured once for all worker classes (see the last table)"
        elif not items and (worker, section) in NOT_APPLICABLE:
            text = NOT_APPLICABLE[(worker, section)]
        lines.append(f"| {number} | {label} | {cell(text)} |")
    return lines


def flood_details(kept: dict[tuple[str, str, str], Record], worker: str) -> list[str]:
    floods = {k[2]: r for k, r in sorted(kept.items()) if k[:2] == ("h2-floods", worker)}
    if not floods:
        return []
    lines = [
        "",
        "<details><summary>HTTP/2 floods, test by test</summary>",
        "",
        "| Test | Outcome | Probe p99 (ms) | RSS growth (MiB) | How the attack ended |",
        "|---|---|---|---|---|",
    ]
    for name, r in floods.items():
        lines.append(
            f"| {cell(name)} | {r.get('outcome', '?')} | {r.get('probe_p99_ms', '-')} | "
            f"{r.get('rss_growth_mib', '-')} | {cell(str(r.get('attack', '-')))} |"
        )
    return [*lines, "", "</details>"]


def render(records: Iterable[Record], meta: dict[str, str]) -> str:
    kept = latest(records)
    unknown_sections = sorted({k[0] for k in kept} - set(SECTIONS))
    workers = [w for w in WORKERS] + sorted({k[1] for k in kept} - set(WORKERS) - {"-"})
    lines = [
        "# Reliability figures",
        "",
        "Generated by `tools/reliability_report.py` from the figures the reliability tests",
        "recorded (`tests/reliability/figures.py`); do not edit by hand. The rows are the",
        'numbers of hostile-inputs §7; "not measured" means no test recorded that figure in',
        "this run.",
        "",
        f"- Date: {meta['date']}",
        f"- Commit: `{meta['commit']}`",
        f"- Machine: {meta['machine']}",
        f"- Reproduce: `{COMMAND}`",
    ]
    for worker in workers:
        lines += ["", f"## {worker}", "", *worker_table(kept, worker), *flood_details(kept, worker)]
    shared = [k for k in kept if k[1] == "-"]
    if shared:
        lines += ["", "## Figures that do not depend on a worker class", ""]
        lines += worker_table(kept, "-")
    if unknown_sections:
        lines += ["", "## Unrecognised sections", ""]
        for key, record in sorted(kept.items()):
            if key[0] in unknown_sections:
                lines.append(f"- {key[0]} / {key[1]} / {key[2]}: {raw(record)}")
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} cores"
    return f"{text} ({cpu})" if cpu else text


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=None, help="the figures.jsonl to read")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "reliability.md")
    args = parser.parse_args(argv)
    source = args.figures or results_path()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": machine(),
    }
    args.output.write_text(render(load(source), meta))
    print(f"wrote {args.output} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
