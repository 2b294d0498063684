"""Listening sockets: TCP (IPv4/IPv6), unix (path or abstract) and inherited descriptors.

``create_sockets`` binds every configured address, or wraps descriptors inherited
from a previous master (``GUNICORN_FD``), from systemd (``LISTEN_FDS``) or named
with ``fd://N``. Each listener wraps a ``socket.socket`` and forwards unknown
attributes to it, so code that expects a plain socket (asyncio servers) works.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Iterable
from typing import Any

from gunicorn import osutil

BIND_ATTEMPTS = 5
BIND_RETRY_DELAY = 1.0
# Errors that may clear up by themselves (a previous server still closing, an address
# not configured yet at boot); any other error is reported at once.
_RETRYABLE = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL})


class BindError(Exception):
    """An address could not be bound; the message is the reason shown to the user."""


class BaseSocket:
    """A listening socket and the address it was configured with."""

    FAMILY: int = socket.AF_INET

    def __init__(
        self,
        address: Any,
        conf: Any,
        log: Any,
        fd: int | None = None,
        listen: bool = True,
        inherited: bool = False,
    ) -> None:
        self.cfg_addr = address
        self.conf = conf
        self.log = log
        #: Created by someone else (systemd, ``fd://``): its path is never unlinked by us.
        self.inherited = inherited
        if fd is None:
            sock = socket.socket(self.FAMILY, socket.SOCK_STREAM)
        else:
            sock = socket.socket(fileno=fd)
        try:
            self.sock = self.set_options(sock, bound=fd is not None, listen=listen)
        except BaseException:
            if fd is None:
                sock.close()
            else:
                sock.detach()
            raise

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found on the listener: delegate to the socket.
        if name == "sock":
            raise AttributeError(name)
        return getattr(self.sock, name)

    def __str__(self) -> str:
        return f"<socket {self.sock.fileno()}>"

    def set_options(
        self, sock: socket.socket, bound: bool = False, listen: bool = True
    ) -> socket.socket:
        """Apply socket options, bind when needed, and listen."""
        if not bound:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.conf.reuse_port and hasattr(socket, "SO_REUSEPORT"):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                except OSError as exc:
                    if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL):
                        raise
            self.bind(sock)
        sock.setblocking(False)
        if listen:
            sock.listen(self.conf.backlog)
        return sock

    def bind(self, sock: socket.socket) -> None:
        sock.bind(self.cfg_addr)

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self) -> tuple[socket.socket, Any]:
        return self.sock.accept()

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def close(self) -> None:
        """Close the socket; errors on close are logged, not raised."""
        sock = self.__dict__.get("sock")
        if sock is None:
            return
        try:
            sock.close()
        except OSError as exc:
            self.log.info("Error while closing socket %s", str(exc))


class TCPSocket(BaseSocket):
    FAMILY = socket.AF_INET

    @property
    def _scheme(self) -> str:
        return "https" if getattr(self.conf, "is_ssl", False) else "http"

    def __str__(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{self._scheme}://{host}:{port}"

    def set_options(
        self, sock: socket.socket, bound: bool = False, listen: bool = True
    ) -> socket.socket:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().set_options(sock, bound=bound, listen=listen)


class TCP6Socket(TCPSocket):
    FAMILY = socket.AF_INET6

    def __str__(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{self._scheme}://[{host}]:{port}"


def _is_abstract(path: Any) -> bool:
    return isinstance(path, (str, bytes)) and path[:1] in ("\0", b"\0")


class UnixSocket(BaseSocket):
    """A unix stream socket; the path is bound under ``umask`` and chowned to the worker user."""

    FAMILY = socket.AF_UNIX

    def __init__(
        self,
        address: Any,
        conf: Any,
        log: Any,
        fd: int | None = None,
        listen: bool = True,
        inherited: bool = False,
    ) -> None:
        if isinstance(address, bytes):
            address = address.decode("utf-8", "surrogateescape")
        if fd is None and not _is_abstract(address):
            _remove_stale_socket(address)
        super().__init__(address, conf, log, fd=fd, listen=listen, inherited=inherited)
        #: The inode of our socket file: tells our file from one put there by someone else.
        self.inode = _socket_inode(self.path) if self.path else None

    def __str__(self) -> str:
        if _is_abstract(self.cfg_addr):
            return f"unix:@{self.cfg_addr[1:]}"
        return f"unix:{self.cfg_addr}"

    def bind(self, sock: socket.socket) -> None:
        old_umask = os.umask(self.conf.umask)
        try:
            sock.bind(self.cfg_addr)
        finally:
            os.umask(old_umask)
        if not _is_abstract(self.cfg_addr):
            uid, gid = self.conf.uid, self.conf.gid
            if uid != os.geteuid() or gid != os.getegid():
                osutil.chown(self.cfg_addr, uid, gid)

    @property
    def path(self) -> str | None:
        """The filesystem path, or None for an abstract socket."""
        return None if _is_abstract(self.cfg_addr) else self.cfg_addr

    def path_lost(self) -> bool:
        """True when our path no longer names this socket (removed, or replaced)."""
        if self.path is None or self.inode is None:
            return False
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return True
        except OSError:
            return False  # e.g. a directory we cannot search any more: not known to be lost


def _socket_inode(path: str) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino if stat.S_ISSOCK(st.st_mode) else None


def lost_unix_paths(listeners: Iterable[BaseSocket]) -> list[UnixSocket]:
    """The unix listeners whose socket file was removed or replaced under us."""
    return [lnr for lnr in listeners if isinstance(lnr, UnixSocket) and lnr.path_lost()]


def _remove_stale_socket(path: str) -> None:
    """Remove a leftover socket file nobody listens on; refuse anything else."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise BindError(f"{path!r} is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        osutil.unlink_quietly(path)  # nobody listens: a stale file
        return
    except OSError:
        pass  # e.g. EAGAIN: a listener with a full queue is still a listener
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another server is listening on this socket")


