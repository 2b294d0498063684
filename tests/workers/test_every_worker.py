"""Behaviour every worker class shares, run against a real gunicorn per class.

One module-scoped server per worker class in ``WORKERS`` (and one with TLS) serves
``tests/workers/every_apps.py`` (the asgi worker its ASGI twin, ``every_apps_asgi.py``);
each test runs once per class. The request corpus
(``tests/requests``) is replayed over a real socket and must get the answers the protocol
core gives for it; the response framing matrix must match the core's framing; keep-alive,
pipelining, TLS, early hints and ``wsgi.file_wrapper`` behave the same; and a TERM with
requests in flight loses none of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gunicorn.http.events import Data, EndOfMessage, Request, Response
from gunicorn.http.h1 import NEED_DATA, PAUSED
from gunicorn.http.limits import Limits, Policy
from tests.certs import TestCerts, make_certs
from tests.http.corpus import Case, load_cases, make_connection, run_case
from tests.support import Gunicorn, connect
from tests.wsgi.wire import read_all

#: Every worker class whose shared behaviour is tested here.
WORKERS = ("sync", "gthread", "gevent", "eventlet", "asgi")
#: Worker classes that keep connections open between requests (sync closes after one).
KEEPS_ALIVE = frozenset({"gthread", "gevent", "eventlet", "asgi"})
APP = "tests.workers.every_apps:app"
#: The asgi worker serves the ASGI twin of the same routes.
ASGI_APP = "tests.workers.every_apps_asgi:app"
HOOKS = str(Path(__file__).with_name("every_hooks.py"))
REPO = Path(__file__).resolve().parents[2]
BODY = b"hello"


def app_for(worker: str) -> str:
    return ASGI_APP if worker == "asgi" else APP


def server_args(worker: str) -> list[str]:
    """The command line of a worker class's server (the application comes last)."""
    args = ["-k", worker, "--chdir", str(REPO), "--timeout", "10", "-c", HOOKS]
    args += ["--access-logfile", "-"]
    # The peer (127.0.0.1) is no trusted forwarder, as in the corpus cases replayed here.
    args += ["--forwarded-allow-ips", "10.255.255.254"]
    if worker == "gthread":
        args += ["--threads", "4"]
    return args


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=WORKERS)
def worker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("every") / "data.bin"
    path.write_bytes(os.urandom(300_000))
    return path


@pytest.fixture(scope="module")
def server(worker: str, data_file: Path) -> Iterator[Gunicorn]:
    env = {"TEST_DATA_FILE": str(data_file)}
    with Gunicorn(*server_args(worker), app_for(worker), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("every-certs"))


