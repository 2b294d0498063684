"""The ASGI ``http`` scope of one request, from the core's ``Request`` and the connection.

What is the same for every request of a connection (``client``, ``server``, the scheme of
the transport, ``root_path``, the ``tls`` extension) is computed once, in
``ConnectionScope``; ``http_scope`` adds the request's part.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from gunicorn.http.events import Request
from gunicorn.http.headers import scheme_from_headers

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
_HTTP_VERSIONS = {(1, 1): "1.1", (1, 0): "1.0", (2, 0): "2"}


def address(value: Any) -> tuple[str, int] | None:
    """An ASGI ``client``/``server`` pair: (host, port) for TCP, None for a unix socket."""
    if type(value) is tuple:
        if len(value) == 2 and type(value[0]) is str and type(value[1]) is int:
            return value  # what the socket module gives for IPv4: taken as it is
        if len(value) >= 2:
            return (str(value[0]), int(value[1]))
    elif isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


def decode_path(raw: bytes) -> str:
    """``path``: percent-decoded, then UTF-8 (latin-1 for bytes that are not UTF-8)."""
    if b"%" not in raw:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            pass
    data = unquote_to_bytes(raw) if b"%" in raw else raw
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class ConnectionScope:
    """The parts of a scope that one connection shares between its requests."""

    __slots__ = (
        "client",
        "extensions",
        "raw_root",
        "root_path",
        "scheme",
        "secure_headers",
        "server",
        "state",
        "trusted",
    )

    def __init__(
        self,
        *,
        client: Any,
        server: Any,
        scheme: str,
        root_path: str,
        trusted: bool,
        secure_headers: dict[bytes, bytes] | None,
        state: dict[str, Any] | None,
        extensions: dict[str, Any] | None = None,
        raw_root: bytes | None = None,
    ) -> None:
        self.client = address(client)
        if isinstance(server, str):
            self.server: tuple[str, int | None] | None = (server, None)
        else:
            self.server = address(server)
        self.scheme = scheme
        self.root_path = root_path
        self.raw_root = root_path.encode("utf-8") if raw_root is None else raw_root
        self.trusted = trusted
        self.secure_headers = secure_headers if trusted and secure_headers else None
        self.state = state
        self.extensions = extensions or {}


def http_scope(
    conn: ConnectionScope, request: Request, extensions: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``http`` scope of ``request`` (ASGI 3, HTTP spec 2.4)."""
    scheme = conn.scheme
    headers = request.headers
    if conn.secure_headers is not None:
        announced = scheme_from_headers(headers, conn.secure_headers)
        if announced is not None:
            scheme = announced.decode("ascii")
    version = request.version
    if version == (2, 0) and request.authority is not None:
        # HTTP/2 carries the authority as a pseudo-header: applications read Host.
        for name, _value in headers:
            if name == b"host":
                break
        else:
            headers = [(b"host", request.authority), *headers]
    raw_path = request.path
    path = decode_path(raw_path)
    root = conn.root_path
    if root:
        path = root + path
        raw_path = conn.raw_root + raw_path
    state = conn.state
    if extensions is None:
        extensions = conn.extensions
    elif conn.extensions:
        extensions = {**conn.extensions, **extensions}
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": _HTTP_VERSIONS.get(version) or f"{version[0]}.{version[1]}",
        "method": request.method.decode("ascii"),
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": request.query,
        "root_path": root,
        "headers": headers,
        "client": conn.client,
        "server": conn.server,
        "state": state.copy() if state is not None else {},
        "extensions": extensions,
    }
