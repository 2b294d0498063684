"""The server side of the WebSocket opening handshake (RFC 6455 §4.2) over a parsed
HTTP/1.1 request: which requests are WebSocket handshakes, whether one is valid, and the
fields of the ``101 Switching Protocols`` that accepts it. The frames that follow are
wsproto's; the HTTP messages are the core's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from gunicorn.http.events import Headers, Request

# RFC 6455 §1.3: the GUID appended to the client's key to derive Sec-WebSocket-Accept.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUPPORTED_VERSION = b"13"

# Fields of the 101 that the server owns: an application's copy is dropped.
_SERVER_OWNED = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
    }
)


def is_websocket_request(request: Request) -> bool:
    """Whether ``request`` asks to switch this HTTP/1.1 connection to a WebSocket
    (RFC 6455 §4.2.1 items 1, 3 and 4; the core keeps ``upgrade`` only when Connection
    lists it)."""
    return (
        request.upgrade == b"websocket" and request.method == b"GET" and request.version >= (1, 1)
    )


@dataclass(frozen=True)
class Refusal:
    """A handshake answered with an HTTP error instead of a WebSocket."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True)
class Handshake:
    """What a valid handshake request offers."""

    key: bytes
    subprotocols: list[str]
    extension_offers: list[tuple[str, list[tuple[str, str | None]]]]


def refusal(status: int, message: str, headers: Headers | None = None) -> Refusal:
    """An HTTP answer with a short text body."""
    body = message.encode("ascii") + b"\n"
    fields = [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"%d" % len(body)),
        *(headers or []),
    ]
    return Refusal(status, fields, body)


def check_handshake(request: Request) -> Handshake | Refusal:
    """Validate a request that ``is_websocket_request`` accepted: a ``Refusal`` (400, or
    426 for a version we do not speak) or what the client offered."""
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[bytes] = []
    extensions: list[bytes] = []
    for name, value in request.headers:
        if name == b"sec-websocket-key":
            keys.append(value)
        elif name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"sec-websocket-protocol":
            protocols.append(value)
        elif name == b"sec-websocket-extensions":
            extensions.append(value)
    # §4.2.2 item 4 / §4.4: an unknown or missing version gets 426 and the versions we speak.
    if len(versions) != 1 or versions[0].strip() != SUPPORTED_VERSION:
        return refusal(
            426,
            "Unsupported WebSocket version: send Sec-WebSocket-Version: 13.",
            [(b"Sec-WebSocket-Version", SUPPORTED_VERSION)],
        )
    if len(keys) != 1 or not _valid_key(keys[0]):
        return refusal(400, "Missing or invalid Sec-WebSocket-Key header.")
    if request.has_body:
        # A body would have to be read before the switch; RFC 6455 handshakes have none.
        return refusal(400, "A WebSocket handshake has no body.")
    subprotocols = [
        item.strip().decode("latin-1")
        for value in protocols
        for item in value.split(b",")
        if item.strip()
    ]
    try:
        offers = [offer for value in extensions for offer in parse_extensions(value)]
    except ValueError:
        offers = []  # an offer we cannot read is an offer we decline
    return Handshake(keys[0], subprotocols, offers)


def _valid_key(key: bytes) -> bool:
    # §4.2.1 item 5: base64 of 16 bytes (24 characters with padding).
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def websocket_scope(http_scope: dict[str, Any], subprotocols: list[str]) -> dict[str, Any]:
    """The websocket scope for the HTTP scope built for the handshake request."""
    scope = dict(http_scope)
    scope.pop("method", None)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if http_scope.get("scheme") in ("https", "wss") else "ws"
    scope["subprotocols"] = subprotocols
    asgi = dict(scope.get("asgi") or {})
    asgi.setdefault("version", "3.0")
    asgi["spec_version"] = "2.4"
    scope["asgi"] = asgi
    extensions = dict(scope.get("extensions") or {})
    for name in ("http.response.trailers", "http.response.pathsend", "http.response.push"):
        extensions.pop(name, None)
    extensions["websocket.http.response"] = {}
    scope["extensions"] = extensions
    return scope


def accept_token(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (RFC 6455 §4.2.2 item 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())


def accept_headers(
    key: bytes,
    subprotocol: str | None,
    extensions: bytes | None,
    app_headers: Headers,
) -> Headers:
    """The fields of the 101 that accepts the handshake: ours, then the application's
    (without the ones the server owns)."""
    headers: Headers = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", accept_token(key)),
    ]
    if subprotocol is not None:
        headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
    if extensions:
        headers.append((b"Sec-WebSocket-Extensions", extensions))
    for name, value in app_headers:
        if name.lower() not in _SERVER_OWNED:
            headers.append((name, value))
    return headers


def parse_extensions(value: bytes) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Sec-WebSocket-Extensions (RFC 6455 §9.1): a list of ``name; param[=value]...``
    where a value may be a quoted string. ValueError when it does not parse."""
    text = value.decode("latin-1")
    offers: list[tuple[str, list[tuple[str, str | None]]]] = []
    for item in _split_outside_quotes(text, ","):
        if not item.strip():
            continue
        parts = _split_outside_quotes(item, ";")
        name = parts[0].strip()
        if not name or '"' in name:
            raise ValueError("extension without a name")
        params: list[tuple[str, str | None]] = []
        for part in parts[1:]:
            param, eq, raw = part.partition("=")
            param = param.strip()
            if not param:
                raise ValueError("empty extension parameter")
            if not eq:
                params.append((param, None))
                continue
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1]
            if not raw or '"' in raw:
                raise ValueError("bad extension parameter value")
            params.append((param, raw))
        offers.append((name, params))
    return offers


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = 0
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    if quoted:
        raise ValueError("unterminated quoted string")
    parts.append(text[start:])
    return parts
