"""Fixtures for the HTTP/2 black-box tests: one real server per module, worker class and
transport.

Each test module gets a ``gunicorn --http-protocols h2,h1`` process per worker class of
``WORKERS`` (``-k gthread --threads 1``, ``-k gevent`` and ``-k eventlet`` serving the WSGI
``tests.http2.apps:app``, ``-k asgi`` serving the ASGI ``tests.http2.asgi_apps:app``, same
routes) and per transport: h2c with prior
knowledge, and TLS with ALPN ``h2`` (``target`` is parametrised over both). A module can add
command-line arguments with a ``GUNICORN_ARGS`` tuple.

Dev aids only (CI sets neither): ``H2_TARGET=nghttpd`` runs the same cases against
``nghttpd`` (Debian ``nghttp2-server``), a conformant reference server; cases that need our
test application are then skipped. ``H2_GUNICORN=/path/to/gunicorn`` runs another gunicorn
build (e.g. a reference release in a separate virtualenv) with the same arguments and app;
``H2_EXTRA_ARGS`` appends arguments to every gunicorn command line; ``H2_WORKERS=asgi`` (a
comma-separated list) runs the suite against some of the worker classes only.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import queue
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.certs import TestCerts, make_certs
from tests.http2.apps import LARGE_DEFAULT, pattern
from tests.http2.frames import H2Client, Target
from tests.support import Gunicorn, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = ("h2c", "tls")
TARGET_KIND = os.environ.get("H2_TARGET", "gunicorn")
GUNICORN_COMMAND = [os.environ["H2_GUNICORN"]] if os.environ.get("H2_GUNICORN") else None
EXTRA_ARGS = tuple(os.environ.get("H2_EXTRA_ARGS", "").split())

# The server under test, as the brief fixes it: default HTTP/2 settings.
GUNICORN_BASE = ("--http-protocols", "h2,h1")


@dataclass(frozen=True)
class WorkerSetup:
    """How one worker class is run: its command-line arguments and the app it serves."""

    args: tuple[str, ...]
    app: str


#: Every worker class the suite runs against (one more fixture parameter): add a class here.
WORKERS: dict[str, WorkerSetup] = {
    "gthread": WorkerSetup(("-k", "gthread", "--threads", "1"), "tests.http2.apps:app"),
    "asgi": WorkerSetup(("-k", "asgi"), "tests.http2.asgi_apps:app"),
    "gevent": WorkerSetup(("-k", "gevent"), "tests.http2.apps:app"),
    "eventlet": WorkerSetup(("-k", "eventlet"), "tests.http2.apps:app"),
}
_SELECTED = [w for w in os.environ.get("H2_WORKERS", "").split(",") if w]
WORKER_CLASSES: tuple[str, ...] = tuple(_SELECTED) if _SELECTED else tuple(WORKERS)
assert set(WORKER_CLASSES) <= set(WORKERS), f"H2_WORKERS: unknown class in {WORKER_CLASSES}"


#: The item attribute that holds each test's outcome ("passed", "failed", "skipped",
#: "xfailed") for the figures the reliability report publishes (tests/reliability/figures.py).
OUTCOME = "figures_outcome"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        setattr(item, OUTCOME, "xfailed" if hasattr(report, "wasxfail") else report.outcome)
    return report


def tls_client_context(certs: TestCerts, alpn: tuple[str, ...] = ("h2",)) -> ssl.SSLContext:
    """Verifies the server with the test CA and offers ``alpn``."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.set_alpn_protocols(list(alpn))
    return context


