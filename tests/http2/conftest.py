"""Fixtures for the HTTP/2 black-box tests: one real server per module and transport.

Each test module gets a ``gunicorn -k gthread --threads 1 --http-protocols h2,h1`` process per
transport: h2c with prior knowledge, and TLS with ALPN ``h2`` (``target`` is parametrised over
both). A module can add command-line arguments with a ``GUNICORN_ARGS`` tuple.

Dev aid only: ``H2_TARGET=nghttpd`` runs the same cases against ``nghttpd`` (Debian
``nghttp2-server``), a conformant reference server; cases that need our test application are
then skipped. CI never sets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.certs import TestCerts, make_certs
from tests.http2.apps import LARGE_DEFAULT, pattern
from tests.http2.frames import H2Client, Target
from tests.support import Gunicorn, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = ("h2c", "tls")
TARGET_KIND = os.environ.get("H2_TARGET", "gunicorn")

# The server under test, as the brief fixes it: default HTTP/2 settings, one thread.
GUNICORN_BASE = ("-k", "gthread", "--threads", "1", "--http-protocols", "h2,h1")


def tls_client_context(certs: TestCerts, alpn: tuple[str, ...] = ("h2",)) -> ssl.SSLContext:
    """Verifies the server with the test CA and offers ``alpn``."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.set_alpn_protocols(list(alpn))
    return context


@contextlib.contextmanager
def run_gunicorn(
    transport: str, directory: Path, certs: TestCerts, *extra: str
) -> Iterator[Target]:
    """A gunicorn serving ``tests.http2.apps:app`` over ``transport``; app calls are logged."""
    calls = directory / "calls.jsonl"
    calls.touch()
    if transport == "tls":
        args = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    else:
        args = ["--http2-cleartext", "prior-knowledge"]
    server = Gunicorn(
        *GUNICORN_BASE,
        *args,
        *extra,
        "tests.http2.apps:app",
        cwd=REPO_ROOT,
        env={"H2_TEST_CALLS": str(calls)},
    )
    with server:
        assert isinstance(server.address, tuple)
        context = tls_client_context(certs) if transport == "tls" else None
        yield Target(
            server.address,
            context,
            name="gunicorn",
            transport=transport,
            extras={"server": server, "calls": calls, "certs": certs},
        )


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
def run_target(transport: str, directory: Path, certs: TestCerts, *extra: str) -> Iterator[Target]:
    """The server under test: gunicorn, or nghttpd when ``H2_TARGET=nghttpd``."""
    if TARGET_KIND == "nghttpd":
        with run_nghttpd(transport, directory, certs) as target:
            yield target
    else:
        with run_gunicorn(transport, directory, certs, *extra) as target:
            yield target


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("h2certs"))


@pytest.fixture(scope="module", params=TRANSPORTS)
def target(
    request: pytest.FixtureRequest, certs: TestCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The server of this module, over h2c (prior knowledge) and over TLS (ALPN h2)."""
    extra = tuple(getattr(request.module, "GUNICORN_ARGS", ()))
    with run_target(request.param, tmp_path_factory.mktemp("h2"), certs, *extra) as server:
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
        """Wait until a fresh request has reached the app: with one thread, anything sent
        before it on other connections has been dealt with by then."""
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
