"""PROXY protocol headers and uwsgi packets sent from raw sockets to a sync worker."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator

import pytest

from tests.support import Gunicorn
from tests.wsgi.wire import WSGI_DIR, exchange, one, parse_replies, request_bytes

APP = ["-k", "sync", "--chdir", str(WSGI_DIR), "--access-logfile", "-", "apps:app"]
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src: str, dst: str, sport: int, dport: int, *, local: bool = False) -> bytes:
    command = 0x20 if local else 0x21
    payload = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return V2_SIGNATURE + bytes([command, 0x11]) + struct.pack("!H", len(payload)) + payload


@pytest.fixture(scope="module")
def proxied() -> Iterator[Gunicorn]:
    with Gunicorn(*APP, "--proxy-protocol", "auto") as running:
        yield running


def environ_of(raw: bytes) -> dict[str, object]:
    replies = parse_replies(raw)
    assert replies[0].status == 200, raw
    return json.loads(replies[0].body)  # type: ignore[no-any-return]


def test_proxy_v1_sets_the_client_address(proxied: Gunicorn) -> None:
    header = b"PROXY TCP4 203.0.113.9 198.51.100.2 51000 443\r\n"
    env = environ_of(exchange(proxied.address, header + request_bytes("GET", "/environ")))
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["REMOTE_PORT"] == "51000"
    assert env["PROXY_PROTOCOL"] == "TCP4"
    assert env["PROXY_ADDR"] == "198.51.100.2"
    assert env["PROXY_PORT"] == "443"
    proxied.wait_for(r'203\.0\.113\.9 - - .*"GET /environ HTTP/1.1" 200')


def test_proxy_v1_ipv6(proxied: Gunicorn) -> None:
    header = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 80\r\n"
    env = environ_of(exchange(proxied.address, header + request_bytes("GET", "/environ")))
    assert env["REMOTE_ADDR"] == "2001:db8::1"
    assert env["PROXY_PROTOCOL"] == "TCP6"


def test_proxy_v2_sets_the_client_address(proxied: Gunicorn) -> None:
    header = proxy_v2("192.0.2.10", "192.0.2.20", 1234, 8443)
    env = environ_of(exchange(proxied.address, header + request_bytes("GET", "/environ")))
    assert env["REMOTE_ADDR"] == "192.0.2.10"
    assert env["REMOTE_PORT"] == "1234"
    assert env["PROXY_PORT"] == "8443"


def test_proxy_v2_local_keeps_the_peer_address(proxied: Gunicorn) -> None:
    header = proxy_v2("192.0.2.10", "192.0.2.20", 1234, 8443, local=True)
    env = environ_of(exchange(proxied.address, header + request_bytes("GET", "/environ")))
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert "PROXY_PROTOCOL" not in env


def test_proxy_header_split_across_packets(proxied: Gunicorn) -> None:
    data = b"PROXY TCP4 203.0.113.9 198.51.100.2 51000 443\r\n" + request_bytes("GET", "/environ")
    pieces = [data[:3], data[3:20], data[20:50], data[50:]]
    env = environ_of(exchange(proxied.address, pieces, pause=0.02))
    assert env["REMOTE_ADDR"] == "203.0.113.9"


def test_plain_http_still_works_in_auto_mode(proxied: Gunicorn) -> None:
    assert one(proxied.address, request_bytes("GET", "/")).status == 200


@pytest.mark.parametrize(
    "header",
    [
        b"PROXY TCP4 203.0.113.9 198.51.100.2 51000\r\n",
        b"PROXY TCP4 999.0.113.9 198.51.100.2 51000 443\r\n",
        b"PROXY TCP4 203.0.113.9 198.51.100.2 51000 443\n",
        b"PROXY UDP4 203.0.113.9 198.51.100.2 51000 443\r\n",
    ],
)
def test_invalid_proxy_header_is_a_400(proxied: Gunicorn, header: bytes) -> None:
    replies = parse_replies(exchange(proxied.address, header + request_bytes("GET", "/")))
    assert [reply.status for reply in replies] == [400]
    assert replies[0].header("connection") == b"close"


def test_proxy_header_from_a_peer_not_allowed_is_a_403() -> None:
    with Gunicorn(*APP, "--proxy-protocol", "v1", "--proxy-allow-from", "10.0.0.0/8") as running:
        header = b"PROXY TCP4 203.0.113.9 198.51.100.2 51000 443\r\n"
        replies = parse_replies(exchange(running.address, header + request_bytes("GET", "/")))
        assert [reply.status for reply in replies] == [403]
        # Without a header, plain HTTP from that peer is still served.
        assert one(running.address, request_bytes("GET", "/")).status == 200


# --- uwsgi -----------------------------------------------------------------------------


def uwsgi_packet(pairs: list[tuple[str, str]], body: bytes = b"") -> bytes:
    block = b""
    for key, value in pairs:
        k, v = key.encode("latin-1"), value.encode("latin-1")
        block += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return struct.pack("<BHB", 0, len(block), 0) + block + body


NGINX_VARS = [
    ("QUERY_STRING", "a=1"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("REQUEST_URI", "/environ?a=1"),
    ("PATH_INFO", "/environ"),
    ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "https"),
    ("HTTPS", "on"),
    ("REMOTE_ADDR", "198.51.100.77"),
    ("REMOTE_PORT", "40404"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "www.example.com"),
    ("HTTP_HOST", "www.example.com"),
    ("HTTP_USER_AGENT", "nginx-test"),
]


@pytest.fixture(scope="module")
def uwsgi_server() -> Iterator[Gunicorn]:
    with Gunicorn(*APP, "--protocol", "uwsgi", "--uwsgi-allow-from", "127.0.0.0/8") as running:
        yield running


def test_uwsgi_get(uwsgi_server: Gunicorn) -> None:
    raw = exchange(uwsgi_server.address, uwsgi_packet(NGINX_VARS))
    reply = parse_replies(raw)[0]
    assert reply.status == 200
    assert reply.header("transfer-encoding") is None
    env = json.loads(reply.body)
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1"
    assert env["wsgi.url_scheme"] == "https"
    assert env["REMOTE_ADDR"] == "198.51.100.77"
    assert env["REMOTE_PORT"] == "40404"
    assert env["SERVER_NAME"] == "www.example.com"
    assert env["SERVER_PORT"] == "443"
    assert env["HTTP_USER_AGENT"] == "nginx-test"
    uwsgi_server.wait_for(r'198\.51\.100\.77 - - .*"GET /environ\?a=1 HTTP/1.1" 200')


def test_uwsgi_post_body(uwsgi_server: Gunicorn) -> None:
    pairs = [
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/echo"),
        ("PATH_INFO", "/echo"),
        ("CONTENT_LENGTH", "11"),
        ("HTTP_HOST", "h"),
    ]
    reply = parse_replies(exchange(uwsgi_server.address, uwsgi_packet(pairs, b"hello uwsgi")))[0]
    assert reply.status == 200
    assert reply.body == b"hello uwsgi"


def test_uwsgi_streaming_response_is_not_chunked(uwsgi_server: Gunicorn) -> None:
    pairs = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/stream"), ("HTTP_HOST", "h")]
    raw = exchange(uwsgi_server.address, uwsgi_packet(pairs))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_invalid_uwsgi_packet_is_a_400(uwsgi_server: Gunicorn) -> None:
    replies = parse_replies(exchange(uwsgi_server.address, b"\x05\x00\x00\x00"))
    assert [reply.status for reply in replies] == [400]


def test_uwsgi_from_a_peer_not_allowed_is_refused() -> None:
    with Gunicorn(*APP, "--protocol", "uwsgi", "--uwsgi-allow-from", "10.0.0.0/8") as running:
        replies = parse_replies(exchange(running.address, uwsgi_packet(NGINX_VARS)))
        assert [reply.status for reply in replies] == [403]
        assert running.count("GET /environ") == 0
