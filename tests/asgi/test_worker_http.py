"""The asgi worker over HTTP/1.1: one real ``gunicorn -k asgi`` serving tests/asgi/apps.py,
driven by raw sockets (exact bytes) and httpx."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.asgi.client import RawClient, exchange
from tests.support import Gunicorn, wait_until

REPO = Path(__file__).resolve().parents[2]
ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(m)s %(H)s {%({x-req}i)s} {%({content-type}o)s}'


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gunicorn, Path]]:
    tmp = tmp_path_factory.mktemp("asgi")
    record = tmp / "record.txt"
    record.touch()
    access = tmp / "access.log"
    with Gunicorn(
        "-k",
        "asgi",
        "--access-logfile",
        str(access),
        "--access-logformat",
        ACCESS_FORMAT,
        "--asgi-disconnect-grace-period",
        "1",
        "--keep-alive",
        "5",
        "tests.asgi.apps:app",
        cwd=REPO,
        env={"ASGI_TEST_RECORD": str(record)},
    ) as server:
        server.wait_for("Booting worker")
        wait_until(lambda: "startup" in record.read_text())
        yield server, tmp


@pytest.fixture
def server(served: tuple[Gunicorn, Path]) -> Gunicorn:
    return served[0]


@pytest.fixture
def record(served: tuple[Gunicorn, Path]) -> Path:
    return served[1] / "record.txt"


def url(server: Gunicorn, path: str) -> str:
    host, port = server.address  # type: ignore[misc]
    return f"http://{host}:{port}{path}"


def scope_of(server: Gunicorn, path: str = "/scope", **kwargs: object) -> dict[str, object]:
    response = httpx.get(url(server, path), **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200
    return json.loads(response.content)  # type: ignore[no-any-return]


# -- the scope ------------------------------------------------------------------------------


def test_http_scope_is_complete(server: Gunicorn) -> None:
    scope = scope_of(server, "/scope", params={"a": "1 2"}, headers={"X-Req": "yes"})
    host, port = server.address  # type: ignore[misc]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1+2"
    assert scope["root_path"] == ""
    assert scope["server"] == [host, port]
    assert scope["client"][0] == "127.0.0.1"  # type: ignore[index]
    assert ["x-req", "yes"] in scope["headers"]  # type: ignore[operator]
    assert scope["state"] == {"greeting": "from lifespan"}
    assert "http.response.pathsend" in scope["extensions"]  # type: ignore[operator]


def test_path_is_decoded_and_raw_path_is_not(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.request("GET", "/caf%C3%A9/scope?x=%20")
        answer = client.read_answer()
    scope = json.loads(answer.body)
    assert scope["path"] == "/café/scope"
    assert scope["raw_path"] == "/caf%C3%A9/scope"
    assert scope["query_string"] == "x=%20"


def test_http_1_0_scope_and_close(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET /scope HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 ") or head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body)["http_version"] == "1.0"


# -- keep-alive and pipelining --------------------------------------------------------------


def test_keep_alive_serves_requests_in_turn(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        for i in range(3):
            client.request("POST", "/echo", body=b"n%d" % i)
            answer = client.read_answer("POST")
            assert (answer.status, answer.body) == (200, b"n%d" % i)


def test_pipelined_requests_are_answered_in_order(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none"
            b"GET /stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\ntwo\r\n0\r\n\r\n"
        )
        assert client.read_answer("POST").body == b"one"
        assert client.read_answer().body == b"chunk0;chunk1;chunk2;"
        assert client.read_answer("POST").body == b"two"


def test_next_request_is_served_while_the_application_still_runs(
    server: Gunicorn, record: Path
) -> None:
    # /hold answers, then waits for /release: if the connection waited for the
    # application to return before serving the next request, this would hang.
    with RawClient(server.address) as client:
        client.send(
            b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /release HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        assert client.read_answer().body == b"held"
        assert client.read_answer().body == b"released"
    wait_until(lambda: "hold finished" in record.read_text())


def test_unread_body_is_skipped_before_the_next_request(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.request("POST", "/ignore-body", body=b"x" * 5000)
        assert client.read_answer("POST").body == b"not read"
        client.request("GET", "/")
        assert client.read_answer().body == b"hello"


def test_large_body_streams_to_the_application(server: Gunicorn) -> None:
    body = bytes(range(256)) * 16384  # 4 MiB
    response = httpx.post(url(server, "/echo"), content=body, timeout=30)
    assert response.content == body
    assert int(response.headers["x-pieces"]) > 1  # delivered in pieces, not buffered whole


# -- Expect: 100-continue ---------------------------------------------------------------------


def test_100_continue_is_sent_when_the_application_reads(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        client.sock.settimeout(10)
        assert client.sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        client.send(b"body")
        answer = client.read_answer("POST")
    assert answer.body == b"body"


def test_no_100_continue_when_the_application_does_not_read(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.send(
            b"POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        raw = client.read_until_close()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"100 Continue" not in raw


# -- framing ----------------------------------------------------------------------------------


def test_body_never_exceeds_content_length(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET /cl-over HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-length: 5" in head.lower()
    assert body == b"01234"


def test_short_body_closes_the_connection(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.send(b"GET /cl-short HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = client.read_until_close()
    assert raw.endswith(b"\r\n\r\n01234")


@pytest.mark.parametrize(("method", "code"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_no_body_for_head_204_304(server: Gunicorn, method: str, code: int) -> None:
    target = "/" if method == "HEAD" else f"/status?code={code}"
    with RawClient(server.address) as client:
        client.send(f"{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = client.read_answer(method)
        after = client.read_answer()
    assert head.status == code
    assert head.body == b""
    assert "transfer-encoding" not in head.headers
    if code == 204:
        assert "content-length" not in head.headers
    assert after.body == b"hello"  # the framing held: the next response is intact


def test_streaming_response_is_chunked(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.request("GET", "/stream?n=4")
        answer = client.read_answer()
    assert answer.headers["transfer-encoding"] == "chunked"
    assert answer.body == b"chunk0;chunk1;chunk2;chunk3;"


# -- extensions ---------------------------------------------------------------------------------


def test_early_hints_on_http_1_1(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET /hints HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 103 Early Hints\r\n")
    assert b"link: </style.css>; rel=preload; as=style\r\n" in raw.lower()
    assert b"\r\n\r\nHTTP/1.1 200 OK\r\n" in raw


def test_no_early_hints_for_http_1_0(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET /hints HTTP/1.0\r\n\r\n")
    assert b" 103 " not in raw
    assert raw.split(b"\r\n", 1)[0].endswith(b"200 OK")
    assert raw.endswith(b"hinted")


def test_trailers_when_the_client_accepts_them(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.request("GET", "/trailers", headers=[("TE", "trailers")])
        answer = client.read_answer()
    assert answer.body == b"data"
    assert answer.trailers == {"x-checksum": "abc123"}


def test_no_trailers_without_te_trailers(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.request("GET", "/trailers")
        answer = client.read_answer()
    assert answer.body == b"data"
    assert answer.trailers == {}


def test_trailers_extension_is_offered_on_http_1_1(server: Gunicorn) -> None:
    assert "http.response.trailers" in scope_of(server)["extensions"]  # type: ignore[operator]


def test_pathsend_serves_the_file(server: Gunicorn, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    target = tmp_path / "blob.bin"
    target.write_bytes(data)
    response = httpx.get(url(server, "/pathsend"), params={"path": str(target)})
    assert response.status_code == 200
    assert response.content == data


# -- errors -------------------------------------------------------------------------------------


def test_exception_before_start_is_a_500(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET /raise HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"connection: close" in raw.lower()
    server.wait_for("Exception in ASGI application")
    assert "RuntimeError: boom before start" in server.log


def test_exception_after_start_closes_the_connection(server: Gunicorn) -> None:
    with RawClient(server.address) as client:
        client.send(b"GET /raise-after HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = client.read_until_close()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"partial" in raw
    assert not raw.endswith(b"0\r\n\r\n")  # no final chunk: the client sees it incomplete


def test_no_response_is_a_500(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET /noresponse HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 500 ")
    server.wait_for("ASGI callable returned without starting response")


def test_malformed_request_gets_400_and_close(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_smuggling_attempt_is_refused(server: Gunicorn) -> None:
    raw = exchange(
        server.address,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert raw.count(b"HTTP/1.1") == 1


# -- disconnects --------------------------------------------------------------------------------


def test_disconnect_is_delivered_to_receive(server: Gunicorn, record: Path) -> None:
    sock = socket.create_connection(server.address, timeout=5)  # type: ignore[arg-type]
    before = record.read_text().count("waiting for the disconnect")
    sock.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: record.read_text().count("waiting for the disconnect") > before)
    sock.close()
    wait_until(lambda: "got http.disconnect" in record.read_text())


def test_task_is_cancelled_after_the_grace_period(server: Gunicorn, record: Path) -> None:
    before = record.read_text().count("cancelled")
    sock = socket.create_connection(server.address, timeout=5)  # type: ignore[arg-type]
    sock.sendall(b"GET /sleep-forever HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: record.read_text().count("sleeping") > before)
    sock.close()
    wait_until(lambda: record.read_text().count("cancelled") > before)


# -- logs ---------------------------------------------------------------------------------------


def test_access_log_has_every_atom(served: tuple[Gunicorn, Path]) -> None:
    server, tmp = served
    response = httpx.get(url(server, "/"), headers={"X-Req": "r42"})
    assert response.status_code == 200
    access = tmp / "access.log"
    line = wait_until(
        lambda: next((x for x in access.read_text().splitlines() if "{r42}" in x), None)
    )
    assert line == '127.0.0.1 "GET / HTTP/1.1" 200 5 GET HTTP/1.1 {r42} {text/plain}'


def test_invalid_response_header_is_a_500(server: Gunicorn) -> None:
    raw = exchange(server.address, b"GET /bad-header HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"never" not in raw


def test_send_after_disconnect_raises_an_os_error(server: Gunicorn, record: Path) -> None:
    # ASGI spec 2.4: a server-specific OSError subclass (Starlette stops streams on it).
    sock = socket.create_connection(server.address, timeout=5)  # type: ignore[arg-type]
    sock.sendall(b"GET /send-after-disconnect HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: "waiting to send" in record.read_text())
    sock.close()
    wait_until(lambda: "send after disconnect raised ClientDisconnected" in record.read_text())
