"""Config files that hide or change the Server header by patching gunicorn.http.wsgi, as
deployments do, and what :func:`server_header_override` reports to the server for each."""

from __future__ import annotations

from collections.abc import Iterator
from functools import wraps
from typing import Any

import pytest

import gunicorn
from gunicorn.http import wsgi
from gunicorn.wsgi.response import WSGIResponse


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test patches the module as a config file would; undo it afterwards."""
    monkeypatch.setattr(wsgi, "Response", wsgi.Response)
    monkeypatch.setattr(wsgi.Response, "default_headers", wsgi.Response.default_headers)
    monkeypatch.setattr(wsgi, "SERVER", wsgi.SERVER)
    monkeypatch.setattr(gunicorn, "SERVER", gunicorn.SERVER)
    yield


def test_untouched_means_no_override() -> None:
    assert wsgi.server_header_override() is None


def test_default_headers_as_gunicorn_writes_them() -> None:
    class Req:
        version = (1, 0)

        def should_close(self) -> bool:
            return True

    response = wsgi.Response(Req(), None, None)
    response.status = "404 Not Found"
    response.chunked = True
    lines = response.default_headers()
    assert lines[0] == "HTTP/1.0 404 Not Found\r\n"
    assert lines[1] == "Server: gunicorn\r\n"
    assert lines[2].startswith("Date: ") and lines[2].endswith(" GMT\r\n")
    assert lines[3:] == ["Connection: close\r\n", "Transfer-Encoding: chunked\r\n"]


def test_responses_given_to_hooks_are_responses() -> None:
    assert isinstance(WSGIResponse(), wsgi.Response)


def test_wrapped_default_headers_dropping_the_line() -> None:
    # import gunicorn.http.wsgi
    # _orig = gunicorn.http.wsgi.Response.default_headers
    # def _no_server(self):
    #     return [h for h in _orig(self) if not h.lower().startswith("server:")]
    # gunicorn.http.wsgi.Response.default_headers = _no_server
    original = wsgi.Response.default_headers

    def no_server(self: Any) -> list[str]:
        return [h for h in original(self) if not h.lower().startswith("server:")]

    wsgi.Response.default_headers = no_server  # type: ignore[method-assign]
    assert wsgi.server_header_override() == ""


def test_decorator_style_patch() -> None:
    def wrap(func: Any) -> Any:
        @wraps(func)
        def default_headers(*args: Any, **kwargs: Any) -> list[str]:
            return [h for h in func(*args, **kwargs) if not h.startswith("Server: ")]

        return default_headers

    wsgi.Response.default_headers = wrap(wsgi.Response.default_headers)  # type: ignore[method-assign]
    assert wsgi.server_header_override() == ""


def test_subclass_replacing_response() -> None:
    class Response(wsgi.Response):
        def default_headers(self, *args: Any, **kwargs: Any) -> list[str]:
            headers = super().default_headers(*args, **kwargs)
            return [h for h in headers if not h.startswith("Server:")]

    wsgi.Response = Response  # type: ignore[misc]
    assert wsgi.server_header_override() == ""


def test_patch_changing_the_product_name() -> None:
    original = wsgi.Response.default_headers

    def renamed(self: Any) -> list[str]:
        return ["Server: undisclosed\r\n" if h.startswith("Server:") else h for h in original(self)]

    wsgi.Response.default_headers = renamed  # type: ignore[method-assign]
    assert wsgi.server_header_override() == "undisclosed"


def test_patch_reading_the_request_and_should_close() -> None:
    # Swift's middleware drops the Connection line unless the client sent one; it reads
    # self.req.headers and self.should_close(), which a probe response must provide.
    original = wsgi.Response.default_headers

    def swift_like(self: Any) -> list[str]:
        headers = original(self)
        if not any(name == "CONNECTION" for name, _ in self.req.headers) and (
            not self.should_close()
        ):
            headers = [h for h in headers if not h.startswith("Connection:")]
        return headers

    wsgi.Response.default_headers = swift_like  # type: ignore[method-assign]
    assert wsgi.server_header_override() is None


@pytest.mark.parametrize("module", [gunicorn, wsgi])
def test_patched_server_constant(module: Any) -> None:
    module.SERVER = "edge"
    assert wsgi.server_header_override() == "edge"


def test_broken_patch_is_ignored() -> None:
    def broken(self: Any) -> list[str]:
        raise KeyError("oops")

    wsgi.Response.default_headers = broken  # type: ignore[method-assign]
    assert wsgi.server_header_override() is None


def test_value_that_would_split_the_header_is_ignored() -> None:
    def injected(self: Any) -> list[str]:
        return ["HTTP/1.1 200 OK\r\n", "Server: a\nX-Evil: 1\r\n"]

    wsgi.Response.default_headers = injected  # type: ignore[method-assign]
    assert wsgi.server_header_override() is None
