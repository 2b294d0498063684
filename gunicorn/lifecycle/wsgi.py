"""One WSGI request cycle on any stream: HTTP/1.x, uwsgi or an HTTP/2 stream.

``run_wsgi`` builds ``wsgi.input`` and the environ, calls ``pre_request``, runs the
application through the adapter, answers errors the way the stream's protocol answers
them, and writes the access log line and calls ``post_request`` whatever happened.
"""

from __future__ import annotations

import time
import traceback
from datetime import timedelta
from typing import Any

from gunicorn.errors import RequestTimeout
from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import Request
from gunicorn.instrument.metrics import metrics_of
from gunicorn.lifecycle.logs import application_stack, log_rejected, log_socket_error
from gunicorn.lifecycle.session import Session
from gunicorn.lifecycle.stream import StreamIO
from gunicorn.wsgi.environ import request_environ
from gunicorn.wsgi.input import WSGIInput
from gunicorn.wsgi.request import RequestInfo
from gunicorn.wsgi.response import WSGIResponder, WSGIResponse

# uwsgi variables a trusted front server sets for the client it serves.
_UWSGI_ENVIRON = (b"REMOTE_ADDR", b"REMOTE_PORT", b"SERVER_NAME", b"SERVER_PORT")


class Outcome:
    """What the driver must do with the connection after a request cycle.

    ``must_close``: the connection cannot carry another request (an error was answered,
    or the peer is gone). ``body_unread``: the application left part of the request
    body unread (HTTP/1 drains it before closing; HTTP/2 resets the stream).
    """

    __slots__ = ("body_unread", "must_close")

    def __init__(self) -> None:
        self.must_close = False
        self.body_unread = False


def run_wsgi(
    session: Session,
    stream: StreamIO,
    request: Request,
    app: Any,
    extra_environ: dict[str, Any] | None = None,
) -> Outcome:
    """Serve ``request`` with the WSGI application ``app`` over ``stream``."""
    worker = session.worker
    options = session.options
    outcome = Outcome()
    started = time.monotonic()
    metrics = metrics_of(worker)
    http2 = request.version[0] == 2
    metrics.request_started(http2)
    session.served += 1
    worker.count_request()
    if not worker.alive:
        stream.close_after_response()
    responder = WSGIResponder(stream, request.method)
    receive = stream.receive_body
    received = _Received(receive) if request.has_body else None
    if received is not None:
        receive = received.receive
    body = WSGIInput(receive, stream.send_continue, empty=not request.has_body)
    req = RequestInfo(
        request,
        session.client_addr,
        scheme=session.scheme,
        remote_addr=session.remote_addr,
        proxy_protocol_info=session.proxy_dict(),
        req_number=session.served,
        body=body,
    )
    environ: dict[str, Any] = {}
    try:
        environ = _environ(session, request, body, responder)
        if extra_environ:
            environ.update(extra_environ)
        req.scheme = environ["wsgi.url_scheme"]
        pre_request = options.pre_request
        if pre_request is not None:
            pre_request(worker, req)
        responder.run(app, environ)
    except Exception as exc:
        _request_failed(session, stream, outcome, exc, req, responder, body)
    except RequestTimeout as exc:
        _timed_out(session, stream, outcome, exc, req, responder)
        raise
    finally:
        if request.has_body and not body.complete:
            outcome.body_unread = True
        if stream.request_trailers:
            req.set_trailers(stream.request_trailers)
        if stream.body_dropped:
            session.log.debug(
                "Dropped the response body for %s %s: a %d response to %s has no body",
                req.method,
                req.uri,
                responder.response.status_code,
                req.method,
            )
        duration = _after_request(
            session, req, environ or _fallback_environ(session, request), responder, started
        )
        response = responder.response
        metrics.record_request(
            request.method,
            response.status_code or 0,
            duration,
            received.count if received is not None else 0,
            response.sent,
            http2,
        )
    return outcome


class _Received:
    """Counts the request body bytes the application read (for the metrics)."""

    __slots__ = ("_receive", "count")

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self.count = 0

    def receive(self) -> bytes:
        data: bytes = self._receive()
        self.count += len(data)
        return data


