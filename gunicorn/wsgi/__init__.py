"""WSGI (PEP 3333) over the events of the protocol core; knows nothing of sockets."""

from gunicorn.http.errors import ConfigurationProblem
from gunicorn.wsgi.environ import (
    ConnectionEnviron,
    EnvironConfig,
    connection_environ,
    request_environ,
)
from gunicorn.wsgi.filewrapper import FileWrapper
from gunicorn.wsgi.input import WSGIInput
from gunicorn.wsgi.request import RequestInfo
from gunicorn.wsgi.response import ResponseChannel, WSGIResponder, WSGIResponse

__all__ = [
    "ConfigurationProblem",
    "ConnectionEnviron",
    "EnvironConfig",
    "FileWrapper",
    "RequestInfo",
    "ResponseChannel",
    "WSGIInput",
    "WSGIResponder",
    "WSGIResponse",
    "connection_environ",
    "request_environ",
]
