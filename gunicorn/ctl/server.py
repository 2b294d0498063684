"""Non-blocking socket servers that live inside the arbiter's loop.

The arbiter waits on :meth:`Endpoint.read_fds` and :meth:`Endpoint.write_fds` together with
its signal pipe, then hands over what is ready. Nothing here ever blocks: sockets are
non-blocking, each connection has a deadline, the number of connections is capped, and a
peer that sends garbage or too much is answered (when possible) and dropped.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from gunicorn.ctl import protocol

#: Connections kept at once per endpoint; a new one then replaces the longest idle.
MAX_CONNECTIONS = 32
_READ_SIZE = 65536


class Connection:
    """One accepted client: bytes in, bytes out, a deadline."""

    __slots__ = ("closing", "deadline", "outbox", "sock", "state")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.outbox = bytearray()
        self.closing = False  # close once the outbox is written
        self.state: Any = None


class Endpoint:
    """A listening socket and its connections; subclasses say what the bytes mean."""

    #: Seconds a connection may stay open without completing a request.
    IDLE_TIMEOUT = 30.0

    def __init__(self, listener: socket.socket, clock: Callable[[], float] = time.monotonic):
        self.listener = listener
        self.clock = clock
        self.connections: dict[int, Connection] = {}

    # -- what the arbiter waits on -----------------------------------------------------------

    def read_fds(self) -> list[int]:
        fds = [self.listener.fileno()] if self.listener.fileno() >= 0 else []
        return fds + [fd for fd, c in self.connections.items() if not c.closing]

    def write_fds(self) -> list[int]:
        return [fd for fd, c in self.connections.items() if c.outbox]

    def owns(self, fd: int) -> bool:
        return fd == self.listener.fileno() or fd in self.connections

    def ready(self, readable: set[int], writable: set[int]) -> None:
        """Serve whatever ``select`` reported, then close connections past their deadline."""
        if self.listener.fileno() in readable:
            self._accept()
        for fd, conn in list(self.connections.items()):
            if fd in readable and not conn.closing:
                self._read(conn)
            if fd in writable and conn.outbox and fd in self.connections:
                self._flush(conn)
        now = self.clock()
        for conn in list(self.connections.values()):
            if conn.deadline <= now:
                self.timed_out(conn)
                self.close(conn)

    # -- connections -----------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(MAX_CONNECTIONS):
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. EMFILE: the next turn tries again
            if len(self.connections) >= MAX_CONNECTIONS:
                # Full: the newcomer wins over whoever has waited longest without a request,
                # so clients that connect and say nothing cannot lock everyone out.
                self.close(min(self.connections.values(), key=lambda c: c.deadline))
            sock.setblocking(False)
            conn = Connection(sock, self.clock() + self.IDLE_TIMEOUT)
            self.connections[sock.fileno()] = conn
            self.opened(conn)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            self.close(conn)
            return
        self.received(conn, data)
        if conn.outbox and conn.sock.fileno() in self.connections:
            self._flush(conn)

    def send(self, conn: Connection, data: bytes, close: bool = False) -> None:
        """Queue ``data``; with ``close`` the connection ends once it is written."""
        conn.outbox += data
        conn.closing = conn.closing or close

    def _flush(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        del conn.outbox[:sent]
        if not conn.outbox and conn.closing:
            self.close(conn)

    def close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        self.connections.pop(fd, None)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def shutdown(self) -> None:
        """Close every connection and the listener."""
        for conn in list(self.connections.values()):
            self.close(conn)
        with contextlib.suppress(OSError):
            self.listener.close()

    def close_in_child(self) -> None:
        """After a fork: drop the descriptors without touching what the master serves."""
        for conn in self.connections.values():
            with contextlib.suppress(OSError):
                conn.sock.close()
        self.connections = {}
        with contextlib.suppress(OSError):
            self.listener.close()

    # -- what subclasses fill in -----------------------------------------------------------

    def opened(self, conn: Connection) -> None:
        pass

    def received(self, conn: Connection, data: bytes) -> None:
        raise NotImplementedError

    def timed_out(self, conn: Connection) -> None:
        pass


class ControlEndpoint(Endpoint):
    """The control socket: framed JSON commands, each answered by ``dispatch``."""

    #: Output a client may leave unread before it is dropped.
    MAX_OUTBOX = 64 * 1024 * 1024

    def __init__(
        self,
        listener: socket.socket,
        dispatch: Callable[[dict[str, Any]], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(listener, clock)
        self.dispatch = dispatch

    def opened(self, conn: Connection) -> None:
        conn.state = protocol.FrameReader()

    def received(self, conn: Connection, data: bytes) -> None:
        reader: protocol.FrameReader = conn.state
        try:
            messages = reader.feed(data)
        except protocol.ProtocolError as exc:
            self._reply(conn, protocol.error(None, str(exc)), close=True)
            return
        for message in messages:
            if isinstance(message, protocol.ProtocolError):
                reply = protocol.error(None, str(message))
            else:
                reply = self.dispatch(message)
            self._reply(conn, reply)
        # A client gets a fresh deadline with each complete request, not with each byte.
        if messages:
            conn.deadline = self.clock() + self.IDLE_TIMEOUT

    def _reply(self, conn: Connection, reply: dict[str, Any], close: bool = False) -> None:
        try:
            frame = protocol.encode(reply)
        except protocol.ProtocolError as exc:
            frame = protocol.encode(protocol.error(reply.get("id"), str(exc)))
        if len(conn.outbox) + len(frame) > self.MAX_OUTBOX:
            self.close(conn)  # it does not read its answers
            return
        self.send(conn, frame, close=close)
