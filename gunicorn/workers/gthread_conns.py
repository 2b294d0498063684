"""The connections of the threaded worker: accepting them, who owns a parked one, closing.

Accepting stops at ``worker_connections``; a new connection then takes the place of the
oldest one that has not begun a request (``gunicorn.drivers.admission``), and when there is
none the listeners wait until a connection closes. An ``accept()`` that fails for want of
descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses accepting for
``ACCEPT_BACKOFF`` seconds, or until a connection closes and frees a descriptor, instead of
spinning on a listener that stays readable.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from gunicorn.drivers import admission, tls
from gunicorn.drivers.multiplex import H2Driver
from gunicorn.drivers.pollers import READ, WRITE, EpollPoller, SelectorPoller

# Connections accepted per listener event before the listener is re-armed.
ACCEPT_BATCH = 64
# errnos that only mean the client went away.
GONE = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNABORTED})
# accept() failures that do not concern the listener; the last ones need a pause.
ACCEPT_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_TRANSIENT = ACCEPT_EXHAUSTED | {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}
ACCEPT_BACKOFF = 0.5


class Client:
    """One accepted connection and where it stands."""

    __slots__ = ("addr", "deadline", "fd", "handshaking", "http", "idle", "listener", "sock")

    def __init__(self, sock: socket.socket, addr: Any, listener: Any, deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.listener = listener
        self.deadline = deadline
        self.handshaking = False
        self.idle = False  # True between requests (keep-alive deadline), else head deadline
        self.http: Any = None


def kind(client: Client) -> int:
    """Whether a parked connection has begun a request (see ``admission``)."""
    http = client.http
    if http is None:
        return admission.FRESH
    if type(http) is H2Driver:
        return admission.BUSY if http.active or http.closed else admission.KEPT_ALIVE
    if client.idle and not http.head_started and not http.conn.pending_input:
        return admission.KEPT_ALIVE
    return admission.BUSY


def sock_of(client: Client) -> socket.socket:
    return client.sock


class Connections:
    """The accepting and closing half of ``ThreadWorker`` (a mixin: its state lives there)."""

    cfg: Any
    log: Any
    metrics: Any
    alive: bool
    poller: EpollPoller | SelectorPoller | None
    worker_connections: int
    nr_conns: int
    _parked: dict[int, Client]
    _claim_lock: threading.Lock
    _lock: threading.Lock
    _listeners: dict[int, Any]
    _accepting: bool
    _accept_paused: bool
    _accept_retry_at: float
    _header_timeout: float
    _ssl_context: ssl.SSLContext | None
    _h2: set[H2Driver]
    _clock: Callable[[], float]

    # -- who owns a parked connection ------------------------------------------------------
    # A parked connection belongs to the dict; whoever takes it out owns it: pool threads
    # take it by descriptor when the poller reports it, the main loop takes a given one
    # when its deadline passes, an HTTP/2 stream takes its own connection to read from it.
    # Parking (dict and poller together) happens under the same lock, so no one can take
    # and close a connection between the two steps.

    def _claim(self, fd: int) -> Client | None:
        with self._claim_lock:
            return self._parked.pop(fd, None)

    def _claim_client(self, client: Client) -> bool:
        parked = self._parked
        with self._claim_lock:
            if parked.get(client.fd) is client:
                del parked[client.fd]
                return True
        return False

    def _park(self, client: Client, want: int) -> None:
        assert self.poller is not None
        with self._claim_lock:
            self._parked[client.fd] = client
            self.poller.rearm(client.fd, want)
        if self._accept_paused and kind(client) != admission.BUSY:
            # At the cap, a connection just became idle: it can make room for a client
            # waiting in the backlog, so accepting resumes now (not at the next close).
            with self._lock:
                resume = self._accept_paused
                self._accept_paused = False
            if resume:
                self._rearm_listeners()

    # -- accepting -----------------------------------------------------------------------

    def _accept(self, listener: Any) -> None:
        now = self._clock()
        for _ in range(ACCEPT_BATCH):
            if not self._accepting or not self.alive:
                return
            # At the cap, a connection that has not begun a request makes room.
            victim = self._reusable() if self.nr_conns >= self.worker_connections else None
            accepted = None
            try:
                with self._lock:
                    if victim is None and self.nr_conns >= self.worker_connections:
                        self._accept_paused = True  # the next close re-arms the listeners
                        return
                    accepted = self._accept_one(listener, now)
                    if accepted is not None:
                        self.nr_conns += 1
            finally:
                if victim is not None:
                    self._evict(victim, accepted is not None)
            if accepted is None:
                if self._accept_retry_at:
                    return  # backing off: the main loop re-arms the listener
                break
            self.metrics.connection_opened()
            self._start_client(accepted[0], accepted[1], listener, now)
        self._rearm(listener.fileno())

    def _accept_one(self, listener: Any, now: float) -> tuple[socket.socket, Any] | None:
        """(``_lock`` held) One accepted connection, or None when there is none now."""
        while True:
            try:
                return listener.accept()  # type: ignore[no-any-return]
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:
                if exc.errno not in ACCEPT_TRANSIENT:
                    raise
                if exc.errno in ACCEPT_EXHAUSTED:
                    # Out of descriptors or memory: retrying at once would spin.
                    self.log.error("accept() failed (%s); retrying in a while", exc)
                    self._accept_retry_at = now + ACCEPT_BACKOFF
                    return None

    def _reusable(self) -> Client | None:
        """Take (claim) the parked connection to close for a new one, if there is one."""
        with self._claim_lock:
            chosen = admission.choose(self._parked.values(), kind, sock_of)
            if not chosen:
                return None
            del self._parked[chosen[0].fd]
            return chosen[0]

    def _evict(self, client: Client, room_needed: bool) -> None:
        """Close the claimed ``client`` to make room, or park it again if no connection
        came after all (another worker took it)."""
        if not room_needed:
            fresh = client.http is None and not client.handshaking
            self._park(client, READ if fresh else READ | WRITE)  # a spare wake-up is harmless
            return
        self.log.debug("worker_connections reached: closing idle connection from %s", client.addr)
        self._close(client)

    def _rearm(self, fd: int) -> None:
        if self._accepting:
            assert self.poller is not None
            with contextlib.suppress(OSError, ValueError):
                self.poller.rearm(fd, READ)

    def _rearm_listeners(self) -> None:
        for fd in self._listeners:
            self._rearm(fd)

    def _start_client(self, sock: socket.socket, addr: Any, listener: Any, now: float) -> None:
        assert self.poller is not None
        client = Client(sock, addr, listener, now + self._header_timeout)
        want = READ
        try:
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                client.sock = tls.wrap_socket(sock, self._ssl_context, self.cfg)
                client.handshaking = True
                if tls.handshake_on_connect(self.cfg):
                    want = tls.handshake_step(client.sock)
                    client.handshaking = want != 0
                    want = want or READ
            with self._claim_lock:
                self._parked[client.fd] = client
                self.poller.add(client.fd, want)
        except BaseException as exc:
            self._claim_client(client)
            self._drop(client, exc)

    # -- closing ---------------------------------------------------------------------------

    def _drop(self, client: Client, exc: BaseException) -> None:
        """A connection failed outside the driver (TLS handshake, set-up): close it."""
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError)) or (
            isinstance(exc, OSError) and exc.errno in GONE
        ):
            self.log.debug("Connection from %s closed: %s", client.addr, exc)
        elif isinstance(exc, Exception):
            self.log.exception("Error while serving a connection from %s", client.addr)
        self._close_busy(client)
        if not isinstance(exc, Exception):
            raise exc

    def _close(self, client: Client) -> None:
        """Close a parked connection (armed in the poller: forget it there first)."""
        assert self.poller is not None
        self.poller.remove(client.fd)
        self._close_busy(client)

    def _close_busy(self, client: Client) -> None:
        """Close a connection a thread took from the poller. Closing the descriptor takes
        it out of the poller; removing it by number after the close could hit a new
        connection that got the same number."""
        with contextlib.suppress(Exception):
            if client.http is not None:
                client.http.close()
            else:
                client.sock.close()
        self._forget(client)

    def _forget(self, client: Client) -> None:
        """Count a closed connection out; accept again if the cap had paused accepting."""
        http = client.http
        if type(http) is H2Driver:
            self._h2.discard(http)
        self.metrics.connection_closed()
        with self._lock:
            self.nr_conns -= 1
            # A descriptor was freed: accepting may resume (also after EMFILE).
            resume = self._accept_paused or self._accept_retry_at > 0.0
            self._accept_paused = False
            self._accept_retry_at = 0.0
        if resume:
            self._rearm_listeners()


__all__ = ["Client", "Connections", "kind"]
