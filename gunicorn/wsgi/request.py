"""The ``req`` object server hooks and loggers receive, as gunicorn has always passed it."""

from __future__ import annotations

from typing import Any

from gunicorn.http.events import Request


class RequestInfo:
    """A read-only view of a request head with gunicorn's attribute names.

    ``headers`` is a list of (UPPERCASE name, value) strings; ``uri`` is the raw target;
    ``path`` and ``query`` are still percent-encoded. ``peer_addr`` is the socket peer,
    ``remote_addr`` the client address after a PROXY protocol header (else the peer).
    """

    __slots__ = (
        "_headers",
        "_trailers",
        "body",
        "event",
        "peer_addr",
        "proxy_protocol_info",
        "remote_addr",
        "req_number",
        "scheme",
    )

    def __init__(
        self,
        event: Request,
        peer_addr: Any,
        *,
        scheme: str = "http",
        remote_addr: Any = None,
        proxy_protocol_info: dict[str, Any] | None = None,
        req_number: int = 1,
        body: Any = None,
    ) -> None:
        self.event = event
        self.peer_addr = peer_addr
        self.remote_addr = remote_addr if remote_addr is not None else peer_addr
        self.scheme = scheme
        self.proxy_protocol_info = proxy_protocol_info
        self.req_number = req_number
        self.body = body
        self._headers: list[tuple[str, str]] | None = None
        self._trailers: list[tuple[str, str]] = []

    @property
    def method(self) -> str:
        return self.event.method.decode("latin-1")

    @property
    def uri(self) -> str:
        return self.event.target.decode("latin-1")

    @property
    def path(self) -> str:
        return self.event.path.decode("latin-1")

    @property
    def query(self) -> str:
        return self.event.query.decode("latin-1")

    @property
    def fragment(self) -> str:
        return self.event.fragment.decode("latin-1")

    @property
    def version(self) -> tuple[int, int]:
        return self.event.version

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._headers = _str_headers(self.event.headers)
        return self._headers

    @property
    def trailers(self) -> list[tuple[str, str]]:
        return self._trailers

    def set_trailers(self, trailers: list[tuple[bytes, bytes]]) -> None:
        self._trailers = _str_headers(trailers)

    def __repr__(self) -> str:
        return f"<RequestInfo {self.method} {self.uri} HTTP/{self.version[0]}.{self.version[1]}>"


def _str_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1").upper(), value.decode("latin-1")) for name, value in headers]
