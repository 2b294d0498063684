"""A raw HTTP/2 client for black-box tests, built on ``hyperframe`` and ``hpack``.

Frames go out as bytes built by :mod:`tests.http2.wire` (so they can be wrong on purpose:
bad lengths, stream ids, padding, flags) or as ``hyperframe`` frames; field blocks come from
``hpack``'s encoder or from the hand encoders in ``wire``. Frames from the server are parsed
with ``hyperframe``.

Everything the server sends is parsed and applied as it arrives: its SETTINGS are
acknowledged, its PINGs answered, its DATA credited back (``WINDOW_UPDATE``), and every header
block is decoded in order so the HPACK state stays in step. ``expect_*`` helpers read until a
frame that matches, or fail with the list of frames seen; every read has a deadline.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hpack
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.http2.wire import (
    DEFAULT_MAX_FRAME,
    DEFAULT_WINDOW,
    PREFACE,
    Flag,
    FrameType,
    Setting,
    Settings,
    frame_bytes,
    priority_payload,
    settings_payload,
)

__all__ = ["ErrorCodes", "H2Client", "Response", "Target"]

# ------------------------------------------------------------------------- responses


@dataclass
class Response:
    """What the server sent on one stream."""

    stream_id: int
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    informational: list[list[tuple[str, str]]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    data_frames: list[int] = field(default_factory=list)  # payload length of each DATA frame
    trailers: list[tuple[str, str]] | None = None
    ended: bool = False  # END_STREAM seen
    reset: int | None = None  # RST_STREAM error code

    def header(self, name: str) -> str | None:
        """The first value of field ``name`` (lowercase) in the final response head."""
        return next((v for n, v in self.headers if n == name), None)


@dataclass
class Target:
    """Where a client connects: TCP address, TLS context (``None`` for h2c) and extras."""

    address: tuple[str, int]
    tls: ssl.SSLContext | None = None
    name: str = "gunicorn"
    transport: str = "h2c"
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"https://localhost:{port}" if self.tls else f"http://{host}:{port}"

    def connect(self, timeout: float = 5.0) -> H2Client:
        """A connected client that has sent nothing yet."""
        return H2Client.open(self.address, self.tls, timeout=timeout)

    def client(self, settings: Settings | None = None, timeout: float = 5.0) -> H2Client:
        """A connected client past the preface and SETTINGS exchange."""
        client = self.connect(timeout)
        try:
            client.handshake(settings)
        except BaseException:
            client.close()
            raise
        return client


# ------------------------------------------------------------------------- the client


def _codes(code: int | Collection[int]) -> set[int]:
    return {int(code)} if isinstance(code, int) else {int(c) for c in code}


def _describe(frame: Frame | None) -> str:
    if frame is None:
        return "<connection closed>"
    if isinstance(frame, GoAwayFrame):
        return f"GOAWAY(last={frame.last_stream_id}, {_name(frame.error_code)})"
    if isinstance(frame, RstStreamFrame):
        return f"RST_STREAM(stream={frame.stream_id}, {_name(frame.error_code)})"
    flags = ",".join(sorted(frame.flags))
    return f"{type(frame).__name__}(stream={frame.stream_id}, flags={flags})"


def _name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


class H2Client:
    """One HTTP/2 connection driven frame by frame (see the module docstring)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        tls: bool = False,
        timeout: float = 5.0,
        auto_ack: bool = True,
        auto_window: bool = True,
    ) -> None:
        self.sock = sock
        self.scheme = "https" if tls else "http"
        self.authority = "localhost"
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.auto_window = auto_window
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder(max_header_list_size=1 << 24)
        self.decoder.max_allowed_table_size = 1 << 16
        self.server_settings: dict[int, int] = {}
        self.server_settings_seen = False
        self.settings_acks = 0
        self.ping_acks: list[bytes] = []
        self.responses: dict[int, Response] = {}
        self.received: list[Frame] = []
        self.goaway: GoAwayFrame | None = None
        self.closed = False  # the server closed (or reset) the connection
        self.peer_gone = False  # a send failed: the server stopped reading
        self.next_stream_id = 1
        self.send_window = DEFAULT_WINDOW
        self.stream_windows: dict[int, int] = {}
        self._buffer = bytearray()
        self._block: tuple[int, bytearray, bool] | None = None  # stream, fragments, END_STREAM

    @classmethod
    def open(
        cls,
        address: tuple[str, int],
        tls: ssl.SSLContext | None = None,
        *,
        timeout: float = 5.0,
        server_hostname: str = "localhost",
    ) -> H2Client:
        """Connect to ``address``; over TLS, insist that ALPN selected ``h2``."""
        sock = socket.create_connection(address, timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=server_hostname)
                chosen = sock.selected_alpn_protocol()
                assert chosen == "h2", f"ALPN selected {chosen!r}, not h2"
        except BaseException:
            sock.close()
            raise
        return cls(sock, tls=tls is not None, timeout=timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> bool:
        """Write ``data``; ``False`` (and ``peer_gone``) when the server no longer reads."""
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError:  # EPIPE, ECONNRESET, TLS errors, or no progress for ``timeout``
            self.peer_gone = True
            return False
        return True

    def send(self, *frames: Frame | bytes) -> bool:
        """Send ``hyperframe`` frames and/or raw frame bytes in one write."""
        return self.send_bytes(
            b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames)
        )

    def send_frame(
        self, frame_type: int, flags: int, stream_id: int, payload: bytes = b"", **kw: Any
    ) -> bool:
        """Send one hand-built frame (see :func:`frame_bytes` for ``length``/``reserved_bit``)."""
        return self.send_bytes(frame_bytes(frame_type, flags, stream_id, payload, **kw))

    def send_preface(self, settings: Settings | None = None) -> None:
        self.send_bytes(
            PREFACE + frame_bytes(FrameType.SETTINGS, 0, 0, settings_payload(settings or {}))
        )

    def handshake(self, settings: Settings | None = None) -> dict[int, int]:
        """Preface and SETTINGS; wait for the server's SETTINGS and its ACK of ours."""
        self.send_preface(settings)
        self.wait_for(lambda f: False, "the server's SETTINGS and ACK", until=self._settled)
        return self.server_settings

    def _settled(self) -> bool:
        return bool(self.server_settings_seen and self.settings_acks)

    def send_settings(self, settings: Settings) -> bool:
        return self.send_frame(FrameType.SETTINGS, 0, 0, settings_payload(settings))

    def send_ping(self, payload: bytes = b"pingpong", ack: bool = False) -> bool:
        return self.send_frame(FrameType.PING, Flag.ACK if ack else 0, 0, payload)

    def send_rst(self, stream_id: int, code: int = ErrorCodes.CANCEL) -> bool:
        return self.send_frame(FrameType.RST_STREAM, 0, stream_id, struct.pack(">I", code))

    def send_window_update(self, stream_id: int, increment: int) -> bool:
        return self.send_frame(FrameType.WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))

    def send_priority(
        self, stream_id: int, depends_on: int = 0, weight: int = 16, exclusive: bool = False
    ) -> bool:
        payload = priority_payload(depends_on, weight, exclusive)
        return self.send_frame(FrameType.PRIORITY, 0, stream_id, payload)

    def send_goaway(self, last_stream_id: int = 0, code: int = ErrorCodes.NO_ERROR) -> bool:
        return self.send_frame(FrameType.GOAWAY, 0, 0, struct.pack(">II", last_stream_id, code))

    def send_data(self, stream_id: int, data: bytes = b"", end_stream: bool = False) -> bool:
        """One DATA frame, flow control ignored (see :meth:`send_body` for the polite way)."""
        flags = Flag.END_STREAM if end_stream else 0
        return self.send_frame(FrameType.DATA, flags, stream_id, data)

    def request_headers(
        self,
        path: str = "/hello",
        method: str = "GET",
        extra: Sequence[tuple[str, str]] = (),
    ) -> list[tuple[str, str]]:
        """The pseudo-header fields of a request, then ``extra``."""
        return [
            (":method", method),
            (":scheme", self.scheme),
            (":authority", self.authority),
            (":path", path),
            *extra,
        ]

    def encode(self, headers: Iterable[tuple[str | bytes, str | bytes]]) -> bytes:
        """HPACK-encode with this connection's encoder (call only for blocks that get sent)."""
        return self.encoder.encode(list(headers))

    def send_headers(
        self,
        stream_id: int,
        headers: Iterable[tuple[str | bytes, str | bytes]] | bytes,
        *,
        end_stream: bool = True,
        end_headers: bool = True,
        priority: bytes | None = None,
    ) -> bool:
        """A HEADERS frame; ``headers`` is a list of fields or an already encoded block."""
        block = headers if isinstance(headers, bytes) else self.encode(headers)
        flags = (Flag.END_STREAM if end_stream else 0) | (Flag.END_HEADERS if end_headers else 0)
        if priority is not None:
            flags |= Flag.PRIORITY
            block = priority + block
        self._open_stream(stream_id)
        return self.send_frame(FrameType.HEADERS, flags, stream_id, block)

    def send_continuation(self, stream_id: int, block: bytes, end_headers: bool = True) -> bool:
        flags = Flag.END_HEADERS if end_headers else 0
        return self.send_frame(FrameType.CONTINUATION, flags, stream_id, block)

    def _open_stream(self, stream_id: int) -> None:
        if stream_id not in self.stream_windows:
            initial = self.server_settings.get(Setting.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
            self.stream_windows[stream_id] = initial
            self.responses.setdefault(stream_id, Response(stream_id))
        self.next_stream_id = max(self.next_stream_id, stream_id + 2)

    def new_stream_id(self) -> int:
        sid = self.next_stream_id
        self.next_stream_id += 2
        return sid

    def send_body(self, stream_id: int, data: bytes, end_stream: bool = True) -> None:
        """Send ``data`` in DATA frames within the server's windows and frame size."""
        view = memoryview(data)
        max_frame = self.server_settings.get(Setting.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME)
        while True:
            window = min(self.send_window, self.stream_windows.get(stream_id, 0))
            if view and window <= 0:
                self.wait_for(
                    lambda f: isinstance(f, WindowUpdateFrame) and f.stream_id in (0, stream_id),
                    "a WINDOW_UPDATE",
                )
                continue
            chunk = bytes(view[: min(window, max_frame)])
            view = view[len(chunk) :]
            last = end_stream and not view
            if chunk or last:
                self.send_data(stream_id, chunk, end_stream=last)
                self.send_window -= len(chunk)
                self.stream_windows[stream_id] -= len(chunk)
            if not view:
                return

    def send_request(
        self,
        path: str = "/hello",
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        *,
        stream_id: int | None = None,
    ) -> int:
        """Start a request (a body goes out within flow control); returns its stream id."""
        sid = self.new_stream_id() if stream_id is None else stream_id
        fields = self.request_headers(path, method, headers)
        self.send_headers(sid, fields, end_stream=body is None)
        if body is not None:
            self.send_body(sid, body)
        return sid

    def open_stream(
        self, path: str = "/echo", method: str = "POST", headers: Sequence[tuple[str, str]] = ()
    ) -> int:
        """Send request headers without END_STREAM: the stream stays open for DATA."""
        sid = self.new_stream_id()
        self.send_headers(sid, self.request_headers(path, method, headers), end_stream=False)
        return sid

    def request(
        self,
        path: str = "/hello",
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One whole request/response exchange on a new stream."""
        sid = self.send_request(path, method, headers, body)
        return self.read_response(sid, timeout)

    # -- receiving ------------------------------------------------------------------------

    def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame from the server (already applied), ``None`` once it closed.

        Raises ``TimeoutError`` when nothing complete arrives within ``timeout``.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self._parse()
            if frame is not None:
                self._apply(frame)
                self.received.append(frame)
                return frame
            if self.closed:
                return None
            self._fill(deadline)

    def drain(self, wait: float = 0.0) -> None:
        """Read and apply whatever arrives within ``wait`` seconds (at least one poll)."""
        deadline = time.monotonic() + wait
        while not self.closed:
            try:
                self.next_frame(max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                return

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            raise TimeoutError("no frame before the deadline") from None
        except OSError:  # reset, TLS failure: the connection is gone
            data = b""
        if not data:
            self.closed = True
        self._buffer += data

    def _parse(self) -> Frame | None:
        if len(self._buffer) < 9:
            return None
        frame, length = Frame.parse_frame_header(memoryview(bytes(self._buffer[:9])))
        if len(self._buffer) < 9 + length:
            return None
        frame.parse_body(memoryview(bytes(self._buffer[9 : 9 + length])))
        del self._buffer[: 9 + length]
        return frame

    def _apply(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame):
            self._apply_settings(frame)
        elif isinstance(frame, PingFrame):
            if "ACK" in frame.flags:
                self.ping_acks.append(bytes(frame.opaque_data))
            elif self.auto_ack:
                self.send_ping(bytes(frame.opaque_data), ack=True)
        elif isinstance(frame, HeadersFrame | ContinuationFrame):
            self._apply_header_fragment(frame)
        elif isinstance(frame, DataFrame):
            self._apply_data(frame)
        elif isinstance(frame, RstStreamFrame):
            response = self.responses.setdefault(frame.stream_id, Response(frame.stream_id))
            response.reset = frame.error_code
        elif isinstance(frame, GoAwayFrame):
            self.goaway = frame
        elif isinstance(frame, WindowUpdateFrame):
            if frame.stream_id == 0:
                self.send_window += frame.window_increment
            elif frame.stream_id in self.stream_windows:
                self.stream_windows[frame.stream_id] += frame.window_increment

    def _apply_settings(self, frame: SettingsFrame) -> None:
        if "ACK" in frame.flags:
            self.settings_acks += 1
            return
        new_initial = frame.settings.get(Setting.INITIAL_WINDOW_SIZE)
        if new_initial is not None:
            old = self.server_settings.get(Setting.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
            for sid in self.stream_windows:
                self.stream_windows[sid] += new_initial - old
        self.server_settings.update(frame.settings)
        self.server_settings_seen = True
        if self.auto_ack:
            self.send_frame(FrameType.SETTINGS, Flag.ACK, 0)

    def _apply_header_fragment(self, frame: HeadersFrame | ContinuationFrame) -> None:
        if isinstance(frame, HeadersFrame):
            self._block = (frame.stream_id, bytearray(frame.data), "END_STREAM" in frame.flags)
        else:
            assert self._block is not None, "CONTINUATION from the server without HEADERS"
            self._block[1].extend(frame.data)
        if "END_HEADERS" not in frame.flags:
            return
        sid, block, end_stream = self._block
        self._block = None
        fields = [(str(n), str(v)) for n, v in self.decoder.decode(bytes(block))]
        response = self.responses.setdefault(sid, Response(sid))
        status = next((v for n, v in fields if n == ":status"), None)
        if response.status is not None:
            response.trailers = fields
        elif status is not None and status.startswith("1"):
            response.informational.append(fields)
        else:
            response.status = int(status) if status is not None else None
            response.headers = fields
        if end_stream:
            response.ended = True

    def _apply_data(self, frame: DataFrame) -> None:
        response = self.responses.setdefault(frame.stream_id, Response(frame.stream_id))
        response.body.extend(frame.data)
        response.data_frames.append(len(frame.data))
        if "END_STREAM" in frame.flags:
            response.ended = True
        credit = frame.flow_controlled_length
        if self.auto_window and credit:
            update = frame_bytes(FrameType.WINDOW_UPDATE, 0, 0, struct.pack(">I", credit))
            if not response.ended:
                update += frame_bytes(
                    FrameType.WINDOW_UPDATE, 0, frame.stream_id, struct.pack(">I", credit)
                )
            self.send_bytes(update)

    # -- expectations ---------------------------------------------------------------------

    def summary(self, last: int = 12) -> str:
        """The last frames received, for failure messages."""
        seen = [_describe(f) for f in self.received[-last:]]
        if self.closed:
            seen.append("<closed>")
        return ", ".join(seen) or "<nothing>"

    def wait_for(
        self,
        predicate: Callable[[Frame], bool],
        what: str,
        timeout: float | None = None,
        *,
        until: Callable[[], bool] | None = None,
    ) -> Frame | None:
        """Read until ``predicate(frame)`` (or ``until()``) holds; fail on close or timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if until is not None and until():
                return None
            try:
                frame = self.next_frame(max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise AssertionError(
                    f"timed out waiting for {what}; got: {self.summary()}"
                ) from None
            if frame is None:
                raise AssertionError(f"connection closed before {what}; got: {self.summary()}")
            if predicate(frame):
                return frame

    def expect_goaway(
        self, code: int | Collection[int], timeout: float | None = None
    ) -> GoAwayFrame:
        """The next GOAWAY, whose error code must be one of ``code``."""
        frame = self.wait_for(lambda f: isinstance(f, GoAwayFrame), "GOAWAY", timeout)
        assert isinstance(frame, GoAwayFrame)
        assert frame.error_code in _codes(code), (
            f"GOAWAY with {_name(frame.error_code)}, expected {sorted(_codes(code))}"
        )
        return frame

    def expect_close(self, timeout: float | None = None) -> None:
        """Read (and apply) frames until the server closes the connection."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.closed:
            try:
                self.next_frame(max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise AssertionError(
                    f"connection still open after {timeout or self.timeout}s; got: {self.summary()}"
                ) from None

    def expect_connection_error(
        self, code: int | Collection[int], timeout: float | None = None
    ) -> GoAwayFrame:
        """GOAWAY with ``code``, then the connection closes (RFC 9113 §5.4.1)."""
        frame = self.expect_goaway(code, timeout)
        self.expect_close(timeout)
        return frame

    def expect_rst(
        self, stream_id: int, code: int | Collection[int], timeout: float | None = None
    ) -> RstStreamFrame:
        """RST_STREAM on ``stream_id`` with one of ``code``."""
        frame = self.wait_for(
            lambda f: isinstance(f, RstStreamFrame | GoAwayFrame) and f.stream_id in (0, stream_id),
            f"RST_STREAM on stream {stream_id}",
            timeout,
        )
        assert isinstance(frame, RstStreamFrame), f"got {_describe(frame)}, not RST_STREAM"
        assert frame.error_code in _codes(code), (
            f"RST_STREAM with {_name(frame.error_code)}, expected {sorted(_codes(code))}"
        )
        return frame

    def expect_stream_error(
        self,
        stream_id: int,
        code: int | Collection[int],
        timeout: float | None = None,
        *,
        answered_ok: bool = False,
    ) -> Frame:
        """A stream error on ``stream_id``: RST_STREAM with ``code``, or a connection error with
        it (RFC 9113 §5.4.1 lets an endpoint treat any stream error as a connection error).

        An error response on the stream before the reset is allowed (§8.1.1); a successful
        one only with ``answered_ok`` (the error concerns a frame sent after the request).
        """

        def matches(f: Frame) -> bool:
            if isinstance(f, GoAwayFrame):
                return True
            if isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
                return True
            response = self.responses.get(stream_id)
            status = response.status if response is not None else None
            if not answered_ok and status is not None and status < 400:
                raise AssertionError(f"stream {stream_id} was answered {status}")
            return False

        frame = self.wait_for(matches, f"a stream error on stream {stream_id}", timeout)
        assert frame is not None
        error = frame.error_code  # type: ignore[attr-defined]
        assert error in _codes(code), (
            f"{_describe(frame)}: expected one of {[_name(c) for c in sorted(_codes(code))]}"
        )
        return frame

    def expect_settings_ack(self, timeout: float | None = None) -> None:
        before = self.settings_acks
        self.wait_for(
            lambda f: False, "SETTINGS ACK", timeout, until=lambda: self.settings_acks > before
        )

    def ping_roundtrip(self, payload: bytes = b"still-ok", timeout: float | None = None) -> None:
        """Send a PING and wait for its ACK: proves the connection is alive and in sync."""
        assert len(payload) == 8
        self.send_ping(payload)
        self.wait_for(
            lambda f: isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == payload,
            "PING ACK",
            timeout,
        )
        assert self.goaway is None or self.goaway.error_code == 0, self.summary()

    def read_response(self, stream_id: int, timeout: float | None = None) -> Response:
        """Read until the stream ends (END_STREAM or RST_STREAM)."""
        response = self.responses.setdefault(stream_id, Response(stream_id))
        self.wait_for(
            lambda f: False,
            f"the response on stream {stream_id}",
            timeout,
            until=lambda: response.ended or response.reset is not None,
        )
        return response
