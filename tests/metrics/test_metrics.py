"""Metrics added up by the master across workers, seen three ways: ``gunicornc show metrics``,
the OpenMetrics/Prometheus endpoint (``--metrics-bind``) and StatsD."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from ctl.helpers import control_dir, control_path, ctl_json, server, wait_metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from support import Gunicorn, wait_until


def metrics_url(srv: Gunicorn) -> str:
    log = srv.wait_for(r"Metrics at: ")
    line = next(ln for ln in log.splitlines() if "Metrics at: " in ln)
    return line.split("Metrics at: ", 1)[1].strip()


def scrape(url: str, openmetrics: bool = False) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from a real HTTP scrape."""
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    reply = httpx.get(url, headers=headers, timeout=10)
    assert reply.status_code == 200
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    if openmetrics:
        assert reply.headers["content-type"].startswith("application/openmetrics-text")
    else:
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in parse(reply.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _value(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    return samples[name].get(tuple(sorted(labels.items())), 0.0)


@pytest.fixture
def four_workers() -> Iterator[tuple[Gunicorn, str, str, str]]:
    args = ("-w", "4", "--metrics-bind", "127.0.0.1:0")
    with control_dir() as runtime, server(runtime, *args) as srv:
        srv.wait_workers(4)
        yield srv, control_path(srv), runtime, metrics_url(srv)


def _traffic(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(20):
            assert client.get("/").status_code == 200
        for _ in range(10):
            assert client.post("/", content=b"x" * 100).status_code == 200
        for _ in range(5):
            assert client.get("/status/404").status_code == 404
        for _ in range(3):
            assert client.delete("/status/503").status_code == 503
        for _ in range(4):
            assert client.get("/sleep/0.06").status_code == 200
        for _ in range(2):
            assert client.request("PROPFIND", "/").status_code == 200


TOTAL = 44
BODY_IN = 10 * 100
BODY_OUT = 20 * 3 + 10 * 103 + 5 * 3 + 3 * 3 + 4 * 3 + 2 * 3


def test_counts_match_the_traffic_across_four_workers(
    four_workers: tuple[Gunicorn, str, str, str],
) -> None:
    srv, path, runtime, url = four_workers
    _traffic(srv.url or "")
    data = wait_metric(path, runtime, "requests_total", TOTAL)
    assert data["requests"] == {
        "GET": {"2xx": 24, "4xx": 5},
        "POST": {"2xx": 10},
        "DELETE": {"5xx": 3},
        "other": {"2xx": 2},
    }
    assert data["request_body_bytes_total"] == BODY_IN
    assert data["response_body_bytes_total"] == BODY_OUT
    assert data["requests_in_flight"] == 0
    assert data["workers"] == {"busy": 0, "idle": 4}

    samples = scrape(url)
    assert _value(samples, "gunicorn_requests_total", method="GET", status="2xx") == 24
    assert _value(samples, "gunicorn_requests_total", method="GET", status="4xx") == 5
    assert _value(samples, "gunicorn_requests_total", method="POST", status="2xx") == 10
    assert _value(samples, "gunicorn_requests_total", method="DELETE", status="5xx") == 3
    assert _value(samples, "gunicorn_requests_total", method="other", status="2xx") == 2
    assert _value(samples, "gunicorn_request_body_bytes_total") == BODY_IN
    assert _value(samples, "gunicorn_response_body_bytes_total") == BODY_OUT
    # durations: plausible, with the four slow requests above 50 ms
    assert _value(samples, "gunicorn_request_duration_seconds_count") == TOTAL
    assert _value(samples, "gunicorn_request_duration_seconds_bucket", le="+Inf") == TOTAL
    assert _value(samples, "gunicorn_request_duration_seconds_bucket", le="0.05") <= TOTAL - 4
    assert _value(samples, "gunicorn_request_duration_seconds_bucket", le="10.0") == TOTAL
    total_time = _value(samples, "gunicorn_request_duration_seconds_sum")
    assert 4 * 0.06 <= total_time < TOTAL * 1.0
    assert _value(samples, "gunicorn_workers", state="idle") == 4
    assert _value(samples, "gunicorn_requests_in_flight") == 0
    for reason in ("timeout", "max_requests", "crash", "reload", "killed"):
        assert _value(samples, "gunicorn_worker_restarts_total", reason=reason) == 0
    assert ("listener", srv.url) in next(iter(samples["gunicorn_listen_queue_depth"]))

    # the same numbers in OpenMetrics
    om = scrape(url, openmetrics=True)
    assert _value(om, "gunicorn_requests_total", method="GET", status="2xx") == 24
    assert _value(om, "gunicorn_request_duration_seconds_count") == TOTAL


def test_counts_survive_a_killed_worker(four_workers: tuple[Gunicorn, str, str, str]) -> None:
    srv, path, runtime, url = four_workers
    _traffic(srv.url or "")
    wait_metric(path, runtime, "requests_total", TOTAL)
    pids = srv.wait_workers(4)
    os.kill(pids[0], signal.SIGKILL)
    srv.wait_workers(4, exclude=[pids[0]])
    data = wait_until(
        lambda: (
            (d := ctl_json(path, "show metrics", runtime))["worker_restarts"]["crash"] == 1 and d
        )
    )
    assert data["requests_total"] == TOTAL
    assert data["request_body_bytes_total"] == BODY_IN
    _traffic(srv.url or "")
    data = wait_metric(path, runtime, "requests_total", 2 * TOTAL)
    assert data["requests"]["GET"] == {"2xx": 48, "4xx": 10}
    samples = scrape(url)
    assert _value(samples, "gunicorn_worker_restarts_total", reason="crash") == 1
    assert _value(samples, "gunicorn_request_duration_seconds_count") == 2 * TOTAL


def test_in_flight_and_busy_workers(four_workers: tuple[Gunicorn, str, str, str]) -> None:
    srv, path, runtime, url = four_workers
    flag = os.path.join(runtime, "go")
    results: list[int] = []

    def call() -> None:
        results.append(httpx.get(f"{srv.url}/wait?{flag}", timeout=30).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        data = wait_metric(path, runtime, "requests_in_flight", 4)
        assert data["workers"] == {"busy": 4, "idle": 0}
        assert data["connections_open"] == 4
        samples = scrape(url)
        assert _value(samples, "gunicorn_workers", state="busy") == 4
        assert _value(samples, "gunicorn_requests_in_flight") == 4
    finally:
        open(flag, "w").close()
        for thread in threads:
            thread.join(30)
    assert results == [200] * 4
    data = wait_metric(path, runtime, "requests_in_flight", 0)
    assert data["workers"] == {"busy": 0, "idle": 4}
    assert data["connections_open"] == 0


def test_restart_reasons_max_requests_and_timeout() -> None:
    with control_dir() as runtime:
        args = ("-w", "1", "--max-requests", "2", "-t", "1")
        with server(runtime, *args) as srv:
            path = control_path(srv)
            pid = srv.wait_workers(1)[0]
            for _ in range(2):
                assert httpx.get(f"{srv.url}/", timeout=10).status_code == 200
            pid = srv.wait_workers(1, exclude=[pid])[0]
            wait_until(
                lambda: (
                    ctl_json(path, "show metrics", runtime)["worker_restarts"]["max_requests"] == 1
                )
            )
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"{srv.url}/sleep/5", timeout=4).raise_for_status()
            srv.wait_workers(1, exclude=[pid])
            restarts = wait_until(
                lambda: (
                    (r := ctl_json(path, "show metrics", runtime)["worker_restarts"])["timeout"]
                    == 1
                    and r
                )
            )
            assert restarts["crash"] == 0 and restarts["max_requests"] == 1


def test_gthread_connections_and_http2_streams() -> None:
    args = ("-k", "gthread", "--threads", "4", "--http-protocols", "h2,h1")
    with control_dir() as runtime, server(runtime, *args, "--http2-cleartext", "both") as srv:
        path = control_path(srv)
        srv.wait_workers(1)
        with httpx.Client(base_url=srv.url or "", timeout=10) as h1:
            assert h1.get("/").status_code == 200
            data = wait_metric(path, runtime, "requests_total", 1)
            assert data["connections_open"] == 1  # kept alive
        with httpx.Client(base_url=srv.url or "", http1=False, http2=True, timeout=10) as h2:
            for _ in range(3):
                reply = h2.post("/", content=b"abc")
                assert reply.http_version == "HTTP/2" and reply.text == "ok:abc"
            data = wait_metric(path, runtime, "http2_streams_total", 3)
            assert data["requests_total"] == 4
            assert data["http2_streams_open"] == 0
            assert data["request_body_bytes_total"] == 9
        wait_metric(path, runtime, "connections_open", 0)


def test_metrics_endpoint_answers_only_metrics(
    four_workers: tuple[Gunicorn, str, str, str],
) -> None:
    _srv, _path, _runtime, url = four_workers
    base = url.rsplit("/", 1)[0]
    assert httpx.get(f"{base}/", timeout=10).status_code == 200
    assert httpx.get(f"{base}/other", timeout=10).status_code == 404
    assert httpx.post(url, timeout=10).status_code == 405
    head = httpx.head(url, timeout=10)
    assert head.status_code == 200 and head.content == b""
    # a silent and a garbage client do not stop the scrape
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as silent:
        with socket.create_connection((host, int(port)), timeout=5) as junk:
            junk.sendall(b"\x16\x03\x01 garbage\r\n\r\n")
            assert junk.recv(100).startswith(b"HTTP/1.1 400")
            assert scrape(url)["gunicorn_requests_total"] is not None
        silent.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert silent.recv(100).startswith(b"HTTP/1.1 200")


def test_metrics_bind_off_by_default_and_never_the_app_port() -> None:
    with control_dir() as runtime:
        with server(runtime, "-w", "1") as srv:
            srv.wait_workers(1)
            assert "Metrics at" not in srv.log
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        address = f"127.0.0.1:{port}"
        with server(runtime, "-w", "1", "-b", address, "--metrics-bind", address) as srv:
            srv.wait_for("Cannot serve metrics|is a listener of the application")
            assert "Metrics at" not in srv.log
            assert httpx.get(f"http://{address}/metrics", timeout=10).text == "ok:"


def test_statsd_gets_master_gauges_with_gunicorn_names() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(10)
        port = collector.getsockname()[1]
        args = ("-w", "2", "--statsd-host", f"127.0.0.1:{port}", "--enable-backlog-metric")
        with control_dir() as runtime, server(runtime, *args) as srv:
            srv.wait_workers(2)
            assert httpx.get(f"{srv.url}/", timeout=10).status_code == 200
            seen: set[str] = set()
            wanted = {
                "gunicorn.requests",
                "gunicorn.request.duration",
                "gunicorn.request.status.200",
                "gunicorn.workers.busy",
                "gunicorn.workers.idle",
                "gunicorn.requests.in_flight",
                "gunicorn.connections",
                "gunicorn.backlog",
            }
            while not wanted <= seen:
                line = collector.recv(4096).decode()
                seen.add(line.split(":", 1)[0])


def test_asgi_requests_connections_and_http2_streams() -> None:
    args = ("-k", "asgi", "--http-protocols", "h2,h1", "--http2-cleartext", "both")
    with control_dir() as runtime, server(runtime, *args, app="ctl_apps:asgi_app") as srv:
        path = control_path(srv)
        srv.wait_workers(1)
        with httpx.Client(base_url=srv.url or "", timeout=10) as h1:
            assert h1.get("/").status_code == 200
            assert h1.get("/status/404").status_code == 404
            data = wait_metric(path, runtime, "requests_total", 2)
            assert data["connections_open"] == 1  # kept alive
        with httpx.Client(base_url=srv.url or "", http1=False, http2=True, timeout=10) as h2:
            for _ in range(3):
                reply = h2.post("/", content=b"abc")
                assert reply.http_version == "HTTP/2" and reply.text == "ok:abc"
            data = wait_metric(path, runtime, "http2_streams_total", 3)
            assert data["requests_total"] == 5
            assert data["request_body_bytes_total"] == 9
        wait_metric(path, runtime, "connections_open", 0)
