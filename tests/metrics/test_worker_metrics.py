"""The shared-memory counters: one writer per region, exact sums, regions reused."""

from __future__ import annotations

import os
import threading

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from gunicorn.config import Config
from gunicorn.config.validators import InvalidSetting
from gunicorn.instrument import exposition
from gunicorn.instrument.metrics import FINISHED, MetricsRegistry, WorkerMetrics, metrics_of


def test_counts_from_many_threads_are_exact() -> None:
    metrics = WorkerMetrics(threads=4)
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        for i in range(5000):
            metrics.request_started()
            metrics.record_request(b"GET", 200 + (i % 2) * 300, 0.001, 1, 2)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = MetricsRegistry().snapshot([metrics], [])
    assert snap["requests_total"] == 30000
    assert snap["requests"] == {"GET": {"2xx": 15000, "5xx": 15000}}
    assert snap["request_body_bytes_total"] == 30000
    assert snap["response_body_bytes_total"] == 60000
    assert snap["requests_in_flight"] == 0
    assert snap["request_duration_seconds"]["buckets"][0] == [0.005, 30000]


def test_regions_of_finished_threads_are_reused() -> None:
    metrics = WorkerMetrics(threads=1)  # few regions
    for _ in range(3 * metrics.regions):
        thread = threading.Thread(target=metrics.connection_opened)
        thread.start()
        thread.join()
    assert len(metrics._free) >= metrics.regions - 1
    assert MetricsRegistry().snapshot([metrics], [])["connections_open"] == 3 * metrics.regions


def test_the_master_sees_what_a_forked_worker_writes() -> None:
    metrics = WorkerMetrics()
    pid = os.fork()
    if pid == 0:  # the worker
        metrics.request_started()
        metrics.record_request("POST", 201, 0.2, 10, 20)
        metrics.request_started(http2=True)
        metrics.exiting_because("max_requests")
        os._exit(0)
    os.waitpid(pid, 0)
    registry = MetricsRegistry()
    live = registry.snapshot([metrics], [])
    assert live["requests"] == {"POST": {"2xx": 1}}
    assert live["requests_in_flight"] == 1 and live["http2_streams_open"] == 1
    assert metrics.exit_reason() == "max_requests"
    registry.worker_gone(metrics, metrics.exit_reason())
    assert metrics.closed
    gone = registry.snapshot([metrics], [])
    assert gone["requests_total"] == 1 and gone["requests_in_flight"] == 0
    assert gone["worker_restarts"]["max_requests"] == 1
    assert gone["request_duration_seconds"]["sum"] == pytest.approx(0.2)


def test_status_and_method_classes() -> None:
    metrics = WorkerMetrics()
    for method, status in [("BREW", 200), (b"HEAD", 304), ("GET", 99), ("GET", 600), ("GET", 0)]:
        metrics.record_request(method, status, 0.0)
    snap = MetricsRegistry().snapshot([metrics], [])
    assert snap["requests"] == {"GET": {"other": 3}, "HEAD": {"3xx": 1}, "other": {"2xx": 1}}
    assert metrics.totals()[FINISHED] == 5


def test_a_worker_without_metrics_records_nothing() -> None:
    recorder = metrics_of(object())
    recorder.request_started()
    recorder.record_request("GET", 200, 0.1)
    recorder.connection_opened()


def _snapshot() -> dict:
    metrics = WorkerMetrics()
    metrics.request_started()
    metrics.record_request("GET", 200, 0.3, 5, 7)
    metrics.record_request("GET", 404, 12.0)
    queues = [{"listener": 'http://127.0.0.1:80 "x"', "depth": 3}]
    return MetricsRegistry().snapshot([metrics], queues)


def test_exposition_parses_as_prometheus_text() -> None:
    families = {f.name: f for f in text_string_to_metric_families(exposition.render(_snapshot()))}
    assert families["gunicorn_requests"].type == "counter"
    assert families["gunicorn_request_duration_seconds"].type == "histogram"
    buckets = {
        s.labels["le"]: s.value
        for s in families["gunicorn_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["0.25"] == 0 and buckets["0.5"] == 1 and buckets["10.0"] == 1
    assert buckets["+Inf"] == 2
    depth = families["gunicorn_listen_queue_depth"].samples[0]
    assert depth.labels["listener"] == 'http://127.0.0.1:80 "x"' and depth.value == 3


def test_exposition_parses_as_openmetrics() -> None:
    text = exposition.render(_snapshot(), openmetrics=True)
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["gunicorn_request_duration_seconds"].unit == "seconds"
    assert families["gunicorn_request_body_bytes"].unit == "bytes"
    totals = {s.name: s.value for s in families["gunicorn_request_body_bytes"].samples}
    assert totals == {"gunicorn_request_body_bytes_total": 5}


@pytest.mark.parametrize("value", ["127.0.0.1:9100", "[::1]:9100", "unix:/run/m.sock", "host"])
def test_metrics_bind_accepts_addresses(value: str) -> None:
    cfg = Config()
    cfg.set("metrics_bind", value)
    assert cfg.metrics_bind == value


@pytest.mark.parametrize("value", ["fd://3", "127.0.0.1:99999", "[::1"])
def test_metrics_bind_rejects_bad_addresses(value: str) -> None:
    with pytest.raises(InvalidSetting):
        Config().set("metrics_bind", value)


def test_metrics_bind_is_off_by_default() -> None:
    assert Config().metrics_bind is None
