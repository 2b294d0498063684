"""Fake response/request objects and an environ, shaped like the worker's (see COMMON.md)."""

from __future__ import annotations

from typing import Any


class FakeResponse:
    def __init__(
        self,
        status: str = "200 OK",
        sent: int | None = 1234,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.status_code = int(status.split()[0])
        self.sent = sent
        self.headers = headers if headers is not None else [("Content-Type", "text/plain")]


class FakeRequest:
    def __init__(self, headers: list[tuple[str, str]] | None = None) -> None:
        self.headers = headers if headers is not None else [("HOST", "example.com")]
        self.method = "GET"
        self.uri = "/"
        self.path = "/"
        self.query = ""
        self.version = (1, 1)
        self.peer_addr = ("127.0.0.1", 40000)


def make_environ(**overrides: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REMOTE_ADDR": "192.0.2.10",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/items/7?full=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/items/7",
        "QUERY_STRING": "full=1",
        "HTTP_REFERER": "http://example.com/list",
        "HTTP_USER_AGENT": "curl/8.5.0",
    }
    environ.update(overrides)
    return {k: v for k, v in environ.items() if v is not None}
