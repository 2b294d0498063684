"""The HTTP/2 driver for blocking sockets: one reader at a time, streams on a pool.

Theory of operation
-------------------
``H2Driver`` owns one client socket that speaks HTTP/2 and the core's ``H2Connection``.
The worker lends it threads (gthread's pool; greenlets work the same way):

* **Reading** is done by whoever holds the connection's *reader role*. A worker thread
  that the poller woke for the socket holds it and calls ``on_readable``: it reads what
  arrived without blocking, feeds the core, hands each new request to ``spawn`` (the
  worker runs it as a task), delivers body pieces and resets to the streams waiting for
  them, writes the core's answers (SETTINGS/PING acks, WINDOW_UPDATE), and gives the
  role back by parking the socket in the poller again.
* **Streams** run the WSGI request cycle on pool threads, concurrently. A stream that
  needs something from the peer (body bytes, flow-control window) waits for it: if no
  one holds the reader role it takes it (``claim``) and reads the socket itself, else it
  waits on the connection's condition, which every reader notifies. So a stream waiting
  for WINDOW_UPDATE blocks only itself, never the other streams nor the PING answers,
  and a single pool thread is enough to serve every stream in turn.
* **Writing**: the core's output is appended to one queue under the connection's lock
  and written in order under a write lock. A response whose remaining body fits in the
  per-stream buffer (``STREAM_BUFFER``) returns its thread at once; the bytes go out as
  the peer opens its window, written by whoever reads the WINDOW_UPDATE.

Deadlines belong to the worker (keep-alive while no stream is open, ``timeout`` while one
is); ``close`` sends GOAWAY and closes. ``shutdown`` (graceful stop, ``max_requests``)
sends GOAWAY naming the last stream taken and closes once those streams are done.
"""

from __future__ import annotations

import _socket
import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn.drivers.blocking import Handoff, reset_on_close
from gunicorn.drivers.h2stream import H2Stream, StreamGone
from gunicorn.http.connection import NEED_DATA
from gunicorn.http.events import (
    ConnectionClosed,
    Request,
)
from gunicorn.lifecycle.logs import log_protocol_error, log_socket_error
from gunicorn.lifecycle.session import Session
from gunicorn.lifecycle.wsgi import run_wsgi

# Bytes read in one turn of the reader before the other connections get a chance (a
# flood of small frames costs one turn's worth of work at a time).
READ_TURN = 16384
# A stream answered faster than this leaves its bytes for the next stream of the same
# batch to write (one write for the batch instead of one per stream).
_COALESCE_SECONDS = 0.001
# How long a waiting stream sleeps on the condition before it looks again.
_WAIT_SLICE = 0.05

# What ``on_readable`` asks of the poller.
WANT_READ = 1
WANT_WRITE = 2
WANT_NOTHING = 4  # parked but not armed: the streams still running will close it
CLOSED = 0

_WOULD_BLOCK_READ = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)
_WOULD_BLOCK_WRITE = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError)


