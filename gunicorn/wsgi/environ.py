"""The WSGI environ (PEP 3333) for a request event and the connection it came on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from gunicorn import SERVER_SOFTWARE
from gunicorn.http.errors import ConfigurationProblem
from gunicorn.http.events import Request
from gunicorn.http.headers import scheme_from_headers
from gunicorn.wsgi.filewrapper import FileWrapper

# A peer or listener address as the socket layer gives it: (host, port, ...) for TCP,
# a path (possibly empty) for a unix socket.
Address = tuple[Any, ...] | str | bytes

DEFAULT_SECURE_SCHEME_HEADERS: dict[str, str] = {
    "X-FORWARDED-PROTOCOL": "ssl",
    "X-FORWARDED-PROTO": "https",
    "X-FORWARDED-SSL": "on",
}


@dataclass(frozen=True)
class EnvironConfig:
    """Per-worker environ settings, built once from the configuration.

    ``secure_scheme_headers`` maps lowercase header names to the value meaning https;
    ``forwarder_headers`` holds lowercase names (``_`` kept) that a trusted peer may set
    straight into the environ; ``script_name`` is the ``SCRIPT_NAME`` environment
    variable of the worker.
    """

    errors: Any = None
    multithread: bool = False
    multiprocess: bool = False
    server_software: str = SERVER_SOFTWARE
    secure_scheme_headers: dict[bytes, bytes] = field(default_factory=dict)
    forwarder_headers: frozenset[bytes] = frozenset()
    script_name: str = ""
    file_wrapper: Callable[..., Any] = FileWrapper

    @staticmethod
    def scheme_headers(setting: Mapping[str, str] | None) -> dict[bytes, bytes]:
        """Turn gunicorn's ``secure_scheme_headers`` setting into the form used here."""
        if not setting:
            return {}
        return {
            name.strip().lower().encode("latin-1"): value.strip().encode("latin-1")
            for name, value in setting.items()
        }

    @staticmethod
    def forwarder_names(setting: str | list[str] | tuple[str, ...] | None) -> frozenset[bytes]:
        """Turn gunicorn's ``forwarder_headers`` setting (names or a comma list) into a set."""
        if not setting:
            return frozenset()
        items = setting.split(",") if isinstance(setting, str) else setting
        return frozenset(
            item.strip().lower().encode("latin-1") for item in items if item and item.strip()
        )


def _host_port(value: str, scheme: str) -> tuple[str, str]:
    """Split a Host value into name and port, defaulting the port from the scheme."""
    if value.startswith("["):
        end = value.find("]")
        if end > 0:
            name, rest = value[: end + 1], value[end + 1 :]
            if rest.startswith(":") and rest[1:]:
                return name, rest[1:]
            return name, _default_port(scheme)
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, port
    return value, _default_port(scheme)


def _default_port(scheme: str) -> str:
    return "443" if scheme == "https" else "80"


class ConnectionEnviron:
    """The part of the environ that stays the same for every request of a connection."""

    __slots__ = ("base", "server_from_host")

    def __init__(self, base: dict[str, Any], server_from_host: bool) -> None:
        self.base = base
        # A unix socket has no name or port of its own: they come from Host.
        self.server_from_host = server_from_host


def connection_environ(
    config: EnvironConfig,
    peer: Address,
    server: Address,
    *,
    sock: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> ConnectionEnviron:
    """Environ entries shared by the requests of one connection.

    ``peer`` and ``server`` are the socket addresses (a tuple for TCP, a path for a unix
    socket). ``extra`` (e.g. what a PROXY protocol header says) is applied last, so it
    may replace ``REMOTE_ADDR`` and ``REMOTE_PORT``.
    """
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.errors": config.errors,
        "wsgi.multithread": config.multithread,
        "wsgi.multiprocess": config.multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": config.file_wrapper,
        "wsgi.input_terminated": True,
        "gunicorn.socket": sock,
        "SERVER_SOFTWARE": config.server_software,
    }
    if isinstance(peer, tuple):
        environ["REMOTE_ADDR"] = str(peer[0])
        environ["REMOTE_PORT"] = str(peer[1])
    else:
        environ["REMOTE_ADDR"] = peer.decode("latin-1") if isinstance(peer, bytes) else peer
    if isinstance(server, tuple):
        environ["SERVER_NAME"] = str(server[0])
        environ["SERVER_PORT"] = str(server[1])
        server_from_host = False
    else:
        # Without a Host field, the socket path is all there is to name the server.
        environ["SERVER_NAME"] = server.decode("latin-1") if isinstance(server, bytes) else server
        environ["SERVER_PORT"] = ""
        server_from_host = True
    if extra:
        environ.update(extra)
        if "SERVER_NAME" in extra:
            server_from_host = False
    return ConnectionEnviron(environ, server_from_host)


