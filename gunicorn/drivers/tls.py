"""TLS for every worker: the server SSLContext from the settings, socket wrapping, handshakes.

Settings used: ``certfile``, ``keyfile``, ``ca_certs``, ``cert_reqs``, ``ciphers``,
``http_protocols`` (ALPN), ``do_handshake_on_connect``, ``suppress_ragged_eofs`` and the
``ssl_context(config, default_ssl_context_factory)`` hook.

A handshake always runs against a deadline: either :func:`handshake` (blocking, one overall
deadline) or :func:`handshake_step` (non-blocking, for selector loops that keep their own
deadline). A client that connects and stays silent therefore never holds a thread.
"""

from __future__ import annotations

import importlib.util
import selectors
import socket
import ssl
from collections.abc import Callable
from typing import Any

# ALPN identifiers (RFC 7301 registry) for the names used by ``http_protocols``.
ALPN_IDS = {"h1": "http/1.1", "h2": "h2"}

WANT_READ = selectors.EVENT_READ
WANT_WRITE = selectors.EVENT_WRITE

_h2_available: bool | None = None


def h2_available() -> bool:
    """True when the ``h2`` library can be imported (HTTP/2 is then offered in ALPN)."""
    global _h2_available
    if _h2_available is None:
        _h2_available = importlib.util.find_spec("h2") is not None
    return _h2_available


def _protocol_names(value: Any) -> list[str]:
    if not value:
        return ["h1"]
    if isinstance(value, str):
        value = value.split(",")
    return [str(name).strip().lower() for name in value if str(name).strip()]


def alpn_protocols(http_protocols: Any) -> list[str]:
    """ALPN identifiers to advertise for the ``http_protocols`` setting, in its order.

    ``h2`` is offered only when the ``h2`` library is importable; unknown names are skipped.
    """
    offered: list[str] = []
    for name in _protocol_names(http_protocols):
        alpn = ALPN_IDS.get(name)
        if alpn is None or alpn in offered:
            continue
        if name == "h2" and not h2_available():
            continue
        offered.append(alpn)
    return offered


def _setting(cfg: Any, name: str, default: Any = None) -> Any:
    return getattr(cfg, name, default)


def default_context(cfg: Any, *, http2: bool = True) -> ssl.SSLContext:
    """The server context gunicorn builds before the ``ssl_context`` hook sees it.
    ``http2`` False keeps ``h2`` out of ALPN (for workers that cannot serve it)."""
    context = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=_setting(cfg, "ca_certs") or None
    )
    certfile = _setting(cfg, "certfile")
    keyfile = _setting(cfg, "keyfile")
    if certfile or keyfile:
        context.load_cert_chain(certfile=certfile or keyfile, keyfile=keyfile or None)
    context.verify_mode = ssl.VerifyMode(int(_setting(cfg, "cert_reqs", 0) or 0))
    ciphers = _setting(cfg, "ciphers")
    if ciphers:
        context.set_ciphers(ciphers)
    alpn = alpn_protocols(_setting(cfg, "http_protocols"))
    if not http2:
        alpn = [name for name in alpn if name != "h2"]
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def ssl_context(cfg: Any, *, http2: bool = True) -> ssl.SSLContext:
    """Build the server SSLContext: the default one, passed through the ``ssl_context`` hook."""

    def factory() -> ssl.SSLContext:
        return default_context(cfg, http2=http2)

    hook: Callable[[Any, Callable[[], ssl.SSLContext]], ssl.SSLContext] | None = _setting(
        cfg, "ssl_context"
    )
    if hook is None:
        return factory()
    return hook(cfg, factory)


def wrap_socket(sock: socket.socket, context: ssl.SSLContext, cfg: Any) -> ssl.SSLSocket:
    """Wrap an accepted socket on the server side without handshaking yet.

    The handshake is left to :func:`handshake` or :func:`handshake_step` so it always has a
    deadline; ``do_handshake_on_connect`` tells drivers whether to run it right after
    accepting (True) or once the client has sent something (False).
    """
    return context.wrap_socket(
        sock,
        server_side=True,
        do_handshake_on_connect=False,
        suppress_ragged_eofs=bool(_setting(cfg, "suppress_ragged_eofs", True)),
    )


def handshake_on_connect(cfg: Any) -> bool:
    """The ``do_handshake_on_connect`` setting."""
    return bool(_setting(cfg, "do_handshake_on_connect", False))


def handshake(sock: ssl.SSLSocket, timeout: float | None) -> None:
    """Complete the server handshake within ``timeout`` seconds in total.

    Raises ``TimeoutError`` when the deadline passes, ``ssl.SSLError`` or ``OSError`` when the
    handshake fails. The socket's own timeout is restored afterwards.
    """
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        # CPython runs the whole handshake against one deadline computed from the timeout.
        sock.do_handshake()
    finally:
        sock.settimeout(previous)


def handshake_step(sock: ssl.SSLSocket) -> int:
    """Advance the handshake on a non-blocking socket.

    Returns 0 when it is complete, else ``WANT_READ`` or ``WANT_WRITE``: the selector event
    to wait for before calling again. Raises ``ssl.SSLError`` or ``OSError`` on failure.
    """
    try:
        sock.do_handshake()
    except ssl.SSLWantReadError:
        return WANT_READ
    except ssl.SSLWantWriteError:
        return WANT_WRITE
    return 0


def negotiated_protocol(sock: socket.socket) -> str:
    """``"h2"`` when ALPN selected HTTP/2 on this socket, else ``"h1"``."""
    if isinstance(sock, ssl.SSLSocket) and sock.selected_alpn_protocol() == "h2":
        return "h2"
    return "h1"


def peer_certificate(sock: socket.socket) -> dict[str, Any] | None:
    """The verified client certificate (as ``SSLSocket.getpeercert()`` gives it), if any."""
    if isinstance(sock, ssl.SSLSocket):
        return sock.getpeercert() or None
    return None
