"""wsgi.file_wrapper responses from a sync worker, with sendfile() and with --no-sendfile."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Gunicorn
from tests.wsgi.wire import WSGI_DIR, exchange, one, request_bytes

SIZE = 3 * 1024 * 1024 + 123


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "data.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture(scope="module", params=["sendfile", "no-sendfile"])
def server(request: pytest.FixtureRequest, data_file: Path) -> Iterator[Gunicorn]:
    args = ["-k", "sync", "--chdir", str(WSGI_DIR), "apps:app"]
    if request.param == "no-sendfile":
        args.insert(0, "--no-sendfile")
    with Gunicorn(*args, env={"TEST_DATA_FILE": str(data_file)}) as running:
        yield running


def test_whole_file_with_content_length(server: Gunicorn, data_file: Path) -> None:
    reply = one(server.address, request_bytes("GET", "/file"), timeout=20)
    assert reply.status == 200
    assert reply.header("content-length") == str(SIZE).encode()
    assert reply.body == data_file.read_bytes()


def test_file_from_an_offset(server: Gunicorn, data_file: Path) -> None:
    reply = one(server.address, request_bytes("GET", "/file?offset=1000"), timeout=20)
    assert reply.body == data_file.read_bytes()[1000:]


def test_file_without_content_length_is_chunked(server: Gunicorn, data_file: Path) -> None:
    reply = one(server.address, request_bytes("GET", "/file?length=0"), timeout=20)
    assert reply.header("transfer-encoding") == b"chunked"
    assert reply.body == data_file.read_bytes()


def test_file_without_content_length_on_http10(server: Gunicorn, data_file: Path) -> None:
    raw = exchange(
        server.address, request_bytes("GET", "/file?length=0", version="HTTP/1.0"), timeout=20
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == data_file.read_bytes()


def test_file_with_head_sends_no_body(server: Gunicorn) -> None:
    raw = exchange(server.address, request_bytes("HEAD", "/file"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"Content-Length: {SIZE}".encode() in head
    assert body == b""