# Lowercase header name -> environ key, for names seen before (bounded).
_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}
_KEYS_MAX = 1024
_PROTOCOLS = {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0"}


def _environ_key(name: bytes) -> str:
    key = _KEYS.get(name)
    if key is None:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[name] = key
    return key


def decode_path(path: bytes) -> str:
    """Percent-decode a request path into the latin-1 ``str`` WSGI wants."""
    if 37 in path:  # "%" (an int: bytes.__contains__ with bytes is much slower)
        path = unquote_to_bytes(path)
    return path.decode("latin-1")


def request_environ(
    connection: ConnectionEnviron,
    request: Request,
    config: EnvironConfig,
    *,
    url_scheme: str,
    trusted: bool,
    wsgi_input: Any,
    early_hints: Callable[[list[tuple[str, str]]], None] | None = None,
) -> dict[str, Any]:
    """The environ for one request.

    ``url_scheme`` is the scheme of the transport (``https`` over TLS); a trusted peer
    may override it with ``secure_scheme_headers`` (conflicting values raise
    ``InvalidSchemeHeaders``) and set ``forwarder_headers`` straight into the environ.
    Raises ``ConfigurationProblem`` when the path is outside ``SCRIPT_NAME``.
    """
    environ = connection.base.copy()
    if trusted and config.secure_scheme_headers:
        announced = scheme_from_headers(request.headers, config.secure_scheme_headers)
        if announced is not None:
            url_scheme = announced.decode("ascii")
    environ["wsgi.url_scheme"] = url_scheme
    environ["wsgi.input"] = wsgi_input
    environ["wsgi.early_hints"] = early_hints if early_hints is not None else _no_hints
    environ["REQUEST_METHOD"] = request.method.decode("latin-1")
    environ["RAW_URI"] = request.target.decode("latin-1")
    environ["QUERY_STRING"] = request.query.decode("latin-1")
    protocol = _PROTOCOLS.get(request.version)
    if protocol is None:
        major, minor = request.version
        protocol = f"HTTP/{major}.{minor}"
    environ["SERVER_PROTOCOL"] = protocol

    host: str | None = None
    script_name = config.script_name
    forwarded_path: str | None = None
    forwarders = config.forwarder_headers if trusted else frozenset()
    for name, raw_value in request.headers:
        value = raw_value.decode("latin-1")
        if name == b"host":
            host = value
        elif name in forwarders and 95 in name:  # 95 is "_"
            key = name.decode("latin-1").upper()
            if key == "SCRIPT_NAME":
                script_name = value
            elif key == "PATH_INFO":
                forwarded_path = value
            environ[key] = value
            continue
        key = _environ_key(name)
        previous = environ.get(key)
        if previous is not None and key.startswith("HTTP_"):
            value = previous + "," + value
        environ[key] = value
    if host is None and request.authority is not None:
        host = request.authority.decode("latin-1")

    if host and connection.server_from_host:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = _host_port(host, url_scheme)

    if forwarded_path is not None:
        path_info = forwarded_path
    else:
        path_info = decode_path(request.path)
        if script_name:
            if not path_info.startswith(script_name):
                raise ConfigurationProblem(
                    f"request path {path_info!r} does not start with SCRIPT_NAME {script_name!r}"
                )
            path_info = path_info[len(script_name) :]
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path_info
    return environ


def _no_hints(headers: list[tuple[str, str]]) -> None:
    """Early hints where the transport cannot send them: accepted and ignored."""
