"""TLS end to end: real ``gunicorn`` processes (sync and gthread) with curl and httpx."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.certs import TestCerts, make_certs
from tests.tls.server_process import GunicornProcess

APP = """
import json, os

def app(environ, start_response):
    cert = environ.get("gunicorn.socket")
    peer = cert.getpeercert() if hasattr(cert, "getpeercert") else None
    subject = dict(x[0] for x in peer["subject"]) if peer else None
    body = json.dumps({
        "scheme": environ["wsgi.url_scheme"],
        "port": environ["REMOTE_PORT"],
        "client": subject.get("commonName") if subject else None,
        "pid": os.getpid(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""

WORKERS = [("sync",), ("gthread", "--threads", "4")]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_server(directory: Path, certs: TestCerts, *args: str) -> GunicornProcess:
    return GunicornProcess(
        directory,
        APP,
        "--certfile",
        str(certs.server_cert),
        "--keyfile",
        str(certs.server_key),
        *args,
    )


def client_context(certs: TestCerts, with_cert: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if with_cert is not None:
        key = certs.client_key if with_cert == certs.client_cert else certs.other_client_key
        context.load_cert_chain(str(with_cert), str(key))
    return context


def https_url(server: GunicornProcess) -> str:
    return f"https://localhost:{server.port}"


@pytest.fixture(scope="module", params=WORKERS, ids=lambda args: args[0])
def server(
    request: pytest.FixtureRequest, certs: TestCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornProcess]:
    args = ("-k", *request.param, "--keep-alive", "5")
    with tls_server(tmp_path_factory.mktemp("tls"), certs, *args) as proc:
        yield proc


def test_listening_url_is_https(server: GunicornProcess) -> None:
    assert server.url.startswith("https://127.0.0.1:")


def test_httpx_hello_over_tls(server: GunicornProcess, certs: TestCerts) -> None:
    with httpx.Client(verify=client_context(certs), timeout=5) as client:
        response = client.get(https_url(server) + "/hello")
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"
    assert response.json()["client"] is None


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_hello_negotiates_http11_with_alpn(server: GunicornProcess, certs: TestCerts) -> None:
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--verbose",
            "--max-time",
            "10",
            "--cacert",
            str(certs.ca),
            https_url(server) + "/curl",
        ],
        capture_output=True,
        timeout=20,
        check=True,
    )
    assert json.loads(result.stdout)["scheme"] == "https"
    assert "ALPN: server accepted http/1.1" in result.stderr.decode(errors="replace")


def test_keep_alive_over_tls_reuses_the_connection(
    server: GunicornProcess, certs: TestCerts
) -> None:
    with httpx.Client(verify=client_context(certs), timeout=5) as client:
        ports = {client.get(https_url(server) + f"/k{i}").json()["port"] for i in range(10)}
    if "sync" in server.args:
        assert len(ports) == 10  # the sync worker closes every connection
    else:
        assert len(ports) == 1


# -------------------------------------------------------------- client certificates


@pytest.fixture(scope="module", params=WORKERS, ids=lambda args: args[0])
def mtls_server(
    request: pytest.FixtureRequest, certs: TestCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornProcess]:
    args = ("-k", *request.param, "--cert-reqs", "2", "--ca-certs", str(certs.ca))
    with tls_server(tmp_path_factory.mktemp("mtls"), certs, *args) as proc:
        yield proc


def test_client_certificate_accepted(mtls_server: GunicornProcess, certs: TestCerts) -> None:
    context = client_context(certs, with_cert=certs.client_cert)
    with httpx.Client(verify=context, timeout=5) as client:
        response = client.get(https_url(mtls_server) + "/mtls")
    assert response.json()["client"] == "test client"


@pytest.mark.parametrize("which", ["none", "foreign CA"])
def test_client_certificate_refused(
    mtls_server: GunicornProcess, certs: TestCerts, which: str
) -> None:
    cert = None if which == "none" else certs.other_client_cert
    with (
        httpx.Client(verify=client_context(certs, with_cert=cert), timeout=5) as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.get(https_url(mtls_server) + "/refused")
    # The worker survives the failed handshakes.
    context = client_context(certs, with_cert=certs.client_cert)
    with httpx.Client(verify=context, timeout=5) as client:
        assert client.get(https_url(mtls_server) + "/after").status_code == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_client_certificate(mtls_server: GunicornProcess, certs: TestCerts) -> None:
    base = ["curl", "--silent", "--max-time", "10", "--cacert", str(certs.ca)]
    accepted = subprocess.run(
        [
            *base,
            *("--cert", str(certs.client_cert), "--key", str(certs.client_key)),
            https_url(mtls_server) + "/curl",
        ],
        capture_output=True,
        timeout=20,
    )
    assert accepted.returncode == 0
    assert json.loads(accepted.stdout)["client"] == "test client"
    refused = subprocess.run(
        [*base, https_url(mtls_server) + "/curl"], capture_output=True, timeout=20
    )
    assert refused.returncode != 0


# ------------------------------------------------------------------ hostile clients


def test_silent_tls_client_does_not_pin_the_only_thread(tmp_path: Path, certs: TestCerts) -> None:
    args = ("-k", "gthread", "--threads", "1", "--timeout", "2")
    with tls_server(tmp_path, certs, *args) as proc:
        silent = proc.connect()  # TCP only, never a ClientHello
        half = proc.connect()
        half.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello
        with httpx.Client(verify=client_context(certs), timeout=5) as client:
            assert client.get(https_url(proc) + "/probe").status_code == 200
        for sock in (silent, half):
            sock.settimeout(10)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""  # closed by the handshake deadline
            sock.close()


def test_plain_http_on_the_tls_port_is_dropped(server: GunicornProcess, certs: TestCerts) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")
    with httpx.Client(verify=client_context(certs), timeout=5) as client:
        assert client.get(https_url(server) + "/still").status_code == 200