@contextlib.contextmanager
def run_gunicorn(
    transport: str, directory: Path, certs: TestCerts, *extra: str, worker: str
) -> Iterator[Target]:
    """A gunicorn with the ``worker`` class of ``WORKERS`` serving its test app over
    ``transport``; app calls are logged."""
    setup = WORKERS[worker]
    calls = directory / "calls.jsonl"
    calls.touch()
    if transport == "tls":
        args = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    else:
        args = ["--http2-cleartext", "prior-knowledge"]
    server = Gunicorn(
        *setup.args,
        *GUNICORN_BASE,
        *args,
        *extra,
        *EXTRA_ARGS,
        setup.app,
        cwd=REPO_ROOT,
        env={"H2_TEST_CALLS": str(calls)},
        command=GUNICORN_COMMAND,
    )
    with server:
        assert isinstance(server.address, tuple)
        context = tls_client_context(certs) if transport == "tls" else None
        yield Target(
            server.address,
            context,
            name="gunicorn",
            transport=transport,
            extras={"server": server, "calls": calls, "certs": certs, "worker": worker},
        )


def server_pid(target: Target) -> int:
    """The process serving ``target``: gunicorn's (single) worker, or nghttpd."""
    if "server" in target.extras:
        server: Gunicorn = target.extras["server"]

        def serving() -> int | None:
            # The worker that answers, the same before and after a request: on a loaded
            # machine a worker still booting when a short ``--timeout`` runs out is
            # replaced, and its pid would name a process about to be gone.
            before = server.wait_workers(1, timeout=30)
            try:
                with target.client(timeout=10) as client:
                    client.request("/hello", headers=[("x-case", "probe")])
            except (AssertionError, OSError):
                return None
            return before[0] if server.wait_workers(1, timeout=30) == before else None

        return int(wait_until(serving, timeout=60))
    return int(target.extras["pid"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def run_nghttpd(transport: str, directory: Path, certs: TestCerts) -> Iterator[Target]:
    """nghttpd serving files named like the app's routes (dev aid, see the module docstring)."""
    binary = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
    docroot = directory / "htdocs"
    docroot.mkdir(exist_ok=True)
    (docroot / "hello").write_bytes(b"hello world\n")
    (docroot / "large").write_bytes(pattern(LARGE_DEFAULT))
    port = _free_port()
    command = [binary, "-a", "127.0.0.1", "-d", str(docroot), "--echo-upload", str(port)]
    if transport == "tls":
        command += [str(certs.server_key), str(certs.server_cert)]
    else:
        command.insert(1, "--no-tls")
    log = open(directory / "nghttpd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:

        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False

        wait_until(listening, timeout=10)
        context = tls_client_context(certs) if transport == "tls" else None
        yield Target(
            ("127.0.0.1", port),
            context,
            name="nghttpd",
            transport=transport,
            extras={"pid": proc.pid},
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@contextlib.contextmanager
def run_target(
    transport: str, directory: Path, certs: TestCerts, *extra: str, worker: str
) -> Iterator[Target]:
    """The server under test: gunicorn with the ``worker`` class, or nghttpd when
    ``H2_TARGET=nghttpd``."""
    if TARGET_KIND == "nghttpd":
        with run_nghttpd(transport, directory, certs) as target:
            yield target
    else:
        with run_gunicorn(transport, directory, certs, *extra, worker=worker) as target:
            yield target


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("h2certs"))


@pytest.fixture(scope="module", params=WORKER_CLASSES if TARGET_KIND == "gunicorn" else ["-"])
def worker(request: pytest.FixtureRequest) -> str:
    """The worker class under test (a key of ``WORKERS``); every server of a module uses it."""
    return str(request.param)


@pytest.fixture(scope="module", params=TRANSPORTS)
def target(
    request: pytest.FixtureRequest,
    worker: str,
    certs: TestCerts,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """The server of this module, over h2c (prior knowledge) and over TLS (ALPN h2)."""
    extra = tuple(getattr(request.module, "GUNICORN_ARGS", ()))
    directory = tmp_path_factory.mktemp("h2")
    with run_target(request.param, directory, certs, *extra, worker=worker) as server:
        yield server


@pytest.fixture
def client(target: Target) -> Iterator[H2Client]:
    """A connection past the preface and SETTINGS exchange, closed after the test."""
    with target.client() as conn:
        yield conn


@pytest.fixture
def conn(target: Target) -> Iterator[H2Client]:
    """A connected client that has sent nothing yet (for preface tests)."""
    with target.connect() as raw:
        yield raw


class AppCalls:
    """Reads the application's call log (one JSON line per call, see ``apps.py``)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.path: Path = target.extras["calls"]

    def read(self) -> list[dict[str, Any]]:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    def cases(self) -> list[str | None]:
        return [call["case"] for call in self.read()]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until a fresh request has reached the app: with one thread (or one event
        loop, which starts requests in arrival order), anything sent before it on other
        connections has reached the app by then."""
        marker = f"sentinel-{uuid.uuid4().hex}"
        deadline = time.monotonic() + timeout
        with self.target.client() as conn:
            response = conn.request("/hello", headers=[("x-case", marker)], timeout=timeout)
            assert response.status == 200, response
        wait_until(lambda: marker in self.cases(), timeout=max(deadline - time.monotonic(), 1))

    def assert_not_called(self, case: str) -> None:
        self.settle()
        assert case not in self.cases(), f"the application was called for {case!r}"


@pytest.fixture
def app_calls(target: Target) -> AppCalls:
    """The app's call log; skipped only in the nghttpd dev mode (no app there)."""
    if target.name != "gunicorn":
        pytest.skip(f"needs the test application ({target.name} has none)")
    return AppCalls(target)


@pytest.fixture
def app_target(target: Target) -> Target:
    """The target, when its routes are the test application's (skipped for nghttpd)."""
    if target.name != "gunicorn":
        pytest.skip(f"needs the test application ({target.name} has none)")
    return target


# ----------------------------------------------------------------------------- the probe

MiB = 1 << 20


def _probe_main(
    address: tuple[str, int],
    ca: str | None,
    pid: int,
    interval: float,
    timeout: float,
    stop: Any,
    samples: Any,
) -> None:
    """The probe process: one GET every ``interval`` on a kept connection; each sample is
    (start time, latency or None, error or None, the server's RSS)."""
    context = None
    if ca is not None:
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2"])
    target = Target(address, context)
    client: H2Client | None = None
    next_tick = time.monotonic()
    while not stop.is_set():
        started, latency, error = time.monotonic(), None, None
        try:
            if client is None or client.closed or client.goaway is not None:
                if client is not None:
                    client.close()
                client = target.client(timeout=timeout)
            started = time.monotonic()
            response = client.request("/hello", headers=[("x-case", "probe")])
            latency = time.monotonic() - started
            if response.status != 200:
                error = f"status {response.status}"
        except (AssertionError, OSError) as exc:
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if client is not None:
                client.close()
            client = None
        try:
            rss = int(psutil.Process(pid).memory_info().rss)
        except psutil.NoSuchProcess:
            rss, error = 0, error or "the server process exited"
        samples.put((started, latency, error, rss))
        next_tick = max(next_tick + interval, time.monotonic())
        stop.wait(max(next_tick - time.monotonic(), 0))
    if client is not None:
        client.close()


# Probe answers taken before any attack, to know how fast this machine answers at all.
BASELINE_SAMPLES = 10


class Probe:
    """A second client, in its own process (so that an attacker in the test process cannot
    slow it down): one GET every ``interval`` while the server's RSS is sampled.

    ``begin()`` starts a measurement window; the statistics cover samples taken since.
    """

    def __init__(self, target: Target, interval: float = 0.1, request_timeout: float = 5.0):
        self.interval = interval
        certs: TestCerts | None = target.extras.get("certs")
        ca = str(certs.ca) if target.tls is not None and certs is not None else None
        spawn = multiprocessing.get_context("spawn")
        self._stop = spawn.Event()
        self._samples: Any = spawn.Queue()
        self._process = spawn.Process(
            target=_probe_main,
            args=(target.address, ca, server_pid(target), interval, request_timeout),
            kwargs={"stop": self._stop, "samples": self._samples},
            daemon=True,
        )
        self._all: list[tuple[float, float | None, str | None, int]] = []
        self._since = 0.0
        self._until = math.inf
        self._timeout = request_timeout
        self.baseline = 0.0  # the slowest answer before any attack (see allowance)
        self.quiet: float | None = None  # the slowest answer after a slow attack

    def __enter__(self) -> Probe:
        self._process.start()
        self.begin()
        self.wait_samples(1, timeout=30)  # the child is up and has been served once
        self.begin()
        self.wait_samples(BASELINE_SAMPLES, timeout=30)
        self.baseline = max(self.latencies, default=0.0)
        return self

    def allowance(self, p99_limit: float) -> float:
        """The p99 an attack may leave: ``p99_limit`` (the spec's 250 ms), unless the
        machine itself is slower than that. On a machine so loaded that the probe's
        answers took long before any attack, the bound grows with that baseline, so
        that a blocked server (answers in seconds, or none) still fails but the
        scheduler's delays alone do not."""
        return max(p99_limit, 2 * self.baseline + 0.1)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=self._timeout + 5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._samples.close()
        self._samples.join_thread()

    def _collect(self, wait: float = 0.0) -> None:
        try:
            self._all.append(
                self._samples.get(timeout=wait) if wait else self._samples.get_nowait()
            )
            while True:
                self._all.append(self._samples.get_nowait())
        except queue.Empty:
            return

    def begin(self) -> None:
        self._collect()
        self._since = time.monotonic()
        self._until = math.inf
        self.quiet = None

    @property
    def window(self) -> list[tuple[float, float | None, str | None, int]]:
        self._collect()
        return [s for s in self._all if self._since <= s[0] < self._until]

    def wait_samples(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` more samples (requests done or failed) have arrived."""
        self._collect()
        goal = len(self._all) + count
        deadline = time.monotonic() + timeout
        while len(self._all) < goal:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the probe got no answer for {timeout}s: {self.summary()}"
            self._collect(wait=min(remaining, 0.5))

    @property
    def latencies(self) -> list[float]:
        return [s[1] for s in self.window if s[1] is not None]

    @property
    def failures(self) -> list[str]:
        return [s[2] for s in self.window if s[2] is not None]

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0

    def _quiet_latency(self) -> float:
        """The slowest of ``BASELINE_SAMPLES`` answers from now on; the window still
        covers what it covered before."""
        since, until = self._since, time.monotonic()
        self.begin()
        self.wait_samples(BASELINE_SAMPLES, timeout=30)
        quiet = max(self.latencies, default=0.0)
        self.quiet = quiet
        self._since, self._until = since, until
        return quiet

    @property
    def rss_growth(self) -> int:
        rss = [s[3] for s in self.window if s[3]]
        return max(rss) - rss[0] if rss else 0

    def summary(self) -> str:
        return (
            f"probe: {len(self.latencies)} answered, {len(self.failures)} failed, "
            f"p99 {self.p99 * 1000:.1f} ms, max {max(self.latencies, default=0) * 1000:.1f} ms, "
            f"server RSS +{self.rss_growth / MiB:.1f} MiB, "
            f"baseline {self.baseline * 1000:.1f} ms"
            + (f", after the attack {self.quiet * 1000:.1f} ms" if self.quiet is not None else "")
        )

    def assert_healthy(self, p99_limit: float | None = 0.25) -> None:
        """No failure, at least 3 answers, p99 under ``p99_limit``, RSS growth < 32 MiB."""
        assert not self.failures, f"probe failures: {self.failures[:3]}"
        assert len(self.latencies) >= 3, f"too few probe answers: {self.summary()}"
        if p99_limit is not None:
            limit = self.allowance(p99_limit)
            if self.p99 >= limit:
                # A second look at the machine, the attack over: when the probe alone is
                # as slow now, the scheduler (other tests, a loaded CI host) made the
                # attack's answers late, not the server. A server still busy with the
                # attack makes this look slow too; one that recovered does not.
                limit = max(limit, 2 * self._quiet_latency() + 0.1)
            assert self.p99 < limit, f"{self.summary()} (limit {limit * 1000:.0f} ms)"
        assert self.rss_growth < 32 * MiB, self.summary()