def _environ(
    session: Session, request: Request, body: WSGIInput, responder: WSGIResponder
) -> dict[str, Any]:
    options = session.options
    scheme = session.scheme
    if options.uwsgi and request.scheme:
        scheme = request.scheme.decode("ascii")
    environ = request_environ(
        session.connection_environ(),
        request,
        options.environ,
        url_scheme=scheme,
        trusted=session.trusted,
        wsgi_input=body,
        early_hints=responder.early_hints,
    )
    return environ


def uwsgi_environ(uwsgi_vars: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    """The client and server a trusted uwsgi front server names, for the environ."""
    if not uwsgi_vars:
        return None
    extra = {}
    for key in _UWSGI_ENVIRON:
        value = uwsgi_vars.get(key)
        if value:
            extra[key.decode("ascii")] = value.decode("latin-1")
    return extra


def _request_failed(
    session: Session,
    stream: StreamIO,
    outcome: Outcome,
    exc: Exception,
    req: RequestInfo,
    responder: WSGIResponder,
    body: WSGIInput,
) -> None:
    log = session.log
    outcome.must_close = True
    if stream.io_error is not None:
        log_socket_error(log, session.client_addr, stream.io_error)
        return
    failure = body.error
    if failure is not None and not isinstance(failure, ProtocolError):
        # The client went away (or timed out) while the application read the body.
        if isinstance(failure, OSError):
            log_socket_error(log, session.client_addr, failure)
        return
    answer: ProtocolError | LocalProtocolError
    if isinstance(failure, ProtocolError):
        answer = failure
        log_rejected(log, session.client_addr, failure)
    elif isinstance(exc, ProtocolError):
        answer = exc
        log_rejected(log, session.client_addr, exc, req.uri)
    elif isinstance(exc, LocalProtocolError):
        log.error("Invalid response to %s %s: %s", req.method, req.uri, exc)
        answer = LocalProtocolError()
    else:
        log.exception("Error handling request %s", req.uri)
        answer = LocalProtocolError()
    response = responder.response
    if responder.finished or response.headers_sent:
        return
    record_error(response, answer, stream.write_error(answer))


def _timed_out(
    session: Session,
    stream: StreamIO,
    outcome: Outcome,
    exc: RequestTimeout,
    req: RequestInfo,
    responder: WSGIResponder,
) -> None:
    """The request outlived ``timeout``: say where the application was, answer 500."""
    outcome.must_close = True
    where = application_stack(traceback.extract_tb(exc.__traceback__))
    session.log.error(
        "Request %s %s timed out after %ss; the application was at:\n%s",
        req.method,
        req.uri,
        session.options.timeout,
        where,
    )
    response = responder.response
    if responder.finished or response.headers_sent:
        return
    answer = LocalProtocolError()
    record_error(response, answer, stream.write_error(answer))


def record_error(
    response: WSGIResponse, exc: ProtocolError | LocalProtocolError, body_length: int
) -> None:
    """Make the response the access log sees the error response that was sent."""
    response.status = f"{exc.status} {exc.reason}"
    response.status_code = exc.status
    response.headers = []
    response.sent = body_length


def _after_request(
    session: Session,
    req: RequestInfo,
    environ: dict[str, Any],
    responder: WSGIResponder,
    started: float,
) -> float:
    """Write the access log line and run ``post_request``; return the request's duration."""
    options = session.options
    log = session.log
    response = responder.response
    duration = time.monotonic() - started
    if options.log_access:
        request_time = timedelta(seconds=duration)
        try:
            log.access(response, req, environ, request_time)
        except Exception:
            log.exception("Failed to write the access log")
    post_request = options.post_request
    if post_request is not None:
        try:
            post_request(session.worker, req, environ, response)
        except Exception:
            log.exception("Exception in post_request hook")
    return duration


def _fallback_environ(session: Session, request: Request) -> dict[str, Any]:
    """What the access log needs when the full environ could not be built."""
    peer = session.client_addr
    major, minor = request.version
    return {
        "REMOTE_ADDR": str(peer[0]) if isinstance(peer, tuple) else str(peer),
        "REQUEST_METHOD": request.method.decode("latin-1"),
        "RAW_URI": request.target.decode("latin-1"),
        "PATH_INFO": request.path.decode("latin-1"),
        "QUERY_STRING": request.query.decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{major}.{minor}",
    }
