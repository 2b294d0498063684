"""Readable text for ``gunicornc`` answers: tables and aligned ``key: value`` lines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
        and bool(rows)
        for i in range(len(headers))
    ]
    lines = []
    for row in [list(headers), *cells]:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)


def pairs(data: dict[str, Any]) -> str:
    if not data:
        return "(nothing)"
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in data.items())


def _workers(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no workers"
    return table(
        ("PID", "AGE", "BOOTED", "HEARTBEAT", "REQUESTS", "IN-FLIGHT", "STATE"),
        [
            (
                r["pid"],
                r["age"],
                r["booted"],
                f"{r['last_heartbeat']:.1f}s",
                r["requests"],
                r["in_flight"],
                "aborted" if r["aborted"] else "stopping" if r["retiring"] else "running",
            )
            for r in rows
        ],
    )


def show_workers(data: dict[str, Any]) -> str:
    return f"{_workers(data['workers'])}\n{data['count']} worker(s)"


def show_dirty(data: dict[str, Any]) -> str:
    if not data.get("enabled"):
        return "dirty arbiter: not running"
    out = [f"dirty arbiter: pid {data.get('pid')}"]
    workers = data.get("workers") or []
    if workers:
        out.append(
            table(
                ("PID", "AGE", "BOOTED", "APPS"),
                [(w.get("pid"), w.get("age"), w.get("booted"), w.get("apps")) for w in workers],
            )
        )
    apps = data.get("apps") or []
    if apps:
        out.append(
            table(
                ("APP", "WORKERS", "CURRENT"),
                [
                    (a.get("import_path"), a.get("worker_count"), a.get("current_workers"))
                    for a in apps
                ],
            )
        )
    return "\n".join(out)


def show_listeners(data: dict[str, Any]) -> str:
    rows = [(r["address"], r["fd"], r["type"]) for r in data["listeners"]]
    return table(("ADDRESS", "FD", "TYPE"), rows) if rows else "no listeners"


def show_all(data: dict[str, Any]) -> str:
    arbiter = data["arbiter"]
    head = (
        f"arbiter {arbiter['pid']} ({arbiter['proc_name']}, {arbiter['worker_class']}, "
        f"{arbiter['workers_target']} worker(s) wanted)"
    )
    return "\n".join([head, _workers(data["workers"]), show_dirty(data["dirty"])])


def show_metrics(data: dict[str, Any]) -> str:
    duration = data["request_duration_seconds"]
    count = duration["count"]
    mean = f"{1000 * duration['sum'] / count:.2f} ms" if count else "-"
    summary = {
        "requests": data["requests_total"],
        "in flight": data["requests_in_flight"],
        "mean duration": mean,
        "request body bytes": data["request_body_bytes_total"],
        "response body bytes": data["response_body_bytes_total"],
        "connections open": data["connections_open"],
        "http/2 streams open": data["http2_streams_open"],
        "http/2 streams": data["http2_streams_total"],
        "workers busy": data["workers"]["busy"],
        "workers idle": data["workers"]["idle"],
    }
    out = [pairs(summary)]
    rows = [
        (method, cls, n)
        for method, by_class in data["requests"].items()
        for cls, n in sorted(by_class.items())
    ]
    if rows:
        out += ["", table(("METHOD", "STATUS", "REQUESTS"), rows)]
    buckets = []
    for bound, n in duration["buckets"]:
        buckets.append((f"<= {bound}" if bound != "+Inf" else "+Inf", n))
        if n == count:
            break  # the larger buckets hold everything too
    if count:
        out += ["", table(("DURATION (s)", "REQUESTS"), buckets)]
    restarts = [(reason, n) for reason, n in data["worker_restarts"].items()]
    out += ["", table(("RESTART REASON", "WORKERS"), restarts)]
    if data["listen_queue"]:
        queue = [(q["listener"], q["depth"]) for q in data["listen_queue"]]
        out += ["", table(("LISTENER", "QUEUED"), queue)]
    return "\n".join(out)


def show_help(data: dict[str, Any]) -> str:
    return table(("COMMAND", "WHAT IT DOES"), [(c["command"], c["help"]) for c in data["commands"]])


RENDERERS: dict[str, Callable[[Any], str]] = {
    "show workers": show_workers,
    "show dirty": show_dirty,
    "show listeners": show_listeners,
    "show all": show_all,
    "show metrics": show_metrics,
    "help": show_help,
}


def render(command: str, data: Any) -> str:
    """The text ``gunicornc`` prints for the answer ``data`` to ``command``."""
    key = " ".join(command.split()[:2]).lower()
    renderer = RENDERERS.get(key) or RENDERERS.get(key.split(" ")[0])
    if renderer is not None:
        return renderer(data)
    if isinstance(data, dict):
        return pairs(data)
    return _cell(data)
