"""gunicorn.drivers.tls against a real client TLS socket on 127.0.0.1."""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gunicorn.config import Config
from gunicorn.drivers import tls
from tests.certs import TestCerts, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


def make_cfg(certs: TestCerts, **overrides: Any) -> Config:
    """A configuration with the server certificate and the given settings."""
    cfg = Config()
    cfg.set("certfile", str(certs.server_cert))
    cfg.set("keyfile", str(certs.server_key))
    for name, value in overrides.items():
        cfg.set(name, value)
    return cfg


def client_context(
    certs: TestCerts, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


@pytest.fixture
def socket_pair() -> Iterator[Callable[[], tuple[socket.socket, socket.socket]]]:
    """Connected (server side, client side) TCP sockets on 127.0.0.1."""
    opened: list[socket.socket] = []
    listener = socket.create_server(("127.0.0.1", 0))
    opened.append(listener)

    def connect() -> tuple[socket.socket, socket.socket]:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
        opened.extend((client, server))
        return server, client

    yield connect
    for sock in opened:
        sock.close()


def run_client(
    client: socket.socket, context: ssl.SSLContext, **wrap: Any
) -> tuple[threading.Thread, dict[str, Any]]:
    """Handshake as a client in a thread, then echo one exchange; the result goes in a dict."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with context.wrap_socket(client, server_hostname="localhost", **wrap) as conn:
                result["alpn"] = conn.selected_alpn_protocol()
                conn.sendall(b"ping")
                result["reply"] = conn.recv(16)
        except (ssl.SSLError, OSError) as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def wrap(server: socket.socket, cfg: Config) -> ssl.SSLSocket:
    """Wrap the server side; the wrapped socket owns the descriptor and must be closed."""
    conn = tls.wrap_socket(server, tls.ssl_context(cfg), cfg)
    _wrapped.append(conn)
    return conn


_wrapped: list[ssl.SSLSocket] = []


@pytest.fixture(autouse=True)
def close_wrapped() -> Iterator[None]:
    yield
    while _wrapped:
        _wrapped.pop().close()


def serve_once(server: socket.socket, cfg: Config) -> ssl.SSLSocket:
    conn = wrap(server, cfg)
    tls.handshake(conn, 5)
    assert conn.recv(16) == b"ping"
    conn.sendall(b"pong")
    return conn


def test_handshake_and_exchange(certs: TestCerts, socket_pair: Any) -> None:
    server, client = socket_pair()
    cfg = make_cfg(certs)
    context = client_context(certs)
    context.set_alpn_protocols(["http/1.1"])
    thread, result = run_client(client, context)
    serve_once(server, cfg)
    thread.join(5)
    assert result == {"alpn": "http/1.1", "reply": b"pong"}


def test_certfile_holding_the_key_works_alone(certs: TestCerts, socket_pair: Any) -> None:
    server, client = socket_pair()
    cfg = make_cfg(certs, certfile=str(certs.server_combined))
    cfg.settings["keyfile"].value = None
    thread, result = run_client(client, client_context(certs))
    serve_once(server, cfg)
    thread.join(5)
    assert result["reply"] == b"pong"


@pytest.mark.parametrize(
    ("cert_reqs", "mode"),
    [(0, ssl.CERT_NONE), (1, ssl.CERT_OPTIONAL), (2, ssl.CERT_REQUIRED)],
)
def test_cert_reqs_sets_verify_mode(certs: TestCerts, cert_reqs: int, mode: ssl.VerifyMode) -> None:
    cfg = make_cfg(certs, cert_reqs=cert_reqs, ca_certs=str(certs.ca))
    assert tls.ssl_context(cfg).verify_mode == mode


def test_client_certificate_required_and_given(certs: TestCerts, socket_pair: Any) -> None:
    server, client = socket_pair()
    cfg = make_cfg(certs, cert_reqs=2, ca_certs=str(certs.ca))
    context = client_context(certs, certs.client_cert, certs.client_key)
    thread, result = run_client(client, context)
    conn = serve_once(server, cfg)
    thread.join(5)
    assert result["reply"] == b"pong"
    peer = tls.peer_certificate(conn)
    assert peer is not None
    assert (("commonName", "test client"),) in peer["subject"]


@pytest.mark.parametrize("which", ["none", "rogue"])
def test_client_certificate_required_and_refused(
    certs: TestCerts, socket_pair: Any, which: str
) -> None:
    server, client = socket_pair()
    cfg = make_cfg(certs, cert_reqs=2, ca_certs=str(certs.ca))
    if which == "none":
        context = client_context(certs)
    else:
        context = client_context(certs, certs.other_client_cert, certs.other_client_key)
    thread, result = run_client(client, context)
    conn = wrap(server, cfg)
    with pytest.raises(ssl.SSLError):
        tls.handshake(conn, 5)
        conn.recv(16)  # TLS 1.3 reports a missing client certificate on the first read
    conn.close()
    thread.join(5)
    assert "error" in result


def test_optional_client_certificate_may_be_absent(certs: TestCerts, socket_pair: Any) -> None:
    server, client = socket_pair()
    cfg = make_cfg(certs, cert_reqs=1, ca_certs=str(certs.ca))
    thread, result = run_client(client, client_context(certs))
    conn = serve_once(server, cfg)
    thread.join(5)
    assert result["reply"] == b"pong"
    assert tls.peer_certificate(conn) is None


def test_ciphers_setting_restricts_tls12_suites(certs: TestCerts) -> None:
    suite = "ECDHE-ECDSA-AES128-GCM-SHA256"
    context = tls.ssl_context(make_cfg(certs, ciphers=suite))
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == [suite]


def test_bad_cipher_string_is_refused(certs: TestCerts) -> None:
    with pytest.raises(ssl.SSLError):
        tls.ssl_context(make_cfg(certs, ciphers="NO-SUCH-CIPHER"))


def test_hook_receives_config_and_factory(certs: TestCerts, socket_pair: Any) -> None:
    seen: list[Any] = []

    def hook(config: Any, factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        seen.append(config)
        context = factory()
        context.set_alpn_protocols(["x-custom"])
        return context

    cfg = make_cfg(certs, ssl_context=hook)
    server, client = socket_pair()
    context = client_context(certs)
    context.set_alpn_protocols(["x-custom", "http/1.1"])
    thread, result = run_client(client, context)
    serve_once(server, cfg)
    thread.join(5)
    assert seen == [cfg]
    assert result["alpn"] == "x-custom"


def test_alpn_list_follows_http_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "_h2_available", True)
    assert tls.alpn_protocols(["h2", "h1"]) == ["h2", "http/1.1"]
    assert tls.alpn_protocols("h1,h2") == ["http/1.1", "h2"]
    assert tls.alpn_protocols(["h1"]) == ["http/1.1"]
    monkeypatch.setattr(tls, "_h2_available", False)
    assert tls.alpn_protocols(["h2", "h1"]) == ["http/1.1"]


def test_h2_is_not_selected_without_the_h2_library(
    certs: TestCerts, socket_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls, "_h2_available", False)
    server, client = socket_pair()
    cfg = make_cfg(certs, http_protocols=["h2", "h1"])
    context = client_context(certs)
    context.set_alpn_protocols(["h2", "http/1.1"])
    thread, result = run_client(client, context)
    conn = serve_once(server, cfg)
    thread.join(5)
    assert result["alpn"] == "http/1.1"
    assert tls.negotiated_protocol(conn) == "h1"


def test_h2_selected_when_listed_and_available(
    certs: TestCerts, socket_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls, "_h2_available", True)
    server, client = socket_pair()
    cfg = make_cfg(certs, http_protocols=["h2", "h1"])
    context = client_context(certs)
    context.set_alpn_protocols(["h2", "http/1.1"])
    thread, result = run_client(client, context)
    conn = serve_once(server, cfg)
    thread.join(5)
    assert result["alpn"] == "h2"
    assert tls.negotiated_protocol(conn) == "h2"


def test_silent_client_handshake_times_out(certs: TestCerts, socket_pair: Any) -> None:
    server, _client = socket_pair()  # the client never sends a ClientHello
    cfg = make_cfg(certs)
    conn = wrap(server, cfg)
    with pytest.raises(TimeoutError):
        tls.handshake(conn, 0.2)
    assert conn.gettimeout() is None  # the socket's own timeout is restored


def test_trickling_client_cannot_stretch_the_deadline(certs: TestCerts, socket_pair: Any) -> None:
    server, client = socket_pair()
    cfg = make_cfg(certs)
    conn = wrap(server, cfg)
    stop = threading.Event()

    def trickle() -> None:
        # A TLS record header, then one byte at a time: each read succeeds, none completes.
        for byte in b"\x16\x03\x01\x02\x00" + b"\x01" * 200:
            if stop.wait(0.05):
                return
            try:
                client.send(bytes([byte]))
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with pytest.raises(TimeoutError):
            tls.handshake(conn, 0.5)
    finally:
        stop.set()
        thread.join(5)


def test_non_blocking_handshake_steps(certs: TestCerts, socket_pair: Any) -> None:
    server, client = socket_pair()
    cfg = make_cfg(certs)
    server.setblocking(False)
    conn = wrap(server, cfg)
    assert tls.handshake_step(conn) == tls.WANT_READ  # nothing received yet
    thread, result = run_client(client, client_context(certs))
    deadline = time.monotonic() + 5
    with selectors.DefaultSelector() as selector:
        want = tls.WANT_READ
        selector.register(conn, want)
        while want:
            assert time.monotonic() < deadline
            selector.select(0.5)
            want = tls.handshake_step(conn)
            if want:
                selector.modify(conn, want)
    conn.setblocking(True)
    assert conn.recv(16) == b"ping"
    conn.sendall(b"pong")
    thread.join(5)
    assert result["reply"] == b"pong"


@pytest.mark.parametrize("value", [True, False])
def test_handshake_on_connect_and_ragged_eofs_settings(certs: TestCerts, value: bool) -> None:
    cfg = make_cfg(certs, do_handshake_on_connect=value, suppress_ragged_eofs=value)
    assert tls.handshake_on_connect(cfg) is value
    with socket.socket() as raw:
        conn = tls.wrap_socket(raw, tls.ssl_context(cfg), cfg)
        assert conn.suppress_ragged_eofs is value
        assert conn.do_handshake_on_connect is False
        conn.close()