def _sock_type(addr: Any) -> type[BaseSocket]:
    if isinstance(addr, tuple):
        host = addr[0]
        if isinstance(host, str) and ":" in host:
            return TCP6Socket
        return TCPSocket
    if isinstance(addr, (str, bytes)):
        return UnixSocket
    raise TypeError(f"Unable to create socket from: {addr!r}")


def _family_type(family: int) -> type[BaseSocket]:
    if family == socket.AF_UNIX:
        return UnixSocket
    if family == socket.AF_INET6:
        return TCP6Socket
    if family == socket.AF_INET:
        return TCPSocket
    raise BindError(f"unsupported socket family {family}")


def from_fd(
    fd: int, conf: Any, log: Any, listen: bool = True, inherited: bool = True
) -> BaseSocket:
    """Wrap an already bound descriptor (``inherited``: not created by a gunicorn master)."""
    probe = socket.socket(fileno=fd)
    try:
        family, name = probe.family, probe.getsockname()
        if probe.type != socket.SOCK_STREAM:
            raise BindError(f"fd {fd} is not a stream socket")
    finally:
        probe.detach()
    return _family_type(family)(name, conf, log, fd=fd, listen=listen, inherited=inherited)


def _bind(addr: Any, conf: Any, log: Any) -> BaseSocket:
    sock_type = _sock_type(addr)
    shown = _describe(addr)
    for attempt in range(1, BIND_ATTEMPTS + 1):
        try:
            return sock_type(addr, conf, log)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                log.error("Connection in use: %s", shown)
            elif exc.errno == errno.EADDRNOTAVAIL:
                log.error("Invalid address: %s", shown)
            log.error("connection to %s failed: %s", shown, exc)
            if exc.errno not in _RETRYABLE or attempt == BIND_ATTEMPTS:
                break
            log.debug("Retrying in 1 second.")
            time.sleep(BIND_RETRY_DELAY)
    raise BindError(f"Can't connect to {shown}")


def _describe(addr: Any) -> str:
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr).replace("\0", "@")


def check_tls_files(conf: Any) -> None:
    """Fail at startup, not per request, when a configured certificate file is missing."""
    for name in ("certfile", "keyfile"):
        path = getattr(conf, name, None)
        if path and not os.path.exists(path):
            raise BindError(f'{name} "{path}" does not exist')


def create_sockets(
    conf: Any,
    log: Any,
    fds: Iterable[int] | None = None,
    systemd: bool = False,
    addresses: Iterable[Any] | None = None,
) -> list[BaseSocket]:
    """Create the listeners for ``conf.address`` (or ``addresses``).

    ``fds`` are descriptors inherited from a previous master or from systemd
    (``systemd=True``: used as they are, never ``listen()``ed again or unlinked); when
    given they replace the configured binds. Otherwise ``fd://N`` entries are
    wrapped and other addresses are bound, retrying ``BIND_ATTEMPTS`` times.
    Raises :class:`BindError` when an address cannot be used.
    """
    check_tls_files(conf)
    if fds is not None:
        fd_list = list(fds)
        if fd_list:
            return [from_fd(fd, conf, log, listen=not systemd, inherited=systemd) for fd in fd_list]
    listeners: list[BaseSocket] = []
    try:
        for addr in conf.address if addresses is None else addresses:
            if isinstance(addr, int):
                listeners.append(from_fd(addr, conf, log))
            else:
                listeners.append(_bind(addr, conf, log))
    except BaseException:
        close_sockets(listeners, unlink=True)
        raise
    return listeners


def close_sockets(listeners: Iterable[BaseSocket], unlink: bool = True) -> None:
    """Close listeners; with ``unlink`` remove the files of unix sockets we bound."""
    for listener in listeners:
        path = getattr(listener, "path", None) if isinstance(listener, UnixSocket) else None
        inherited = getattr(listener, "inherited", False)
        # Never the file of another server that took the path over meanwhile.
        owned = isinstance(listener, UnixSocket) and not listener.path_lost()
        listener.close()
        if unlink and path and not inherited and owned:
            try:
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    os.unlink(path)
            except OSError:
                pass
