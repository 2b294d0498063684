"""Small helpers shared by the configuration, the arbiter and the workers.

The module also keeps the helpers third-party code imports from ``gunicorn.util``
(``import_app``, ``parse_address``, ``http_date``, ``write_error``...), with gunicorn's
signatures; the process helpers among them live in :mod:`gunicorn.osutil`.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import inspect
import ipaddress
import os
import re
import time
import urllib.parse
from typing import Any

from gunicorn.osutil import close_on_exec, daemonize, seed, set_non_blocking, set_owner_process

DEFAULT_WORKER = "gunicorn.workers.sync.SyncWorker"

Address = tuple[str, int] | str | int

__all__ = [
    "bytes_to_str",
    "close",
    "close_on_exec",
    "daemonize",
    "getcwd",
    "hop_headers",
    "http_date",
    "import_app",
    "is_hoppish",
    "is_ipv6",
    "load_class",
    "parse_address",
    "seed",
    "set_non_blocking",
    "set_owner_process",
    "split_request_uri",
    "to_bytestring",
    "unquote_to_wsgi_str",
    "write",
    "write_chunk",
    "write_error",
    "write_nonblock",
]

#: Response fields an application may not set: hop-by-hop ones (RFC 9110 §7.6.1) and the
#: two the server writes itself.
hop_headers = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "server",
        "date",
    }
)


class AddressError(RuntimeError, ValueError):
    """A malformed bind address (a RuntimeError as in gunicorn, and a ValueError)."""


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _find_entry_point(dist: str | None, section: str, name: str) -> Any:
    """Load entry point ``name`` of group ``section``, from distribution ``dist`` if given."""
    wanted = _normalize(dist) if dist else None
    import importlib.metadata  # only for a worker class named by its entry point

    for ep in importlib.metadata.entry_points(group=section):
        if ep.name != name:
            continue
        owner = _normalize(ep.dist.name) if ep.dist is not None else None
        if wanted is not None and owner != wanted:
            continue
        return ep.load()
    where = f" in distribution {dist!r}" if dist else ""
    raise LookupError(f"no entry point {name!r} in group {section!r}{where}")


def load_class(
    uri: str | type,
    default: str = DEFAULT_WORKER,
    section: str = "gunicorn.workers",
) -> type:
    """Resolve a class given as an object, a short worker name, ``#name``, ``egg:dist#name``
    or a dotted path ``package.module.Class``.

    Raises RuntimeError with a one-line explanation when the class cannot be found.
    """
    if inspect.isclass(uri):
        return uri
    if not isinstance(uri, str) or not uri.strip():
        raise RuntimeError(f"class uri {uri!r} invalid or not found: expected a string or a class")
    uri = uri.strip()
    if uri.startswith("egg:"):
        dist, _, name = uri[4:].partition("#")
        try:
            obj = _find_entry_point(dist, section, name or "main")
        except Exception as exc:
            raise RuntimeError(f"class uri {uri!r} invalid or not found: {exc}") from exc
        return _as_class(uri, obj)
    target = uri
    if "." not in target and ":" not in target:
        name = target.lstrip("#")
        if section == "gunicorn.workers":
            from gunicorn.config.workers import SUPPORTED_WORKERS

            if name in SUPPORTED_WORKERS:
                target = SUPPORTED_WORKERS[name]
        if "." not in target:
            try:
                obj = _find_entry_point("gunicorn", section, name)
            except Exception as exc:
                raise RuntimeError(f"class uri {uri!r} invalid or not found: {exc}") from exc
            return _as_class(uri, obj)
    module_name, _, class_name = target.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise RuntimeError(
            f"class uri {uri!r} invalid or not found: "
            f"cannot import {module_name!r} ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        return _as_class(uri, getattr(module, class_name))
    except AttributeError as exc:
        raise RuntimeError(
            f"class uri {uri!r} invalid or not found: module {module_name!r} has no {class_name!r}"
        ) from exc


def _as_class(uri: str, obj: Any) -> type:
    if not inspect.isclass(obj):
        raise RuntimeError(f"class uri {uri!r} does not name a class: {obj!r}")
    return obj


def _parse_port(text: str, netloc: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise AddressError(f"{text!r} is not a valid port number in address {netloc!r}")
    return int(text)


def parse_address(netloc: str, default_port: str = "8000") -> Address:
    """Parse a bind address.

    Returns ``(host, port)`` for TCP (``HOST``, ``HOST:PORT``, ``[v6]:PORT``, ``tcp://H:P``),
    the path ``str`` for ``unix:PATH`` / ``unix://PATH`` and the ``int`` fd for ``fd://N``.
    Raises :class:`AddressError` (a RuntimeError and a ValueError) for a malformed address.
    """
    netloc = bytes_to_str(netloc).strip()
    if netloc.startswith("unix:"):
        path = netloc[7:] if netloc.startswith("unix://") else netloc[5:]
        if not path:
            raise AddressError(f"unix socket address {netloc!r} has no path")
        return path
    if netloc.startswith("fd://"):
        fd = netloc[5:]
        if not fd.isdigit():
            raise AddressError(f"{fd!r} is not a valid file descriptor")
        return int(fd)
    if netloc.startswith("tcp://"):
        netloc = netloc[6:]
    if not netloc:
        return "0.0.0.0", _parse_port(str(default_port), netloc)
    if netloc.startswith("["):
        host, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise AddressError(f"malformed IPv6 address {netloc!r}")
        port = rest[1:] if rest else str(default_port)
        return host.lower(), _parse_port(port, netloc)
    if netloc.count(":") > 1:
        raise AddressError(f"IPv6 address {netloc!r} must be written in brackets: [addr]:port")
    host, colon, port = netloc.partition(":")
    return host.lower(), _parse_port(port if colon else str(default_port), netloc)


def is_ipv6(addr: str) -> bool:
    """True when ``addr`` is a literal IPv6 address."""
    try:
        ipaddress.IPv6Address(addr.split("%", 1)[0])
    except ValueError:
        return False
    return True


def bytes_to_str(b: bytes | str) -> str:
    """Decode bytes as latin-1; strings are returned unchanged."""
    if isinstance(b, str):
        return b
    return str(b, "latin-1")


def to_bytestring(value: str | bytes, encoding: str = "utf8") -> bytes:
    """Encode a string; bytes are returned unchanged."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value.encode(encoding)


def getcwd() -> str:
    """The working directory, spelled as ``$PWD`` when that names the same directory.

    Keeps symlinked deploy paths (``/srv/app/current``) stable across re-exec.
    """
    cwd = os.getcwd()
    pwd = os.environ.get("PWD")
    if pwd:
        try:
            a, b = os.stat(pwd), os.stat(cwd)
        except OSError:
            return cwd
        if (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev):
            return pwd
    return cwd


def import_app(module: str) -> Any:
    """Import the application named ``module:callable`` (see gunicorn.app.importer)."""
    from gunicorn.app.importer import import_app as _import_app

    return _import_app(module)


def http_date(timestamp: float | None = None) -> str:
    """``timestamp`` (default: now) as an HTTP date: ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    import email.utils  # imported on first use: it is slow to import

    return email.utils.formatdate(time.time() if timestamp is None else timestamp, usegmt=True)


def is_hoppish(header: str) -> bool:
    """True for a response field an application may not set (see :data:`hop_headers`)."""
    return header.lower().strip() in hop_headers


def split_request_uri(uri: str) -> urllib.parse.SplitResult:
    """Split a request target; a path starting with ``//`` stays a path (not a host)."""
    if uri.startswith("//"):
        parts = urllib.parse.urlsplit("." + uri)
        return parts._replace(path=parts.path[1:])
    return urllib.parse.urlsplit(uri)


def unquote_to_wsgi_str(string: str) -> str:
    """Percent-decode ``string`` into the latin-1 ``str`` WSGI uses for paths."""
    return urllib.parse.unquote_to_bytes(string).decode("latin-1")


def close(sock: Any) -> None:
    """Close ``sock``, ignoring an error."""
    with contextlib.suppress(OSError):
        sock.close()


def write_chunk(sock: Any, data: bytes | str) -> None:
    """Send ``data`` as one HTTP/1.1 chunk."""
    payload = to_bytestring(data, "utf-8")
    sock.sendall(b"%X\r\n%s\r\n" % (len(payload), payload))


def write(sock: Any, data: bytes, chunked: bool = False) -> None:
    """Send ``data`` on ``sock`` (as a chunk when ``chunked``)."""
    if chunked:
        write_chunk(sock, data)
    else:
        sock.sendall(data)


def write_nonblock(sock: Any, data: bytes, chunked: bool = False) -> None:
    """Like :func:`write` with the socket in non-blocking mode for the duration."""
    if sock.gettimeout() == 0.0:
        write(sock, data, chunked)
        return
    sock.setblocking(False)
    try:
        write(sock, data, chunked)
    finally:
        sock.setblocking(True)


def write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Send a complete ``text/html`` error response and ask the client to close."""
    body = (
        f"<html>\n  <head>\n    <title>{reason}</title>\n  </head>\n  <body>\n"
        f"    <h1><p>{reason}</p></h1>\n    {html.escape(mesg)}\n  </body>\n</html>\n"
    )
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    write_nonblock(sock, (head + body).encode("latin-1"))
