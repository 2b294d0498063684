"""HTTP/2 flood and abuse battery F1-F13 (hostile-inputs §3), against a real server.

Each attack runs on one connection while a probe on a second connection sends one GET every
100 ms. A test passes when the attack ends as the table says (GOAWAY or close, within a bound)
and the probe stayed healthy: no failure, p99 < 250 ms (more only when the probe was already
slower than that before any attack: ``Probe.allowance``), worker RSS growth < 32 MiB. Every
loop is bounded in count and in time; all traffic goes to 127.0.0.1.

The attacks run over h2c with prior knowledge (the TLS path shares the same core); F13 uses
TLS so that one server answers both HTTP/2 and HTTP/1.1 (ALPN picks).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hyperframe.frame import GoAwayFrame, RstStreamFrame

from tests.certs import TestCerts
from tests.http2.conftest import (
    OUTCOME,
    TARGET_KIND,
    WORKER_CLASSES,
    AppCalls,
    Probe,
    run_target,
    tls_client_context,
)
from tests.http2.frames import ErrorCodes, H2Client, Target
from tests.http2.wire import (
    MAX_WINDOW,
    Flag,
    FrameType,
    Setting,
    frame_bytes,
    hpack_block,
    hpack_indexed,
    hpack_int,
    hpack_literal,
    hpack_string,
    priority_payload,
)
from tests.reliability.figures import record

# The flood battery runs against the worker classes of the reliability issue: gthread,
# gevent and asgi. eventlet passes it when run alone but not yet reliably on a loaded
# machine (probe latency under F6, and its heartbeat under F13 over TLS): see the issue.
FLOOD_WORKERS = tuple(w for w in WORKER_CLASSES if w != "eventlet")


@pytest.fixture(scope="module", params=FLOOD_WORKERS if TARGET_KIND == "gunicorn" else ["-"])
def worker(request: pytest.FixtureRequest) -> str:
    """The worker class under test in this module (overrides the conftest's)."""
    return str(request.param)


E = ErrorCodes
T = FrameType
MiB = 1 << 20
CALM = {E.ENHANCE_YOUR_CALM, E.PROTOCOL_ERROR}
END_REQUEST = Flag.END_STREAM | Flag.END_HEADERS


@pytest.fixture(scope="module")
def flood_target(
    worker: str, certs: TestCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    with run_target("h2c", tmp_path_factory.mktemp("floods"), certs, worker=worker) as server:
        yield server


@pytest.fixture(scope="module")
def flood_probe(flood_target: Target) -> Iterator[Probe]:
    with Probe(flood_target) as running:
        yield running


@pytest.fixture
def probe(flood_probe: Probe, record_property: Callable[[str, object], None]) -> Iterator[Probe]:
    """The module's probe, its statistics restarted for this test."""
    flood_probe.begin()
    yield flood_probe
    note_probe(flood_probe)
    report = flood_probe.summary()
    record_property("probe_p99_ms", round(flood_probe.p99 * 1000, 1))
    record_property("rss_growth_mib", round(flood_probe.rss_growth / MiB, 2))
    print(report)


def finish(probe: Probe, p99_limit: float | None = 0.25) -> None:
    probe.wait_samples(3)
    note_probe(probe)
    probe.assert_healthy(p99_limit)


# What the current test measured, published by ``_record_figures`` (section h2-floods of
# tests/reliability/figures.py) whether or not the test passed.
_FIGURES: dict[str, object] = {}


def note_probe(probe: Probe) -> None:
    _FIGURES.update(
        probe_p99_ms=round(probe.p99 * 1000, 1),
        probe_baseline_ms=round(probe.baseline * 1000, 1),
        probe_answers=len(probe.latencies),
        probe_failures=len(probe.failures),
        rss_growth_mib=round(probe.rss_growth / MiB, 2),
    )


@pytest.fixture(autouse=True)
def _record_figures(request: pytest.FixtureRequest, worker: str) -> Iterator[None]:
    _FIGURES.clear()
    yield
    params = getattr(request.node, "callspec", None)
    extra = [str(v) for k, v in (params.params.items() if params else ()) if k != "worker"]
    item = "-".join([request.node.originalname.removeprefix("test_"), *extra])
    outcome = getattr(request.node, OUTCOME, "error")
    record("h2-floods", worker, item, outcome=outcome, **_FIGURES)


# ----------------------------------------------------------------------------- flooding


@dataclass
class Outcome:
    sent: int  # attack units written
    elapsed: float
    goaway: GoAwayFrame | None
    closed: bool
    server_resets: int

    def __str__(self) -> str:
        goaway = "no GOAWAY"
        if self.goaway is not None:
            goaway = f"GOAWAY(last={self.goaway.last_stream_id}, code={self.goaway.error_code})"
        return (
            f"attack: {self.sent} units in {self.elapsed:.2f}s, {goaway}, "
            f"closed={self.closed}, server resets={self.server_resets}"
        )

    @property
    def ended(self) -> bool:
        return self.closed or (self.goaway is not None and self.goaway.error_code != 0)


def flood(
    client: H2Client,
    batch: Callable[[int], bytes],
    *,
    batches: int,
    per_batch: int,
    seconds: float = 10.0,
    read: bool = True,
    wait_end: bool = True,
) -> Outcome:
    """Write ``batch(i)`` up to ``batches`` times (reading replies between writes unless
    ``read`` is false) until the server ends the connection or ``seconds`` pass; then, with
    ``wait_end``, wait for the end until the same deadline."""
    started = time.monotonic()
    deadline = started + seconds
    sent = 0
    for i in range(batches):
        if time.monotonic() > deadline or client.closed:
            break
        if not client.send_bytes(batch(i)):
            break
        sent += per_batch
        if read:
            client.drain()
            if client.goaway is not None and client.goaway.error_code != 0:
                break
    if wait_end:
        with contextlib.suppress(AssertionError):
            client.expect_close(max(deadline - time.monotonic(), 0.5))
    outcome = Outcome(
        sent=sent,
        elapsed=time.monotonic() - started,
        goaway=client.goaway,
        closed=client.closed,
        server_resets=sum(isinstance(f, RstStreamFrame) for f in client.received),
    )
    print(outcome)
    _FIGURES.update(attack=str(outcome), ended=outcome.ended)
    return outcome


def assert_ended(outcome: Outcome, codes: Collection[int] | None = None) -> None:
    assert outcome.ended, f"the attack was never stopped ({outcome.sent} units sent)"
    if outcome.goaway is not None and codes is not None:
        assert outcome.goaway.error_code in codes, f"GOAWAY {outcome.goaway.error_code}"


def request_block(client: H2Client, case: str, path: str = "/hello") -> bytes:
    return hpack_block(client.request_headers(path, "GET", [("x-case", case)]))


def stream_ids(first: int, count: int) -> range:
    return range(first, first + 2 * count, 2)


def calls_for(target: Target, case: str) -> int:
    if target.name != "gunicorn":
        return 0
    calls = AppCalls(target)
    calls.settle()
    return sum(1 for c in calls.cases() if c == case)


# ----------------------------------------------------------------------------- F1-F11


@pytest.mark.slow
def test_f1_rapid_reset(flood_target: Target, probe: Probe) -> None:
    """CVE-2023-44487: HEADERS + RST_STREAM on new streams, up to 100k pairs."""
    with flood_target.client() as client:
        block = request_block(client, "f1")
        rst = struct.pack(">I", E.CANCEL)

        def batch(i: int) -> bytes:
            return b"".join(
                frame_bytes(T.HEADERS, END_REQUEST, sid, block)
                + frame_bytes(T.RST_STREAM, 0, sid, rst)
                for sid in stream_ids(1 + 2 * 500 * i, 500)
            )

        outcome = flood(client, batch, batches=200, per_batch=500)
    assert_ended(outcome, CALM)
    if outcome.goaway is not None:
        assert outcome.goaway.last_stream_id // 2 <= 2000, "too many reset streams accepted"
    assert calls_for(flood_target, "f1") <= 1000
    finish(probe)


@pytest.mark.slow
@pytest.mark.parametrize("trigger", ["window-update-0", "data-after-end-stream", "self-priority"])
def test_f2_made_you_reset(flood_target: Target, probe: Probe, trigger: str) -> None:
    """CVE-2025-8671: frames that make the *server* reset count toward the same budget."""
    with flood_target.client() as client:
        block = request_block(client, "f2")

        def provoke(sid: int) -> bytes:
            if trigger == "window-update-0":
                return frame_bytes(T.WINDOW_UPDATE, 0, sid, b"\0\0\0\0")
            if trigger == "data-after-end-stream":
                return frame_bytes(T.DATA, Flag.END_STREAM, sid, b"x")
            return frame_bytes(T.PRIORITY, 0, sid, priority_payload(sid))

        def batch(i: int) -> bytes:
            return b"".join(
                frame_bytes(T.HEADERS, END_REQUEST, sid, block) + provoke(sid)
                for sid in stream_ids(1 + 2 * 200 * i, 200)
            )

        outcome = flood(client, batch, batches=500, per_batch=200)
    assert_ended(outcome, CALM | {E.STREAM_CLOSED})
    assert outcome.server_resets <= 1000, f"{outcome.server_resets} resets before the end"
    finish(probe)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["large-fields", "tiny-frames", "huffman-garbage"])
def test_f3_continuation_flood(flood_target: Target, probe: Probe, shape: str) -> None:
    """VU#421644: a field block that never ends."""
    with flood_target.client() as client:
        client.send_headers(1, request_block(client, "f3"), end_headers=False)
        if shape == "large-fields":  # 16 KB frames of fields; 4 MiB at most
            payload, per_write, writes = hpack_literal(b"x-flood", b"a" * 16000), 4, 64
        elif shape == "tiny-frames":  # 1-byte frames; 20k at most
            payload, per_write, writes = b"\x00", 1000, 20
        else:  # one Huffman value announced as 1 GiB, then garbage; 4 MiB at most
            start = b"\x00" + hpack_string(b"x") + hpack_int(1 << 30, 7, 0x80)
            client.send_continuation(1, start, end_headers=False)
            payload, per_write, writes = bytes((i * 37 + 11) % 256 for i in range(16384)), 4, 64
        unit = frame_bytes(T.CONTINUATION, 0, 1, payload) * per_write
        outcome = flood(client, lambda i: unit, batches=writes, per_batch=per_write)
    assert_ended(outcome, CALM | {E.COMPRESSION_ERROR, E.FRAME_SIZE_ERROR})
    finish(probe)


@pytest.mark.slow
def test_f4_hpack_bomb(flood_target: Target, probe: Probe) -> None:
    """CVE-2016-6581: one 4 KiB table entry referenced 10k times, on stream after stream."""
    with flood_target.client() as client:
        verdicts = []
        for i in range(50):
            sid = 1 + 2 * i
            bomb = hpack_literal(b"x-bomb", b"b" * 4000, mode="incremental") if i == 0 else b""
            block = request_block(client, "f4") + bomb + hpack_indexed(62) * 10_000
            client.send_frame(T.HEADERS, END_REQUEST, sid, block)
            try:
                response = client.read_response(sid)
            except AssertionError:  # connection closed: the accepted end
                break
            verdict = response.status if response.status is not None else response.reset
            assert verdict is not None
            verdicts.append(verdict)
            if client.goaway is not None:
                break
    assert client.closed or client.goaway is not None or verdicts
    if client.goaway is not None:
        assert client.goaway.error_code in CALM | {E.COMPRESSION_ERROR}
    assert 200 not in verdicts, "a bomb reached the application"
    assert all(v == 431 or v < 100 for v in verdicts), verdicts
    assert calls_for(flood_target, "f4") == 0
    finish(probe)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_f5_control_frame_flood_without_reading(
    flood_target: Target, probe: Probe, kind: str
) -> None:
    """CVE-2019-9512/9515: replies pile up while the client never reads them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(flood_target.address)
    with H2Client(sock, timeout=5) as client:
        client.handshake()
        one = (
            frame_bytes(T.PING, 0, 0, b"pingpong")
            if kind == "ping"
            else frame_bytes(T.SETTINGS, 0, 0, b"")
        )
        unit = one * 1000
        outcome = flood(client, lambda i: unit, batches=100, per_batch=1000, read=False)
    assert_ended(outcome, CALM)
    finish(probe)
    server = flood_target.extras.get("server")
    if server is not None:  # gunicorn: the operator is told why (once, at INFO)
        server.wait_for(r"\[INFO\] Ended the HTTP/2 connection from ip=127\.0\.0\.1: too many")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["empty-data", "empty-name-headers"])
def test_f6_empty_frames(flood_target: Target, probe: Probe, kind: str) -> None:
    """CVE-2019-9518 (empty DATA) and CVE-2019-9516 (0-length header fields)."""
    with flood_target.client() as client:
        if kind == "empty-data":
            sid = client.open_stream("/echo")
            unit = frame_bytes(T.DATA, 0, sid, b"") * 1000
            outcome = flood(client, lambda i: unit, batches=100, per_batch=1000)
        else:
            empty = b"\x00\x80\x80" * 200  # literal, new name, empty Huffman name and value

            def batch(i: int) -> bytes:
                ids = stream_ids(1 + 2 * 100 * i, 100)
                return b"".join(frame_bytes(T.HEADERS, END_REQUEST, s, empty) for s in ids)

            outcome = flood(client, batch, batches=200, per_batch=100)
    assert_ended(outcome, CALM | {E.COMPRESSION_ERROR})
    assert outcome.server_resets <= 1000
    finish(probe)


@pytest.mark.slow
def test_f7_priority_flood(flood_target: Target, probe: Probe) -> None:
    """CVE-2019-9513: 10k PRIORITY frames per stream with cyclic dependencies."""
    with flood_target.client() as client:
        ring = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]

        def batch(i: int) -> bytes:
            frames = []
            for j, sid in enumerate(ring):
                parent = ring[(j + i + 1) % len(ring)]
                frames.append(frame_bytes(T.PRIORITY, 0, sid, priority_payload(parent, j + 1)))
            return b"".join(frames) * 100

        outcome = flood(client, batch, batches=100, per_batch=1000, wait_end=False)
        if not outcome.ended:
            started = time.monotonic()
            client.ping_roundtrip(timeout=5)
            assert time.monotonic() - started < 1.0, "the server is still busy with PRIORITY"
            assert client.request("/hello", headers=[("x-case", "f7")]).status == 200
    if outcome.ended and outcome.goaway is not None:
        assert outcome.goaway.error_code in CALM
    finish(probe)


@pytest.mark.slow
def test_f8_window_update_dribble(flood_target: Target, probe: Probe) -> None:
    """CVE-2019-9517/9511: 1-byte windows against a large response."""
    with flood_target.client({Setting.INITIAL_WINDOW_SIZE: 1}) as client:
        client.auto_window = False
        sid = client.send_request("/large?n=104857600", headers=[("x-case", "f8")])
        unit = (
            frame_bytes(T.WINDOW_UPDATE, 0, sid, struct.pack(">I", 1))
            + frame_bytes(T.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1))
        ) * 500
        outcome = flood(
            client, lambda i: unit, batches=40, per_batch=500, seconds=4, wait_end=False
        )
        received = len(client.responses[sid].body)
    assert received <= 1 + outcome.sent, f"{received} bytes sent into {1 + outcome.sent}"
    if outcome.goaway is not None:
        assert outcome.goaway.error_code in CALM | {E.NO_ERROR}
    finish(probe)


@pytest.mark.slow
def test_f8_zero_window_held_open(flood_target: Target, probe: Probe) -> None:
    """A 100 MiB response against a window of 0: nothing may be buffered beyond the window."""
    with flood_target.client({Setting.INITIAL_WINDOW_SIZE: 0}) as client:
        sid = client.send_request("/large?n=104857600", headers=[("x-case", "f8z")])
        probe.wait_samples(20)  # two seconds of stall
        assert not client.responses[sid].body
    finish(probe)


@pytest.mark.slow
def test_f9_reset_flood(flood_target: Target, probe: Probe) -> None:
    """CVE-2019-9514: malformed requests that each cost the server a RST_STREAM."""
    with flood_target.client() as client:
        fields = client.request_headers("/hello", "GET", [("X-Upper", "1"), ("x-case", "f9")])
        block = hpack_block(fields)

        def batch(i: int) -> bytes:
            ids = stream_ids(1 + 2 * 500 * i, 500)
            return b"".join(frame_bytes(T.HEADERS, END_REQUEST, s, block) for s in ids)

        outcome = flood(client, batch, batches=200, per_batch=500)
    assert_ended(outcome, CALM)
    assert outcome.server_resets <= 1000, f"{outcome.server_resets} resets sent"
    assert calls_for(flood_target, "f9") == 0
    finish(probe)


@pytest.mark.slow
def test_f10_stream_limits(flood_target: Target, probe: Probe) -> None:
    with flood_target.client() as client:
        limit = client.server_settings.get(Setting.MAX_CONCURRENT_STREAMS, 100)
        sids = [client.open_stream("/echo") for _ in range(limit + 1)]
        client.expect_stream_error(sids[-1], {E.REFUSED_STREAM, E.PROTOCOL_ERROR})
    with flood_target.client() as client:
        last = MAX_WINDOW  # 2^31 - 1: the last client stream id
        client.send_headers(last, request_block(client, "f10"))
        assert client.read_response(last).status == 200
        client.send_headers(1, request_block(client, "f10"))  # ids ran out
        client.expect_connection_error(E.PROTOCOL_ERROR)
    with flood_target.client() as client:
        assert client.request("/hello").status == 200
    finish(probe)


MALFORMED_FIELDS = [
    ("uppercase", ("X-Upper", "1")),
    ("cr", ("x-v", "a\rb")),
    ("lf", ("x-v", "a\nx-injected: 1")),
    ("nul", ("x-v", "a\0b")),
    ("connection", ("connection", "close")),
    ("transfer-encoding", ("transfer-encoding", "chunked")),
    ("te-gzip", ("te", "gzip")),
]


@pytest.mark.slow
def test_f11_malformed_requests_never_reach_the_app(flood_target: Target, probe: Probe) -> None:
    for name, bad in MALFORMED_FIELDS:
        with flood_target.client() as client:
            fields = client.request_headers("/headers", "GET", [bad, ("x-case", f"f11-{name}")])
            client.send_headers(1, hpack_block(fields))
            client.expect_stream_error(1, E.PROTOCOL_ERROR)
            if client.goaway is None:
                assert client.request("/hello").status == 200
    if flood_target.name == "gunicorn":
        calls = AppCalls(flood_target)
        calls.settle()
        assert not [c for c in calls.cases() if c and c.startswith("f11-")]
    finish(probe)


# ----------------------------------------------------------------------------- F12


def _http1_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes, bytes]:
    """Read one HTTP/1.1 response head (and body when it has a Content-Length)."""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        data = sock.recv(65536)
        assert data, f"closed before a response head: {bytes(buffer)!r}"
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if status == 101:
        length = 0
    while len(rest) < length:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        data = sock.recv(65536)
        assert data, "closed inside a response body"
        rest += data
    buffer[:] = rest[length:]
    return status, head, rest[:length]


def _settings_b64(settings: dict[int, int]) -> str:
    payload = b"".join(struct.pack(">HI", k, v) for k, v in settings.items())
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def upgrade_target(
    worker: str, certs: TestCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp("upgrade")
    args = ("--http2-cleartext", "both")
    with run_target("h2c", directory, certs, *args, worker=worker) as server:
        yield server


def _after_101(sock: socket.socket, leftover: bytes) -> H2Client:
    """The client side of an upgraded connection: stream 1 is the upgraded request."""
    client = H2Client(sock)
    client._buffer += leftover
    client.next_stream_id = 3
    client.send_preface()
    return client


def _upgrade_request(case: str, tag: str) -> bytes:
    good = _settings_b64({Setting.MAX_CONCURRENT_STREAMS: 10})
    upgrade = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    head = f"Host: localhost\r\nx-case: {tag}\r\n"
    if case == "body":
        text = f"POST /echo HTTP/1.1\r\n{head}Content-Length: 5\r\n{upgrade}"
        text += f"HTTP2-Settings: {good}\r\n\r\nhello"
    elif case == "invalid-settings":
        text = f"GET /hello HTTP/1.1\r\n{head}{upgrade}HTTP2-Settings: !!not*base64!!x\r\n\r\n"
    elif case == "missing-settings":
        text = f"GET /hello HTTP/1.1\r\n{head}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    else:
        text = f"GET /hello HTTP/1.1\r\n{head}{upgrade}HTTP2-Settings: {good}\r\n\r\n"
        text += f"GET /hello?second HTTP/1.1\r\nHost: localhost\r\nx-case: {tag}-2\r\n\r\n"
    return text.encode()


def _read_to_close(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Read until the peer closes; ``False`` if it is still open at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


@pytest.mark.parametrize("case", ["body", "invalid-settings", "missing-settings", "pipelined"])
def test_f12_h2c_upgrade_abuse(upgrade_target: Target, case: str) -> None:
    """Either a clean 101 then HTTP/2, or an ordinary HTTP/1.1 answer; never half-parsed."""
    tag = f"f12-{case}"
    with socket.create_connection(upgrade_target.address, timeout=5) as sock:
        sock.sendall(_upgrade_request(case, tag))
        buffer = bytearray()
        status, head, body = _http1_response(sock, buffer)
        if status != 101:
            assert status == 200 or (status == 400 and case == "invalid-settings"), head
            if case == "body":
                assert body == b"hello"
            if case == "pipelined":
                assert _http1_response(sock, buffer)[0] == 200
            return
        # RFC 7540 §3.2.1: no upgrade without exactly one valid HTTP2-Settings field.
        assert case in ("body", "pipelined"), f"upgraded despite {case}"
        if case == "body":
            client = _after_101(sock, bytes(buffer))
            assert bytes(client.read_response(1).body) == b"hello"
            return
        # The pipelined HTTP/1.1 request is not a connection preface: a connection error.
        sock.sendall(b"")
        assert _read_to_close(sock), "the upgraded connection kept going after a bad preface"
    if upgrade_target.name == "gunicorn":
        AppCalls(upgrade_target).assert_not_called(f"{tag}-2")


# ----------------------------------------------------------------------------- F13


SLOW_READ_TIMEOUT = 3


@pytest.fixture(scope="module")
def slow_read_target(
    worker: str, certs: TestCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    directory: Path = tmp_path_factory.mktemp("slowread")
    args = ("--timeout", str(SLOW_READ_TIMEOUT))
    with run_target("tls", directory, certs, *args, worker=worker) as server:
        yield server


def _slow_h2(sock: socket.socket) -> Callable[[], str | None]:
    client = H2Client(sock, tls=True, timeout=10)
    client.handshake({Setting.INITIAL_WINDOW_SIZE: MAX_WINDOW})
    client.send_window_update(0, MAX_WINDOW - 65535)
    sid = client.send_request("/large?n=104857600", headers=[("x-case", "f13")])

    def still_served() -> str | None:
        with contextlib.suppress(AssertionError):  # closed: judged below
            client.read_response(sid, timeout=10)
        response = client.responses[sid]
        if (client.closed or response.reset is not None) and len(response.body) < 100 * MiB:
            return None
        return f"{len(response.body)} bytes received, {client.summary()}"

    return still_served


def _slow_h1(sock: socket.socket) -> Callable[[], str | None]:
    sock.sendall(b"GET /large?n=104857600 HTTP/1.1\r\nHost: localhost\r\nx-case: f13\r\n\r\n")

    def still_served() -> str | None:
        received, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                break
            except OSError:
                data = b""
            if not data:
                return None if received < 100 * MiB else "the whole response was sent"
            received += len(data)
        return f"connection still open after {received} bytes"

    return still_served


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["h2", "http/1.1"])
def test_f13_slow_reader_is_dropped(
    slow_read_target: Target, certs: TestCerts, protocol: str
) -> None:
    """A 100 MiB response to a client that reads nothing: the send timeout (``--timeout``)
    frees the worker. A worker that blocks a thread on it may delay the probe until then (the
    p99 bound is for workers that do not), but the probe never fails, and once the timeout
    has passed the slow connection is found dropped, not merely resumed."""
    with Probe(slow_read_target, request_timeout=10) as probe:
        probe.begin()
        raw = socket.create_connection(slow_read_target.address, timeout=5)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        context = tls_client_context(certs, (protocol,))
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            start = _slow_h2 if protocol == "h2" else _slow_h1
            still_served = start(sock)
            probe.wait_samples(int((SLOW_READ_TIMEOUT + 2) / probe.interval), timeout=15)
            verdict = still_served()
            note_probe(probe)
            _FIGURES.update(attack=verdict or "slow reader dropped", ended=verdict is None)
            assert verdict is None, f"the slow reader was not dropped: {verdict}"
        probe.wait_samples(3)
        note_probe(probe)
        print(probe.summary())
        probe.assert_healthy(p99_limit=None)
        waited = max(probe.latencies)
    assert waited < SLOW_READ_TIMEOUT + 2, f"probe waited {waited:.1f}s"
