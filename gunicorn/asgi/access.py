"""The access log line and the ``pre_request``/``post_request`` hooks of an ASGI
exchange (an HTTP request or a WebSocket session), with gunicorn's objects."""

from __future__ import annotations

import time
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from gunicorn.http.events import Request
from gunicorn.lifecycle.session import Session

_REASONS: dict[int, str] = {}


class ResponseInfo:
    """The response as the access log and ``post_request`` see it (gunicorn's names)."""

    __slots__ = ("headers", "sent", "status", "status_code")

    def __init__(self) -> None:
        self.status_code = 0
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.sent = 0

    def set(self, status: int, headers: Any) -> None:
        self.status_code = status
        reason = _REASONS.get(status)
        if reason is None:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = ""
            _REASONS[status] = reason
        self.status = f"{status} {reason}".rstrip()
        self.headers = [
            (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
            for name, value in headers
        ]


def request_info(session: Session, request: Request, scheme: str) -> Any:
    """gunicorn's request object (``req`` of the hooks and the access log)."""
    from gunicorn.wsgi.request import RequestInfo

    return RequestInfo(
        request,
        session.client_addr,
        scheme=scheme,
        remote_addr=session.remote_addr,
        proxy_protocol_info=session.proxy_dict(),
        req_number=session.served,
    )


def log_environ(session: Session, request: Request, scope: dict[str, Any]) -> dict[str, Any]:
    """A WSGI-style environ for the access log's atoms (``%({name}e)s`` included)."""
    from gunicorn.wsgi.environ import request_environ

    try:
        environ = request_environ(
            session.connection_environ(),
            request,
            session.options.environ,
            url_scheme=scope["scheme"],
            trusted=False,
            wsgi_input=None,
        )
    except Exception:
        environ = {
            "REQUEST_METHOD": request.method.decode("latin-1"),
            "RAW_URI": request.target.decode("latin-1"),
            "PATH_INFO": scope["path"],
            "QUERY_STRING": request.query.decode("latin-1"),
        }
    environ["SERVER_PROTOCOL"] = "HTTP/" + scope["http_version"]
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    return environ


def log_response(
    session: Session,
    request: Request,
    scope: dict[str, Any],
    info: ResponseInfo,
    started: float,
) -> None:
    """Write the access log line and call ``post_request`` (each only when in use)."""
    options = session.options
    if not options.log_access and options.post_request is None:
        return
    req = request_info(session, request, scope["scheme"])
    environ = log_environ(session, request, scope)
    log = session.log
    if options.log_access:
        elapsed = timedelta(seconds=time.monotonic() - started)
        try:
            log.access(info, req, environ, elapsed)
        except Exception:
            log.exception("Failed to write the access log")
    if options.post_request is not None:
        try:
            options.post_request(session.worker, req, environ, info)
        except Exception:
            log.exception("Exception in post_request hook")


def log_exchange(
    session: Session,
    request: Request,
    scope: dict[str, Any],
    status: int,
    headers: list[tuple[bytes, bytes]],
    sent: int,
    started: float,
) -> None:
    """``log_response`` for an exchange that ended with ``status`` (a WebSocket)."""
    options = session.options
    if not options.log_access and options.post_request is None:
        return
    info = ResponseInfo()
    info.set(status, headers)
    info.sent = sent
    log_response(session, request, scope, info, started)