@pytest.fixture(scope="module")
def tls_server(worker: str, data_file: Path, certs: TestCerts) -> Iterator[Gunicorn]:
    env = {"TEST_DATA_FILE": str(data_file)}
    tls = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    with Gunicorn(*server_args(worker), *tls, app_for(worker), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def proxy_server(worker: str) -> Iterator[Gunicorn]:
    proxy = ["--proxy-protocol", "v1", "--proxy-allow-from", "127.0.0.1"]
    with Gunicorn(*server_args(worker), *proxy, app_for(worker)) as running:
        yield running


@pytest.fixture(scope="module")
def uwsgi_server(worker: str) -> Iterator[Gunicorn]:
    uwsgi = ["--protocol", "uwsgi", "--uwsgi-allow-from", "127.0.0.0/8"]
    with Gunicorn(*server_args(worker), *uwsgi, app_for(worker)) as running:
        yield running


def address(server: Gunicorn) -> tuple[str, int]:
    assert isinstance(server.address, tuple)
    return server.address


# ----------------------------------------------------------------------- wire helpers


@dataclass
class Reply:
    status: int
    headers: dict[bytes, list[bytes]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        values = self.headers.get(name)
        return values[-1] if values else None


def parse_replies(raw: bytes, methods: list[bytes]) -> list[Reply]:
    """The responses in ``raw`` (1xx ones included), framed as the requests' methods say."""
    replies: list[Reply] = []
    finals = 0
    while raw:
        head, sep, raw = raw.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {head[:200]!r}"
        status_line, *lines = head.split(b"\r\n")
        reply = Reply(int(status_line.split(b" ", 2)[1]))
        for line in lines:
            name, _, value = line.partition(b":")
            reply.headers.setdefault(name.strip().lower(), []).append(value.strip())
        replies.append(reply)
        if reply.status < 200:
            continue
        method = methods[finals] if finals < len(methods) else b"GET"
        finals += 1
        if method == b"HEAD" or reply.status in (204, 304):
            continue
        if method == b"CONNECT" and reply.status < 300:
            reply.body, raw = raw, b""  # a tunnel: what follows is not a body (RFC 9110 §9.3.6)
            continue
        length = reply.header(b"content-length")
        if reply.header(b"transfer-encoding") == b"chunked":
            body = bytearray()
            while True:
                size_line, _, raw = raw.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    _, _, raw = raw.partition(b"\r\n")
                    break
                body += raw[:size]
                raw = raw[size + 2 :]
            reply.body = bytes(body)
        elif length is not None:
            reply.body, raw = raw[: int(length)], raw[int(length) :]
        else:
            reply.body, raw = raw, b""
    return replies


def exchange(addr: tuple[str, int], data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` and half-close while reading until the server closes. (Reading at the
    same time: a server that refused a large request early and closed would otherwise
    reset the connection before its answer was read.)"""

    def send() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

    with connect(addr, timeout) as sock:
        sender = threading.Thread(target=send)
        sender.start()
        try:
            return read_all(sock, timeout)
        finally:
            sender.join(timeout)


def read_reply(sock: socket.socket | ssl.SSLSocket, method: bytes = b"GET") -> Reply:
    """One response (with a Content-Length or no body) read from a kept-alive socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response head: {buf!r}"
        buf += chunk
    head = buf.partition(b"\r\n\r\n")[0]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and method != b"HEAD":
            length = int(value)
    while len(buf) - len(head) - 4 < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in a response body"
        buf += chunk
    (reply,) = [r for r in parse_replies(buf, [method]) if r.status >= 200]
    return reply


def get(target: str, *, version: str = "1.1", close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return f"GET {target} HTTP/{version}\r\nHost: localhost\r\n{extra}\r\n".encode()


# ---------------------------------------------------------------- the request corpus


def _server_settings(case: Case) -> bool:
    """Cases the default settings apply to (others need limits or rules of their own)."""
    return case.limits == Limits() and case.policy == Policy() and not case.trusted_forwarder


CORPUS = [c for c in load_cases("valid") + load_cases("invalid") if _server_settings(c)]


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: f"{case.kind}-{case.name}")
def test_corpus_gets_the_answers_of_the_core(server: Gunicorn, worker: str, case: Case) -> None:
    outcome = run_case(case, "whole")
    served = outcome.served
    error_status = None
    if outcome.error is not None and outcome.error_response:
        error_status = int(outcome.error_response.split(b" ", 2)[1])
    if worker not in KEEPS_ALIVE and served:
        served, error_status = served[:1], None  # one request per connection
    websocket_at = None
    if worker == "asgi":
        # A WebSocket server takes an Upgrade: websocket request as a handshake (this app
        # accepts none), and the connection ends with its answer.
        upgrades = [i for i, s in enumerate(served) if s.request.upgrade == b"websocket"]
        if upgrades:
            websocket_at = upgrades[0]
            served, error_status = served[: websocket_at + 1], None
    methods = [s.request.method for s in served] + [b"GET"]
    replies = parse_replies(exchange(address(server), case.raw), methods)
    finals = [reply for reply in replies if reply.status >= 200]
    expected = len(served) + (error_status is not None)
    assert len(finals) == expected, (finals, served, outcome.error)
    for index, (reply, seen) in enumerate(zip(finals, served, strict=False)):
        if index == websocket_at:
            assert reply.status in (400, 403, 426, 500), (reply, seen.request)
            continue
        assert reply.status == 200, (reply, seen.request)
        if seen.request.method in (b"HEAD", b"CONNECT"):
            continue
        echoed = json.loads(reply.body)
        assert echoed["method"].encode() == seen.request.method
        target = seen.request.target
        if worker == "asgi":  # the scope has the path and the query, not the raw target
            query = seen.request.query
            target = seen.request.path + (b"?" + query if query else b"")
        assert echoed["target"].encode("latin-1") == target
        assert echoed["body"].encode("latin-1") == seen.body
    if error_status is not None:
        assert finals[-1].status == error_status


# ---------------------------------------------------------------- the framing matrix

FRAMING = [
    pytest.param(method, status, version, sets, id=f"{method.decode()}-{status}-{version}-{sets}")
    for method in (b"GET", b"HEAD")
    for status in (200, 204, 304, 404)
    for version in ("1.0", "1.1")
    for sets in ("content-length", "chunked", "nothing", "body")
]


def _framing_request(method: bytes, status: int, version: str, sets: str) -> bytes:
    target = f"/__framing?status={status}&sets={sets}"
    return (
        f"{method.decode()} {target} HTTP/{version}\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ).encode()


def _core_reply(raw_request: bytes, method: bytes, status: int, sets: str) -> Reply:
    conn = make_connection()
    conn.receive_data(raw_request)
    while (event := conn.next_event()) is not PAUSED:
        assert event is not NEED_DATA and (isinstance(event, (Request, EndOfMessage)))
    headers = [(b"content-type", b"text/plain")]
    if sets == "content-length":
        headers.append((b"content-length", b"%d" % len(BODY)))
    elif sets == "chunked":
        headers.append((b"transfer-encoding", b"chunked"))
    out = conn.send(Response(status, headers)) + conn.send(Data(BODY))
    out += conn.send(EndOfMessage())
    (reply,) = parse_replies(out, [method])
    return reply


@pytest.mark.parametrize(("method", "status", "version", "sets"), FRAMING)
def test_response_framing_is_the_cores(
    server: Gunicorn, method: bytes, status: int, version: str, sets: str
) -> None:
    raw_request = _framing_request(method, status, version, sets)
    expected = _core_reply(raw_request, method, status, sets)
    (reply,) = parse_replies(exchange(address(server), raw_request), [method])
    assert reply.status == expected.status
    for name in (b"content-length", b"transfer-encoding"):
        assert reply.header(name) == expected.header(name), name
    assert reply.body == expected.body


# -------------------------------------------------------- connections and responses


def test_keep_alive(server: Gunicorn, worker: str) -> None:
    with connect(address(server)) as sock:
        sock.sendall(get("/first"))
        first = read_reply(sock)
        assert json.loads(first.body)["target"] == "/first"
        if worker not in KEEPS_ALIVE:
            assert first.header(b"connection") == b"close"
            assert sock.recv(1) == b""
            return
        assert first.header(b"connection") != b"close"
        sock.sendall(get("/second"))
        assert json.loads(read_reply(sock).body)["target"] == "/second"


def test_pipelining(server: Gunicorn, worker: str) -> None:
    data = get("/p1") + get("/p2") + get("/p3", close=True)
    replies = parse_replies(exchange(address(server), data), [b"GET"] * 3)
    targets = [json.loads(reply.body)["target"] for reply in replies]
    assert targets == (["/p1", "/p2", "/p3"] if worker in KEEPS_ALIVE else ["/p1"])


def test_early_hints(server: Gunicorn) -> None:
    replies = parse_replies(exchange(address(server), get("/__hints")), [b"GET"])
    assert [reply.status for reply in replies] == [103, 200]
    assert replies[0].header(b"link") == b"</style.css>; rel=preload; as=style"
    assert replies[1].body == b"after hints"
    # Never to an HTTP/1.0 client (RFC 8297 §3).
    replies = parse_replies(exchange(address(server), get("/__hints", version="1.0")), [b"GET"])
    assert [reply.status for reply in replies] == [200]


def test_file_wrapper(server: Gunicorn, data_file: Path) -> None:
    (reply,) = parse_replies(exchange(address(server), get("/__file")), [b"GET"])
    assert reply.status == 200
    assert reply.body == data_file.read_bytes()


def _tls(server: Gunicorn, certs: TestCerts) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(certs.ca))
    return context.wrap_socket(connect(address(server)), server_hostname="localhost")


def test_tls(tls_server: Gunicorn, worker: str, certs: TestCerts, data_file: Path) -> None:
    assert tls_server.url is not None and tls_server.url.startswith("https://")
    with _tls(tls_server, certs) as sock:
        sock.sendall(get("/over-tls"))
        assert json.loads(read_reply(sock).body)["target"] == "/over-tls"
        if worker in KEEPS_ALIVE:
            sock.sendall(get("/__file", close=True))
            reply = read_reply(sock)
            assert reply.body == data_file.read_bytes()  # copied, never raw sendfile


def test_tls_pipelining(tls_server: Gunicorn, worker: str, certs: TestCerts) -> None:
    count = 3 if worker in KEEPS_ALIVE else 1
    with _tls(tls_server, certs) as sock:
        sock.sendall(b"".join(get(f"/t{i}") for i in range(count)))
        targets = [json.loads(read_reply(sock).body)["target"] for _ in range(count)]
    assert targets == [f"/t{i}" for i in range(count)]


def test_streamed_request_body(server: Gunicorn) -> None:
    """``wsgi.input`` gets the body as it arrives (the driver waits for the client)."""
    head = (
        b"POST /__lines HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    pieces = [head, b"6\r\none\ntw\r\n", b"3\r\no\nt\r\n", b"5\r\nhree\n\r\n0\r\n\r\n"]
    with connect(address(server)) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.1)  # client pacing: the pieces arrive apart
        raw = read_all(sock)
    (reply,) = parse_replies(raw, [b"POST"])
    assert reply.status == 200 and reply.body == b"one|two|three"


def test_hooks_and_access_log(server: Gunicorn, worker: str) -> None:
    with connect(address(server)) as sock:
        sock.sendall(get(f"/hooked-{worker}", close=True))
        assert read_reply(sock).status == 200
    server.wait_for(f"hook pre_request: GET /hooked-{worker}")
    server.wait_for(f"hook post_request: GET /hooked-{worker} 200")
    server.wait_for(f'"GET /hooked-{worker} HTTP/1.1" 200 ')
    assert "hook post_worker_init" in server.log


def test_proxy_protocol(proxy_server: Gunicorn, worker: str) -> None:
    header = b"PROXY TCP4 203.0.113.9 198.51.100.2 51000 443\r\n"
    raw = exchange(address(proxy_server), header + get("/__environ", close=True))
    (reply,) = parse_replies(raw, [b"GET"])
    seen = json.loads(reply.body)
    assert seen["REMOTE_ADDR"] == "203.0.113.9"
    if worker != "asgi":  # WSGI only: the ASGI scope has no PROXY details
        assert seen["PROXY_PROTOCOL"] == "TCP4"


def test_proxy_header_in_a_segment_of_its_own(proxy_server: Gunicorn, worker: str) -> None:
    # curl --haproxy-protocol and haproxy often write the header alone: the request that
    # follows in the next segment is answered (the empty rest is not the end of stream).
    header = b"PROXY TCP4 203.0.113.7 198.51.100.2 51000 443\r\n"
    with socket.create_connection(address(proxy_server), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(header)
        time.sleep(0.05)  # not a wait for a condition: it only keeps the two writes apart
        sock.sendall(get("/__environ", close=True))
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    (reply,) = parse_replies(raw, [b"GET"])
    assert reply.status == 200
    assert json.loads(reply.body)["REMOTE_ADDR"] == "203.0.113.7"


def test_uwsgi_protocol(uwsgi_server: Gunicorn, worker: str) -> None:
    pairs = [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/__environ?a=1"),
        ("PATH_INFO", "/__environ"),
        ("QUERY_STRING", "a=1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "198.51.100.77"),
        ("REMOTE_PORT", "40404"),
        ("SERVER_NAME", "www.example.com"),
        ("SERVER_PORT", "443"),
        ("HTTPS", "on"),
        ("HTTP_HOST", "www.example.com"),
    ]
    block = b"".join(
        struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
        for k, v in pairs
    )
    packet = struct.pack("<BHB", 0, len(block), 0) + block
    (reply,) = parse_replies(exchange(address(uwsgi_server), packet), [b"GET"])
    seen = json.loads(reply.body)
    assert seen["REMOTE_ADDR"] == "198.51.100.77" and seen["QUERY_STRING"] == "a=1"
    assert seen["wsgi.url_scheme"] == "https"
    if worker != "asgi":  # WSGI only
        assert seen["has_gunicorn_socket"] is True


# ------------------------------------------------------------------------------ TERM


@pytest.mark.slow
def test_term_with_requests_in_flight_loses_none(worker: str, tmp_path: Path) -> None:
    in_flight = 1 if worker == "sync" else 6
    with Gunicorn(*server_args(worker), "--graceful-timeout", "20", app_for(worker)) as server:
        results: list[int | str] = []

        def client(index: int) -> None:
            try:
                with connect(address(server), timeout=20) as sock:
                    sock.sendall(get(f"/__sleep?t=1.5&n={index}", close=True))
                    results.append(read_reply(sock).status)
            except OSError as exc:
                results.append(repr(exc))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(in_flight)]
        for thread in threads:
            thread.start()
        server.wait_for("in flight: ", count=in_flight)
        server.send(signal.SIGTERM)
        for thread in threads:
            thread.join(30)
        assert results == [200] * in_flight
        assert server.wait(timeout=30) == 0
