"""The sync worker over TLS: requests, url_scheme and file_wrapper (never raw sendfile)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.certs import TestCerts, make_certs
from tests.support import Gunicorn
from tests.wsgi.wire import WSGI_DIR


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tlsfiles") / "data.bin"
    path.write_bytes(os.urandom(300_000))
    return path


@pytest.fixture(scope="module")
def client(certs: TestCerts, data_file: Path) -> Iterator[httpx.Client]:
    args = [
        "-k",
        "sync",
        "--certfile",
        str(certs.server_cert),
        "--keyfile",
        str(certs.server_key),
        "--chdir",
        str(WSGI_DIR),
        "apps:app",
    ]
    with Gunicorn(*args, env={"TEST_DATA_FILE": str(data_file)}) as server:
        assert server.url is not None and server.url.startswith("https://")
        _, port = server.address  # type: ignore[misc]
        context = ssl.create_default_context(cafile=str(certs.ca))
        with httpx.Client(base_url=f"https://localhost:{port}", verify=context) as http:
            yield http


def test_hello_over_tls(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello, World!\n"


def test_url_scheme_is_https(client: httpx.Client) -> None:
    assert client.get("/environ").json()["wsgi.url_scheme"] == "https"


def test_post_echo_over_tls(client: httpx.Client) -> None:
    payload = os.urandom(200_000)
    assert client.post("/echo", content=payload).content == payload


@pytest.mark.parametrize("length", ["1", "0"])
def test_file_wrapper_over_tls(client: httpx.Client, data_file: Path, length: str) -> None:
    response = client.get("/file", params={"length": length})
    assert response.status_code == 200
    assert response.content == data_file.read_bytes()
