"""``gunicorn.http.wsgi`` as third-party code knows it, over :mod:`gunicorn.wsgi`.

A face kept out of the protocol core (nothing in the server imports it):

- ``Response``: ``isinstance(resp, Response)`` holds for the ``resp`` that
  ``post_request`` and loggers receive. Its ``default_headers()`` gives the status and
  server lines gunicorn writes first. Configuration files patch it, or replace
  ``Response`` with a subclass, to drop or change the ``Server`` line;
  :func:`server_header_override` reads the result for the server.
- ``FileWrapper``, ``WSGIErrorsWrapper``, ``base_environ`` and ``default_environ``.
"""

from __future__ import annotations

import logging
from abc import ABCMeta
from typing import Any

import gunicorn
from gunicorn import util
from gunicorn.wsgi.errors import WSGIErrors
from gunicorn.wsgi.filewrapper import FileWrapper
from gunicorn.wsgi.response import WSGIResponse

#: The product in the Server header; gunicorn reads this module's ``SERVER`` when a
#: response is made, so a patch of either this name or ``gunicorn.SERVER`` is honoured.
SERVER: str = gunicorn.SERVER
_SERVER_AT_IMPORT = SERVER
#: The Server value the protocol core sends unless told otherwise.
DEFAULT_SERVER = "gunicorn"

__all__ = [
    "FileWrapper",
    "Response",
    "WSGIErrorsWrapper",
    "base_environ",
    "default_environ",
    "server_header_override",
]


class WSGIErrorsWrapper(WSGIErrors):
    """``wsgi.errors``: writes to the streams of the ``gunicorn.error`` logger."""

    __slots__ = ()

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(logging.getLogger("gunicorn.error"))


def base_environ(cfg: Any) -> dict[str, Any]:
    """The environ entries that do not depend on a request."""
    return {
        "wsgi.errors": WSGIErrorsWrapper(cfg),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": cfg.workers > 1,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": gunicorn.SERVER_SOFTWARE,
    }


def default_environ(req: Any, sock: Any, cfg: Any) -> dict[str, Any]:
    """:func:`base_environ` plus the entries taken from the request line of ``req``."""
    environ = base_environ(cfg)
    environ.update(
        {
            "wsgi.input": req.body,
            "gunicorn.socket": sock,
            "REQUEST_METHOD": req.method,
            "QUERY_STRING": req.query,
            "RAW_URI": req.uri,
            "SERVER_PROTOCOL": "HTTP/" + ".".join(str(v) for v in req.version),
        }
    )
    return environ


def _server_name() -> str:
    return SERVER if SERVER != _SERVER_AT_IMPORT else gunicorn.SERVER


class Response(metaclass=ABCMeta):  # noqa: B024 - ABCMeta for register(), not abstract
    """A response as gunicorn's hooks and ``default_headers()`` patches know it."""

    def __init__(self, req: Any, sock: Any, cfg: Any) -> None:
        self.req = req
        self.sock = sock
        self.cfg = cfg
        self.version = _server_name()
        self.status: str | None = None
        self.status_code: int | None = None
        self.chunked = False
        self.must_close = False
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.response_length: int | None = None
        self.sent = 0
        self.upgrade = False

    def force_close(self) -> None:
        self.must_close = True

    def should_close(self) -> bool:
        if self.must_close:
            return True
        req_should_close = getattr(self.req, "should_close", None)
        return bool(req_should_close()) if callable(req_should_close) else False

    def default_headers(self) -> list[str]:
        """The lines gunicorn writes before the application's headers, each ending CRLF."""
        connection = "close" if self.should_close() else "keep-alive"
        if self.upgrade:
            connection = "upgrade"
        major, minor = self.req.version
        lines = [
            f"HTTP/{major}.{minor} {self.status}\r\n",
            f"Server: {self.version}\r\n",
            f"Date: {util.http_date()}\r\n",
            f"Connection: {connection}\r\n",
        ]
        if self.chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        return lines


Response.register(WSGIResponse)


class _ProbeRequest:
    """The request a probe response is made for (what patches of default_headers read)."""

    method = "GET"
    uri = path = "/"
    query = fragment = ""
    version = (1, 1)
    headers: list[tuple[str, str]] = []
    trailers: list[tuple[str, str]] = []
    scheme = "http"
    remote_addr = peer_addr = ("127.0.0.1", 0)

    def should_close(self) -> bool:
        return False


def _probe_lines(response_class: Any) -> list[str]:
    try:
        response = response_class(_ProbeRequest(), None, None)
    except Exception:
        response = response_class.__new__(response_class)
        Response.__init__(response, _ProbeRequest(), None, None)
    response.status = "200 OK"
    response.status_code = 200
    return list(response.default_headers())


def server_header_override() -> str | None:
    """What the current ``Response.default_headers()`` does to the Server line.

    Calls it (on the ``Response`` this module holds now, patched or replaced) for a probe
    response. Returns None when the line is gunicorn's default (or the probe fails, or the
    value is not a valid field value), ``""`` when a patch removed it, else the new value.
    """
    try:
        lines = _probe_lines(Response)
    except Exception:
        return None
    values = []
    for line in lines:
        name, colon, value = str(line).partition(":")
        if colon and name.strip().lower() == "server":
            values.append(value.strip())
    if not values:
        return ""
    value = values[0]
    if value == DEFAULT_SERVER or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return value