class H2Driver:
    """Serves the HTTP/2 streams of one client socket (see the module docstring).

    ``spawn(tasks)`` runs each ``task()`` on a pool thread; ``claim()`` takes the reader role
    if no one holds it (True) and ``park(want)`` gives it back, asking the poller for
    ``WANT_READ``/``WANT_WRITE``/``WANT_NOTHING``.
    """

    #: Bytes read in one turn (see ``READ_TURN``).
    read_turn = READ_TURN

    def __init__(
        self,
        sock: socket.socket,
        session: Session,
        app: Any,
        *,
        spawn: Callable[[list[Callable[[], None]]], None],
        client_wait: Callable[[bool], None] | None = None,
        claim: Callable[[], bool],
        park: Callable[[int], None],
        timeout: float,
    ) -> None:
        self.sock = sock
        self.session = session
        self.app = app
        self.log = session.log
        self.core: Any = session.h2_connection()
        self.lock = threading.Lock()
        self._progress = threading.Condition(self.lock)
        self._write_lock = threading.Lock()
        # OpenSSL does not let two threads read and write one TLS connection at once: a
        # TLS socket's (non-blocking) recv and send take turns; a plain socket needs none.
        self._io_lock: Any = (
            threading.Lock() if isinstance(sock, ssl.SSLSocket) else contextlib.nullcontext()
        )
        self._out: list[bytes] = []
        self._spawn = spawn
        self._client_wait = client_wait
        self._claim = claim
        self._park = park
        self.timeout = timeout
        self.streams: dict[int, H2Stream] = {}
        self._waiting_tasks = 0  # streams handed to spawn and not started yet
        self.closed = False
        self._eof = False
        self._going_away = False
        self._error_logged = False
        self.last_activity = time.monotonic()
        sock.setblocking(False)

    # -- set-up -------------------------------------------------------------------------------

    def start(self, handoff: Handoff | None = None) -> int:
        """Send our preface (after a 101 for h2c Upgrade) and take what was read already.
        Called by the thread that holds the reader role; returns what ``on_readable`` does."""
        with self.lock:
            if handoff is not None and handoff.request is not None:
                self.core.initiate_upgrade(handoff.settings, handoff.request, handoff.body)
            else:
                self.core.initiate()
            if handoff is not None and handoff.data:
                self.core.receive_data(handoff.data)
            started = self._dispatch()
        self._start_streams(started)
        return self._after_turn()

    # -- reading ------------------------------------------------------------------------------

    def on_readable(self) -> int:
        """Read what arrived (the caller holds the reader role); what to ask the poller."""
        try:
            self._read_available()
        except OSError as exc:
            log_socket_error(self.log, self.session.client_addr, exc)
            self._abort()
        return self._after_turn()

    def _read_available(self) -> None:
        sock = self.sock
        taken = 0
        turn = self.read_turn
        while taken < turn and not self._eof:
            try:
                with self._io_lock:
                    data = sock.recv(turn)
            except _WOULD_BLOCK_READ:
                break
            except ssl.SSLWantWriteError:
                break
            if not data:
                self._eof = True
            taken += len(data)
            with self.lock:
                self.core.receive_data(data)
                started = self._dispatch()
            self._start_streams(started)
            self.last_activity = time.monotonic()

    def _dispatch(self) -> list[H2Stream]:
        """Hand the core's events to the streams (called with the lock held); returns
        the streams of new requests, to start once the lock is released."""
        core = self.core
        streams = self.streams
        started: list[H2Stream] = []
        while True:
            event = core.next_event()
            if event is NEED_DATA:
                break
            kind = type(event)
            if kind is Request:
                stream = H2Stream(self, event)
                streams[stream.stream_id] = stream
                started.append(stream)
            elif kind is ConnectionClosed:
                self._eof = True
                for stream in streams.values():
                    stream._reset = True
                break
            else:
                target = streams.get(event.stream_id)
                if target is not None:
                    target._deliver(event)
        self._out.append(core.data_to_send())
        self._progress.notify_all()
        return started

    def _start_streams(self, started: list[H2Stream]) -> None:
        if started:
            with self.lock:
                self._waiting_tasks += len(started)
            self._spawn([self._task(stream) for stream in started])

    def _task(self, stream: H2Stream) -> Callable[[], None]:
        def run() -> None:
            self._run_stream(stream)

        return run

    def _after_turn(self) -> int:
        """Write what is queued and decide what the poller should watch."""
        try:
            complete = self.flush(block=False)
        except OSError as exc:
            log_socket_error(self.log, self.session.client_addr, exc)
            self._abort()
            return CLOSED
        with self.lock:
            closed = self.closed
        if closed:
            self._release_socket()
            self._log_error()
            return CLOSED
        with self.lock:
            finished = self._eof or self.core.closed or self._going_away
            close = finished and not self.streams
            if close:
                self._mark_closed()
        if close:
            self._release_socket()
            self._log_error()
            return CLOSED
        if self._eof:
            return WANT_NOTHING if complete else WANT_WRITE
        return WANT_READ if complete else WANT_READ | WANT_WRITE

    def _tls_pending(self) -> bool:
        with self._io_lock:
            return bool(self.sock.pending())  # type: ignore[attr-defined]

    def _log_error(self) -> None:
        error = self.core.error
        if error and not self._error_logged:
            self._error_logged = True
            log_protocol_error(self.log, self.session.client_addr, error)

    def wait_for_peer(self, deadline: float) -> None:
        """Block a stream until the peer sent something (or someone else read it)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for the client")
        if self.closed:
            raise StreamGone("the connection is closed")
        if self._claim():
            want = CLOSED
            try:
                if self._wait_readable(min(remaining, 0.5)):
                    self._read_available()
                want = self._after_turn()
            except OSError as exc:
                log_socket_error(self.log, self.session.client_addr, exc)
                self._abort()
            finally:
                if want != CLOSED:
                    self._park(want)
            return
        with self._progress:
            self._progress.wait(_WAIT_SLICE)

    def _wait_readable(self, timeout: float) -> bool:
        if self._eof:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self._tls_pending():
            return True
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        return bool(poller.poll(max(timeout, 0.0) * 1000.0))

    def client_wait(self, waiting: bool) -> None:
        """Tell the worker this thread starts or stops waiting on the client."""
        if self._client_wait is not None:
            self._client_wait(waiting)

    def deadline(self) -> float:
        return time.monotonic() + (self.timeout or 3600.0)

    # -- writing ------------------------------------------------------------------------------

    def queue(self, data: bytes) -> None:
        """Queue bytes of the core in order (called with the lock held)."""
        if data:
            self._out.append(data)

    def flush(self, block: bool = True) -> bool:
        """Write the queued bytes in order; True when nothing is left.

        Without ``block`` nothing waits: what the socket does not take stays queued, and
        when another thread is writing this returns at once (that writer writes what
        was queued before it lets go). With ``block`` the write must end within
        ``timeout``: a client that reads a byte now and then cannot hold the connection
        (and a thread) for ever; past it the connection is closed.
        """
        if not self._write_lock.acquire(blocking=block):
            return False
        try:
            while True:
                with self.lock:
                    if self.closed:
                        if block:
                            raise StreamGone("the connection is closed")
                        return True
                    self._out.append(self.core.data_to_send())
                    pending = b"".join(self._out)
                    self._out.clear()
                if not pending:
                    return True
                if not self._write(pending, block):
                    return False
        finally:
            self._write_lock.release()

    def _write(self, pending: bytes, block: bool) -> bool:
        """(write lock held) Write ``pending``; False when it would block and may not."""
        view = memoryview(pending)
        deadline = time.monotonic() + (self.timeout or 3600.0)
        waiting = False
        try:
            while view:
                try:
                    with self._io_lock:
                        sent = self.sock.send(view)
                except (*_WOULD_BLOCK_WRITE, ssl.SSLWantReadError):
                    sent = 0  # gevent's TLS socket returns 0 instead of raising
                if not sent:
                    if not block:
                        with self.lock:
                            self._out.insert(0, bytes(view))
                        return False
                    if not waiting:
                        waiting = True
                        self.client_wait(True)
                    self._wait_writable(deadline)
                    continue
                view = view[sent:]
        except TimeoutError:
            reset_on_close(self.sock)  # drop what the kernel still holds for this client
            with self.lock:
                self._mark_closed()  # the reader role closes the descriptor
            raise
        finally:
            if waiting:
                self.client_wait(False)
        return True

    def _wait_writable(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out writing to the client")
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLOUT)
        poller.poll(remaining * 1000.0)

    # -- streams ------------------------------------------------------------------------------

    def _run_stream(self, stream: H2Stream) -> None:
        with self.lock:
            self._waiting_tasks -= 1
        started = time.monotonic()
        try:
            run_wsgi(self.session, stream, stream.request, self.app, stream.extra_environ())
        finally:
            with self.lock:
                if not self.closed:
                    self.core.finish_stream(stream.stream_id)
                    self._out.append(self.core.data_to_send())
                self.streams.pop(stream.stream_id, None)
                done = not self.streams and (self._eof or self._going_away or self.core.closed)
            now = time.monotonic()
            # Streams of one batch of requests that are quick to answer go out in one
            # write: the last of the batch writes for all. A stream that took long writes
            # at once, so it holds no other stream's answer back for long.
            if done or not self._waiting_tasks or now - started > _COALESCE_SECONDS:
                with contextlib.suppress(OSError):
                    self.flush(block=True)
            self.last_activity = now
            if done and self._claim():
                # Nobody reads the connection and nothing is left to serve on it.
                want = self._after_turn()
                if want != CLOSED:
                    self._park(want)

    # -- ending -------------------------------------------------------------------------------

    @property
    def going_away(self) -> bool:
        """Whether GOAWAY was sent: no new stream is taken."""
        return self._going_away

    @property
    def active(self) -> bool:
        """Whether streams are still being served."""
        return bool(self.streams)

    def shutdown(self) -> None:
        """Graceful: GOAWAY naming the last stream taken; in-flight streams finish."""
        with self.lock:
            if self._going_away or self.closed:
                return
            self._going_away = True
            self.core.shutdown()
            self._out.append(self.core.data_to_send())
        with contextlib.suppress(OSError):
            self.flush(block=False)

    def close(self) -> None:
        """Close now (GOAWAY first, best effort). The caller holds the reader role."""
        with self.lock:
            if self.closed:
                return
            if not self.core.closed:
                self.core.close()
            self._out.append(self.core.data_to_send())
        with contextlib.suppress(OSError):
            self.flush(block=False)
        self._abort()

    def _abort(self) -> None:
        with self.lock:
            self._mark_closed()
        self._release_socket()

    def _mark_closed(self) -> None:
        """(lock held) Streams still running see ``closed`` and stop; their writes fail
        at once on the shut-down socket."""
        if self.closed:
            return
        self.closed = True
        for stream in self.streams.values():
            stream._reset = True
        self._progress.notify_all()
        shutdown_socket(self.sock)

    def _release_socket(self) -> None:
        """Close the descriptor once no write is under way (a closed descriptor number
        can be reused by the next accepted connection)."""
        with self._write_lock, contextlib.suppress(OSError):
            self.sock.close()


def shutdown_socket(sock: Any, how: int = socket.SHUT_RDWR) -> None:
    """``shutdown(2)`` (both ways by default) on the descriptor of ``sock``. Never the TLS
    layer's shutdown: it drops the TLS state first, and a write racing with it would go
    out unencrypted. (gevent's and eventlet's sockets wrap the real one.)"""
    raw = sock
    for _ in range(4):  # gevent: ._sock; eventlet: .fd, which may wrap another .fd
        if isinstance(raw, _socket.socket):
            with contextlib.suppress(OSError):
                _socket.socket.shutdown(raw, how)
            return
        raw = getattr(raw, "fd", None) or getattr(raw, "_sock", None)


__all__ = ["CLOSED", "WANT_NOTHING", "WANT_READ", "WANT_WRITE", "H2Driver"]
