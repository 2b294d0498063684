"""One hierarchy of protocol errors. Each class carries the status a server answers with.

``ProtocolError`` subclasses raised while reading a request are the client's fault
(4xx/5xx answered with ``Connection: close``). ``LocalProtocolError`` subclasses are
raised when the application hands the core something that cannot be put on the wire;
the adapter answers 500 if nothing was sent yet, else closes the connection.
The names match gunicorn 27's ``gunicorn.http.errors`` so existing code keeps working.
"""

from __future__ import annotations


class ProtocolError(Exception):
    status: int = 400
    reason: str = "Bad Request"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail or self.reason


# Name kept from gunicorn: code catches ``ParseException`` for every request error.
ParseException = ProtocolError


class NoMoreData(ProtocolError):
    """The peer closed the connection in the middle of a message."""


class InvalidRequestLine(ProtocolError):
    pass


class InvalidRequestMethod(InvalidRequestLine):
    pass


class InvalidHTTPVersion(InvalidRequestLine):
    """The version field is not ``HTTP/<digit>.<digit>``."""


class UnsupportedHTTPVersion(InvalidHTTPVersion):
    """A well-formed version this server does not speak (e.g. HTTP/1.2, HTTP/2.0 in text)."""

    status = 505
    reason = "HTTP Version Not Supported"


class InvalidTarget(InvalidRequestLine):
    """The request target is malformed or not allowed for the method."""


class InvalidHeader(ProtocolError):
    pass


class InvalidHeaderName(InvalidHeader):
    pass


class ObsoleteFolding(InvalidHeader):
    pass


class InvalidTrailer(InvalidHeader):
    pass


class InvalidContentLength(InvalidHeader):
    pass


class InvalidTransferEncoding(InvalidHeader):
    pass


class MissingHost(InvalidHeader):
    pass


class InvalidSchemeHeaders(InvalidHeader):
    pass


class UnsupportedTransferCoding(ProtocolError):
    status = 501
    reason = "Not Implemented"


class InvalidChunkSize(ProtocolError):
    pass


class InvalidChunkExtension(ProtocolError):
    pass


class ChunkMissingTerminator(ProtocolError):
    pass


class LimitRequestLine(ProtocolError):
    status = 414
    reason = "Request-URI Too Long"


class LimitRequestHeaders(ProtocolError):
    status = 431
    reason = "Request Header Fields Too Large"


class InvalidProxyLine(ProtocolError):
    pass


class ForbiddenProxyRequest(ProtocolError):
    status = 403
    reason = "Forbidden"


class InvalidUWSGIHeader(ProtocolError):
    pass


class ForbiddenUWSGIRequest(ProtocolError):
    """A peer outside ``uwsgi_allow_ips`` tried to speak uwsgi."""

    status = 403
    reason = "Forbidden"


class ConfigurationProblem(ProtocolError):
    """The request cannot be mapped with this configuration (e.g. a path outside
    SCRIPT_NAME): the server's fault, answered with 500."""

    status = 500
    reason = "Internal Server Error"


class ExpectationFailed(ProtocolError):
    status = 417
    reason = "Expectation Failed"


class LocalProtocolError(Exception):
    """The application gave the core a response it cannot send (answered with 500)."""

    status: int = 500
    reason: str = "Internal Server Error"


class InvalidResponseHeader(LocalProtocolError):
    pass


class InvalidResponseStatus(LocalProtocolError):
    pass


class ResponseStateError(LocalProtocolError):
    """An event arrived in a state where it is not allowed (e.g. a body before the head)."""
