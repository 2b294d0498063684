"""A metrics snapshot in the Prometheus text format (0.0.4) or OpenMetrics 1.0.

Names follow prometheus_client's conventions: a ``gunicorn_`` namespace, base units in the
name (``_seconds``, ``_bytes``), ``_total`` on counters, histograms as ``_bucket{le=...}``,
``_sum`` and ``_count``.
"""

from __future__ import annotations

from typing import Any

from gunicorn.instrument.metrics import METHODS, STATUS_CLASSES

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in pairs.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class _Writer:
    def __init__(self, openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, unit: str = "") -> None:
        """Start a metric family; ``name`` is the family name (without ``_total``)."""
        shown = name if self.openmetrics or kind != "counter" else f"{name}_total"
        self.lines.append(f"# HELP {shown} {help_text}")
        self.lines.append(f"# TYPE {shown} {kind}")
        if unit and self.openmetrics:
            self.lines.append(f"# UNIT {name} {unit}")

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self.lines.append(f"{name}{_labels(labels or {})} {_number(value)}")

    def text(self) -> str:
        if self.openmetrics:
            self.lines.append("# EOF")
        return "\n".join(self.lines) + "\n"


def render(snapshot: dict[str, Any], openmetrics: bool = False) -> str:
    """The exposition of ``MetricsRegistry.snapshot()``."""
    out = _Writer(openmetrics)

    out.family("gunicorn_requests", "counter", "HTTP requests answered, by method and status.")
    requests = snapshot["requests"]
    for method in METHODS:
        for cls in STATUS_CLASSES:
            count = requests.get(method, {}).get(cls, 0)
            if count or (method == "GET" and cls == "2xx"):
                out.sample("gunicorn_requests_total", count, {"method": method, "status": cls})

    duration = snapshot["request_duration_seconds"]
    out.family(
        "gunicorn_request_duration_seconds",
        "histogram",
        "Time from the start of a request to the end of its response.",
        unit="seconds",
    )
    for bound, count in duration["buckets"]:
        le = bound if isinstance(bound, str) else _number(float(bound))
        out.sample("gunicorn_request_duration_seconds_bucket", count, {"le": le})
    out.sample("gunicorn_request_duration_seconds_count", duration["count"])
    out.sample("gunicorn_request_duration_seconds_sum", float(duration["sum"]))

    out.family("gunicorn_requests_in_flight", "gauge", "Requests being served right now.")
    out.sample("gunicorn_requests_in_flight", snapshot["requests_in_flight"])

    for key, help_text in (
        ("request_body_bytes", "Request body bytes read by the application."),
        ("response_body_bytes", "Response body bytes sent to clients."),
    ):
        out.family(f"gunicorn_{key}", "counter", help_text, unit="bytes")
        out.sample(f"gunicorn_{key}_total", snapshot[f"{key}_total"])

    out.family("gunicorn_connections_open", "gauge", "Client connections open in the workers.")
    out.sample("gunicorn_connections_open", snapshot["connections_open"])

    out.family("gunicorn_http2_streams_open", "gauge", "HTTP/2 streams being served.")
    out.sample("gunicorn_http2_streams_open", snapshot["http2_streams_open"])
    out.family("gunicorn_http2_streams", "counter", "HTTP/2 streams that carried a request.")
    out.sample("gunicorn_http2_streams_total", snapshot["http2_streams_total"])

    out.family("gunicorn_workers", "gauge", "Live workers, busy (serving) or idle.")
    for state, count in snapshot["workers"].items():
        out.sample("gunicorn_workers", count, {"state": state})

    out.family("gunicorn_worker_restarts", "counter", "Workers replaced, by reason.")
    for reason, count in snapshot["worker_restarts"].items():
        out.sample("gunicorn_worker_restarts_total", count, {"reason": reason})

    if snapshot["listen_queue"]:
        out.family(
            "gunicorn_listen_queue_depth",
            "gauge",
            "Connections waiting in a listener's accept queue.",
        )
        for entry in snapshot["listen_queue"]:
            out.sample(
                "gunicorn_listen_queue_depth", entry["depth"], {"listener": entry["listener"]}
            )
    return out.text()
