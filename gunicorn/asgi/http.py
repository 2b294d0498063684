"""One ASGI HTTP request cycle over any stream (HTTP/1.1, uwsgi or an HTTP/2 stream).

``HTTPCycle.run`` calls the application with the scope and its own ``receive`` and
``send``; messages become core events on the stream (``gunicorn.asgi.stream``), so the
framing rules (HEAD/1xx/204/304, Content-Length, chunked, trailers) are the core's.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from gunicorn.asgi.access import ResponseInfo, log_response, request_info
from gunicorn.asgi.errors import ClientDisconnected
from gunicorn.asgi.stream import HTTPStream
from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import (
    Data,
    InformationalResponse,
    Request,
    Response,
    Trailers,
)
from gunicorn.lifecycle.logs import log_rejected
from gunicorn.lifecycle.options import DriverOptions
from gunicorn.lifecycle.session import Session

_PATHSEND_CHUNK = 262144


class HTTPCycle:
    """The application's view of one request: ``receive`` and ``send``."""

    __slots__ = (
        "_body_done",
        "_continue",
        "_received",
        "_started_at",
        "_trailers_pending",
        "app",
        "complete",
        "finished",
        "gone",
        "metrics",
        "request",
        "response",
        "scope",
        "session",
        "started",
        "status",
        "stream",
        "task",
    )

    def __init__(
        self,
        session: Session,
        stream: HTTPStream,
        request: Request,
        scope: dict[str, Any],
        app: Any,
        metrics: Any,
    ) -> None:
        self.session = session
        self.metrics = metrics
        metrics.request_started(stream.http_version == "2")
        self.stream = stream
        self.request = request
        self.scope = scope
        self.app = app
        self.started = False  # http.response.start received
        self.complete = False  # the response is complete on the wire
        self.finished = False  # the application returned
        self.gone = False  # the application heard http.disconnect
        self.status = 0
        self._body_done = False  # the application was told the body ended
        self._continue = request.expect_continue
        self._trailers_pending = False
        self._started_at = time.monotonic()
        self._received = 0
        self.response: ResponseInfo | None = None
        self.task: asyncio.Task[None] | None = None

    # -- running the application -----------------------------------------------------------

    async def run(self) -> None:
        """Call the application; answer what it left unanswered; log the request."""
        session = self.session
        options: DriverOptions = session.options
        must_close = False
        try:
            if options.pre_request is not None:
                options.pre_request(session.worker, self._request_info())
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            must_close = not self.complete
            if not self.complete and not self.stream.disconnected:
                session.log.error("ASGI application cancelled: %s", self._uri())
                self._error(LocalProtocolError())
            raise
        except ProtocolError as exc:
            must_close = True
            if not self.started:
                log_rejected(session.log, session.client_addr, exc, self._uri())
                self._error(exc)
        except ClientDisconnected:
            must_close = True
            session.log.debug("ASGI application stopped: the client of %s left", self._uri())
        except Exception:
            must_close = True
            session.log.exception("Exception in ASGI application")
            if not self.started and not self.stream.disconnected:
                self._error(LocalProtocolError())
        else:
            if not self.started:
                must_close = True
                # After http.disconnect (the client left, or its body was refused and
                # answered with an error) there is nothing to answer.
                if not self.stream.disconnected and not self.gone:
                    session.log.error("ASGI callable returned without starting response")
                    self._error(LocalProtocolError())
            elif not self.complete:
                must_close = True
                if not self.stream.disconnected:
                    session.log.error("ASGI callable returned without completing response")
        finally:
            self.finished = True
            if not self.complete:
                # Still the connection's current request (it moves on only once a
                # response is complete): the connection decides what is left to do.
                self._log_request()
                self.stream.cycle_finished(must_close)

    def _error(self, exc: ProtocolError | LocalProtocolError) -> None:
        sent = self.stream.write_error(exc)
        info = self._response_info()
        info.set(exc.status, ())
        info.status = f"{exc.status} {exc.reason}"
        info.sent = sent
        self.status = exc.status

    def _uri(self) -> str:
        return self.request.target.decode("latin-1")

    # -- receive ----------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        stream = self.stream
        if self._body_done or self.complete:
            if not self.complete and not stream.disconnected:
                await stream.wait_disconnect()
            return self._disconnect()
        if stream.disconnected:
            return self._disconnect()
        if not self.request.has_body:
            self._body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if self._continue:
            self._continue = False
            stream.send_continue()
        piece = await stream.receive_body()
        if piece is None:
            return self._disconnect()
        data, more = piece
        self._received += len(data)
        if not more:
            self._body_done = True
        return {"type": "http.request", "body": data, "more_body": more}

    def _disconnect(self) -> dict[str, Any]:
        # From now on a send raises: the application was told the client is gone.
        self.gone = True
        return {"type": "http.disconnect"}

    # -- send -------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        stream = self.stream
        if kind == "http.response.body":
            if not self.started or self.complete:
                self._unexpected(kind)
            if stream.disconnected or self.gone:
                raise ClientDisconnected("the client is gone")
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = bytes(body)
            if not message.get("more_body", False):
                if self._trailers_pending:
                    if body:
                        stream.send(Data(body))
                    return  # the end goes with http.response.trailers
                self._end(body)
                return
            if body:
                stream.send(Data(body))
                if stream.write_paused:
                    await stream.drain()
        elif kind == "http.response.start":
            if self.started:
                self._unexpected(kind)
            status = message["status"]
            if type(status) is not int:
                raise TypeError(f"status must be an int, not {type(status).__name__}")
            headers = message.get("headers", ())
            if type(headers) is not list:
                headers = list(headers)
            self.status = status
            self._trailers_pending = bool(message.get("trailers", False))
            if stream.disconnected or self.gone:
                raise ClientDisconnected("the client is gone")
            # Framed (and checked) now; the bytes leave with the first body bytes.
            stream.send(Response(status, headers))
            self.started = True
            options = self.session.options
            if options.log_access or options.post_request:
                self._response_info().set(status, headers)
        elif kind == "http.response.informational":
            if self.started:
                raise RuntimeError("http.response.informational after http.response.start")
            if stream.disconnected or self.gone:
                raise ClientDisconnected("the client is gone")
            status = message["status"]
            if type(status) is not int or not 100 <= status < 200 or status == 101:
                raise ValueError(f"invalid informational status {status!r}")
            stream.send(InformationalResponse(status, list(message.get("headers", ()))))
        elif kind == "http.response.trailers":
            if not self._trailers_pending or self.complete:
                self._unexpected(kind)
            if stream.disconnected or self.gone:
                raise ClientDisconnected("the client is gone")
            if message.get("more_trailers", False):
                raise ValueError("more_trailers is not supported")
            trailers = list(message.get("headers", ()))
            self._trailers_pending = False
            if trailers and stream.trailers_allowed():
                stream.send(Trailers(trailers))
            self._end()
        elif kind == "http.response.pathsend":
            if not self.started or self.complete:
                self._unexpected(kind)
            if stream.disconnected or self.gone:
                raise ClientDisconnected("the client is gone")
            await self._pathsend(str(message["path"]))
        else:
            self._unexpected(kind)

    def _unexpected(self, kind: str) -> None:
        if self.complete:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} after the response completed")
        raise RuntimeError(f"Unexpected ASGI message {kind!r}")

    def _end(self, body: bytes = b"") -> None:
        """The last body bytes and the end of the response; then the request is over."""
        stream = self.stream
        stream.finish(body)
        self.complete = True
        self._log_request()
        stream.response_complete()

    async def _pathsend(self, path: str) -> None:
        if not os.path.isabs(path):
            raise ValueError("http.response.pathsend needs an absolute path")
        stream = self.stream
        if not await stream.send_file(path):
            loop = asyncio.get_running_loop()
            with open(path, "rb") as file:
                while True:
                    chunk = await loop.run_in_executor(None, file.read, _PATHSEND_CHUNK)
                    if not chunk or stream.disconnected:
                        break
                    stream.send(Data(chunk))
                    if stream.write_paused:
                        await stream.drain()
        self._trailers_pending = False
        if not stream.disconnected:
            self._end()

    # -- logging and hooks ------------------------------------------------------------------

    def _response_info(self) -> ResponseInfo:
        info = self.response
        if info is None:
            info = self.response = ResponseInfo()
        return info

    def _request_info(self) -> Any:
        return request_info(self.session, self.request, self.scope["scheme"])

    def _log_request(self) -> None:
        """The request is over (answered, or its application returned): metrics, the
        access log line, ``post_request``."""
        stream = self.stream
        self.metrics.record_request(
            self.request.method,
            self.status,
            time.monotonic() - self._started_at,
            self._received,
            stream.body_sent(),
            stream.http_version == "2",
        )
        options = self.session.options
        if not options.log_access and options.post_request is None:
            return
        info = self._response_info()
        if not info.status_code and self.status:
            info.set(self.status, ())
        if not info.sent:
            info.sent = self.stream.body_sent()
        log_response(self.session, self.request, self.scope, info, self._started_at)
