"""StatsD: packets received on a real UDP socket (v4 and v6) and a unix datagram socket."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from logfakes import FakeRequest, FakeResponse, make_environ

from gunicorn.config import Config
from gunicorn.instrument.statsd import Statsd, parse_statsd_address


class Collector:
    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address

    def packets(self, count: int) -> list[str]:
        return [self.sock.recv(65536).decode() for _ in range(count)]

    def assert_silent(self) -> None:
        self.sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            self.sock.recv(65536)
        self.sock.settimeout(5)


@pytest.fixture
def udp_collector() -> Iterator[Collector]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        yield Collector(sock, f"127.0.0.1:{sock.getsockname()[1]}")
    finally:
        sock.close()


@pytest.fixture
def loggers() -> Iterator[list[Statsd]]:
    """Statsd loggers created by a test; their sockets are closed afterwards."""
    created: list[Statsd] = []
    yield created
    for logger in created:
        logger.close()


@pytest.fixture
def new_statsd(make_cfg: Callable[..., Config], loggers: list[Statsd]) -> Callable[..., Statsd]:
    def make(**settings: Any) -> Statsd:
        logger = Statsd(make_cfg(**settings))
        loggers.append(logger)
        return logger

    return make


@pytest.fixture
def statsd(new_statsd: Callable[..., Statsd], udp_collector: Collector) -> Callable[..., Statsd]:
    def make(**settings: Any) -> Statsd:
        logger = new_statsd(statsd_host=udp_collector.address, **settings)
        assert logger.sock is not None
        return logger

    return make


def test_logger_class_switches_to_statsd(make_cfg: Callable[..., Config]) -> None:
    assert make_cfg(statsd_host="127.0.0.1:9125").logger_class is Statsd


def test_setup_again_switches_address(
    new_statsd: Callable[..., Statsd], make_cfg: Callable[..., Config], udp_collector: Collector
) -> None:
    logger = new_statsd(statsd_host="127.0.0.1:9")
    logger.setup(make_cfg(statsd_host=udp_collector.address, statsd_prefix="hup"))
    logger.gauge("gunicorn.workers", 1)
    assert udp_collector.packets(1) == ["hup.gunicorn.workers:1|g"]


def test_request_metrics(statsd: Callable[..., Statsd], udp_collector: Collector) -> None:
    logger = statsd()
    logger.access(
        FakeResponse(status="404 Not Found"),
        FakeRequest(),
        make_environ(),
        timedelta(seconds=1, microseconds=500),
    )
    assert udp_collector.packets(3) == [
        "gunicorn.request.duration:1000.5|ms",
        "gunicorn.requests:1|c|@1.0",
        "gunicorn.request.status.404:1|c|@1.0",
    ]


def test_log_level_counters(statsd: Callable[..., Statsd], udp_collector: Collector) -> None:
    logger = statsd(loglevel="critical")
    logger.critical("c")
    logger.error("e")
    logger.warning("w")
    try:
        raise ValueError
    except ValueError:
        logger.exception("x")
    logger.info("info lines are not counted")
    logger.debug("nor debug")
    assert udp_collector.packets(4) == [
        "gunicorn.log.critical:1|c|@1.0",
        "gunicorn.log.error:1|c|@1.0",
        "gunicorn.log.warning:1|c|@1.0",
        "gunicorn.log.exception:1|c|@1.0",
    ]
    udp_collector.assert_silent()


@pytest.mark.parametrize(
    ("mtype", "value", "line"),
    [
        ("gauge", 4, "gunicorn.workers:4|g"),
        ("gauge", 0, "gunicorn.workers:0|g"),  # zero values are sent
        ("counter", 3, "gunicorn.workers:3|c|@1.0"),
        ("histogram", 17, "gunicorn.workers:17|h"),
        ("timer", 2.5, "gunicorn.workers:2.5|ms"),
    ],
)
def test_metric_in_extra(
    statsd: Callable[..., Statsd], udp_collector: Collector, mtype: str, value: float, line: str
) -> None:
    logger = statsd()
    logger.info(
        "workers changed", extra={"metric": "gunicorn.workers", "value": value, "mtype": mtype}
    )
    assert udp_collector.packets(1) == [line]


def test_metric_in_extra_on_every_level(
    statsd: Callable[..., Statsd], udp_collector: Collector
) -> None:
    logger = statsd(loglevel="critical")
    extra = {"metric": "gunicorn.backlog", "value": 12, "mtype": "histogram"}
    logger.debug("backlog", extra=extra)
    logger.log("debug", "backlog", extra=extra)
    logger.warning("backlog", extra=extra)
    assert udp_collector.packets(4) == [
        "gunicorn.backlog:12|h",
        "gunicorn.backlog:12|h",
        "gunicorn.log.warning:1|c|@1.0",
        "gunicorn.backlog:12|h",
    ]


def test_incomplete_extra_sends_nothing(
    statsd: Callable[..., Statsd], udp_collector: Collector
) -> None:
    logger = statsd()
    logger.info("a", extra={"metric": "m", "value": None, "mtype": "gauge"})
    logger.info("b", extra={"metric": "m", "value": 1})
    logger.info("c", extra={"other": 1})
    udp_collector.assert_silent()


@pytest.mark.parametrize(
    ("prefix", "expected"), [("app", "app."), ("app.", "app."), ("a.b", "a.b.")]
)
def test_prefix(
    statsd: Callable[..., Statsd], udp_collector: Collector, prefix: str, expected: str
) -> None:
    statsd(statsd_prefix=prefix).gauge("gunicorn.workers", 2)
    assert udp_collector.packets(1) == [f"{expected}gunicorn.workers:2|g"]


def test_dogstatsd_tags(statsd: Callable[..., Statsd], udp_collector: Collector) -> None:
    logger = statsd(dogstatsd_tags="env:prod,team:web")
    logger.increment("gunicorn.requests", 1)
    assert udp_collector.packets(1) == ["gunicorn.requests:1|c|@1.0|#env:prod,team:web"]


def test_ipv6(new_statsd: Callable[..., Statsd]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.bind(("::1", 0))
    except OSError:
        sock.close()
        pytest.skip("::1 is not available on this host")
    sock.settimeout(5)
    try:
        logger = new_statsd(statsd_host=f"[::1]:{sock.getsockname()[1]}")
        logger.gauge("gunicorn.workers", 3)
        assert sock.recv(1024) == b"gunicorn.workers:3|g"
    finally:
        sock.close()


@pytest.mark.parametrize("form", ["unix:{}", "unix://{}"])
def test_unix_datagram(new_statsd: Callable[..., Statsd], tmp_path: Path, form: str) -> None:
    path = str(tmp_path / "statsd.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        logger = new_statsd(statsd_host=form.format(path))
        logger.increment("gunicorn.requests", 1)
        assert sock.recv(1024) == b"gunicorn.requests:1|c|@1.0"
    finally:
        sock.close()


def test_collector_absent_never_raises(new_statsd: Callable[..., Statsd], tmp_path: Path) -> None:
    logger = new_statsd(statsd_host=f"unix:{tmp_path / 'nobody-listens.sock'}")
    logger.increment("gunicorn.requests", 1)
    logger.access(FakeResponse(), FakeRequest(), make_environ(), timedelta(0))


@pytest.mark.parametrize(
    ("value", "family", "sockaddr"),
    [
        ("127.0.0.1:9000", socket.AF_INET, ("127.0.0.1", 9000)),
        ("127.0.0.1", socket.AF_INET, ("127.0.0.1", 8125)),
        (("127.0.0.1", 8200), socket.AF_INET, ("127.0.0.1", 8200)),
        ("unix:/run/statsd.sock", socket.AF_UNIX, "/run/statsd.sock"),
        ("unix:///run/statsd.sock", socket.AF_UNIX, "/run/statsd.sock"),
    ],
)
def test_parse_statsd_address(value: Any, family: int, sockaddr: Any) -> None:
    assert parse_statsd_address(value) == (family, sockaddr)
