"""The threaded worker (``-k gthread``): a pool of threads serving kept-alive connections.

Theory of operation
-------------------
Every socket the worker owns (listeners and client connections) sits in one poller in
*one-shot* mode: when it becomes ready it is reported to exactly one thread and stays
silent until that thread re-arms it. The ``threads`` pool threads take turns waiting on the
poller (leader/followers); a thread that gets a ready socket serves it directly, so no
request is handed from thread to thread and no future or queue is involved:

* a listener: accept new connections (up to ``worker_connections``, see
  ``gthread_conns``), park them, re-arm it;
* a TLS connection still in its handshake: advance the handshake without blocking;
* a client: read what has arrived without blocking; when a whole request head is there,
  serve it (the body and the response may block, bounded by ``timeout``), then serve any
  pipelined request already buffered, and park the connection again.

A connection is parked with a deadline: ``keepalive`` seconds while idle between requests,
``timeout`` seconds from its arrival (or from the first byte of a later request) to a
complete request head, TLS handshake included. A thread never waits on a client that has
not sent a whole request head, so silent or trickling clients cost a descriptor and no
thread.

The main thread runs the worker's own loop: it wakes on signals and a few times a second to
close parked connections past their deadline and to write the heartbeat. The heartbeat is
only written while the pool makes progress (a thread is free or a request finished since
the last beat): a worker whose threads are all stuck goes silent and the arbiter's
``timeout`` replaces it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import ssl
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from gunicorn.drivers import multiplex, tls
from gunicorn.drivers.blocking import CLOSED, NEED_DATA, SWITCH_H2, BlockingHTTPConnection, Handoff
from gunicorn.drivers.multiplex import H2Driver
from gunicorn.drivers.pollers import READ, WRITE, EpollPoller, SelectorPoller, make_poller
from gunicorn.errors import RequestTimeout
from gunicorn.http.errors import LocalProtocolError
from gunicorn.lifecycle.logs import application_stack
from gunicorn.lifecycle.options import DriverOptions, worker_options
from gunicorn.lifecycle.session import Session
from gunicorn.workers import base
from gunicorn.workers.gthread_conns import Client, Connections

# How often the main loop wakes to sweep deadlines and beat the heart (seconds).
_TICK = 0.5
# How long a pool thread waits on the poller before it looks at the shutdown flag.
_POLL_WAIT = 0.5
# How long a thread that was sent RequestTimeout may take to leave the application.
_ABORT_GRACE = 1.0
# How long a stopping worker keeps idle keep-alive connections open to answer a request
# that was already on its way (with Connection: close).
_LINGER = 2.0


# ------------------------------------------------------------------------ connections


class _Slot:
    """What one pool thread is doing, for the heartbeat (written by that thread only)."""

    __slots__ = ("aborted", "busy", "client", "extra", "ident", "served", "started", "waiting")

    def __init__(self, extra: bool = False) -> None:
        self.extra = extra  # a stand-in for a thread that waits on its client
        self.waiting = False  # waiting on a slow client (with its own deadline)
        self.busy = False
        self.served = 0
        self.client: Client | None = None
        self.ident = 0  # the thread's identifier
        self.started = 0.0  # when the current request (or task) began
        self.aborted = 0.0  # when RequestTimeout was sent to the thread, 0.0 if not


# ----------------------------------------------------------------------------- worker


class ThreadWorker(Connections, base.Worker):
    """Serves HTTP/1.x and HTTP/2 with ``threads`` threads and up to
    ``worker_connections`` clients."""

    wsgi_multithread = True
    supports_http2 = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_connections: int = self.cfg.worker_connections
        self.max_keepalived: int = self.cfg.worker_connections - self.cfg.threads
        self.nr_conns = 0
        self.poller: EpollPoller | SelectorPoller | None = None
        self._parked: dict[int, Client] = {}
        self._claim_lock = threading.Lock()
        self._listeners: dict[int, Any] = {}
        self._lock = threading.Lock()  # nr_conns, accept state, request count
        self._accepting = True
        self._accept_paused = False
        self._accept_retry_at = 0.0
        self._serving = True
        self._slots: list[_Slot] = []
        self._threads: list[threading.Thread] = []
        self._last_served = -1
        self._ssl_context: ssl.SSLContext | None = None
        self._options: DriverOptions | None = None
        self._keepalive = float(self.cfg.keepalive or 0)
        self._header_timeout = float(self.cfg.timeout or 30)
        self._clock = time.monotonic
        # HTTP/2 streams waiting for a pool thread, and the pipe that wakes one.
        self._tasks: deque[Callable[[], None]] = deque()
        self._wake_r = self._wake_w = -1
        self._idle = 0  # pool threads waiting on the poller
        self._pool_size = max(1, int(self.cfg.threads))
        self._max_stand_ins = 2 * self._pool_size + 2
        self._slot_of: dict[int, _Slot] = {}
        self._idle_lock = threading.Lock()
        self._h2: set[H2Driver] = set()

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        if cfg.keepalive and cfg.worker_connections - cfg.threads <= 0:
            log.warning(
                "No keepalived connections can be handled. "
                "Check the number of worker connections and threads."
            )

    def init_process(self) -> None:
        self.poller = make_poller()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        if self.cfg.is_ssl:
            self._ssl_context = tls.ssl_context(self.cfg)
        super().init_process()

    def count_request(self) -> None:
        with self._lock:
            super().count_request()
            if not self.alive:
                self._accepting = False  # max_requests: not one connection more

    # -- the worker's own loop -------------------------------------------------------------

    def run(self) -> None:
        # Built after post_worker_init: a hook may patch the Server header there.
        self._options = worker_options(self)
        poller = self.poller
        assert poller is not None
        for listener in self.sockets:
            listener.setblocking(False)
            self._listeners[listener.fileno()] = listener
            poller.add(listener.fileno(), READ)
        poller.add(self._wake_r, READ)
        for _ in range(self._pool_size):
            self._start_thread(extra=False)
        # A quick stop (QUIT, INT) or an abort leaves through SystemExit from the signal
        # handler, without the graceful part.
        while self.alive:
            self._beat()
            now = self._clock()
            self._close_expired(now)
            self._watch_requests(now)
            if self._accept_retry_at and now >= self._accept_retry_at:
                self._accept_retry_at = 0.0
                self._rearm_listeners()
            if self.parent_changed():
                self.log.info("Parent changed, shutting down: %s", self)
                self.alive = False
                break
            self._sleep(_TICK)
        self._graceful_stop()

    def _sleep(self, seconds: float) -> None:
        """Wait for a signal (the base class points the wakeup fd at ``PIPE``) or a tick."""
        if not self.PIPE:
            time.sleep(seconds)
            return
        try:
            ready, _, _ = select.select([self.PIPE[0]], [], [], seconds)
        except InterruptedError:
            return
        if ready:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while os.read(self.PIPE[0], 4096):
                    pass

    def _start_thread(self, extra: bool) -> None:
        slot = _Slot(extra)
        thread = threading.Thread(
            target=self._pool_thread, args=(slot,), name=f"gthread-{len(self._threads)}"
        )
        thread.daemon = True
        with self._lock:
            self._slots.append(slot)
            self._threads.append(thread)
        thread.start()

    def client_wait(self, waiting: bool) -> None:
        """A pool thread starts (True) or stops waiting on a slow client: while it waits,
        a stand-in thread keeps the pool at ``threads`` (up to ``_MAX_STAND_INS``), so
        slow readers and uploads do not take the worker's capacity."""
        slot = self._slot_of.get(threading.get_ident())
        if slot is None or slot.waiting == waiting:
            return
        start = False
        with self._lock:
            slot.waiting = waiting
            if waiting:
                working = sum(1 for s in self._slots if not s.waiting)
                extras = sum(1 for s in self._slots if s.extra)
                start = working < self._pool_size and extras < self._max_stand_ins
        if start:
            self._start_thread(extra=True)

    def _surplus(self, slot: _Slot) -> bool:
        """Whether this idle stand-in is no longer needed (it then leaves the pool)."""
        with self._lock:
            working = sum(1 for s in self._slots if not s.waiting)
            if working <= self._pool_size:
                return False
            self._slots.remove(slot)
            self._slot_of.pop(slot.ident, None)
            return True

    def _beat(self) -> None:
        """Heartbeat, unless every thread is busy and none finished since the last beat
        (a thread waiting on a client is not stuck: it has its own deadline)."""
        served = 0
        free = False
        for slot in list(self._slots):
            served += slot.served
            free = free or not slot.busy or slot.waiting
        if free or served != self._last_served:
            self._last_served = served
            self.notify()

    def _watch_requests(self, now: float) -> None:
        """A request running longer than ``timeout`` gets ``RequestTimeout`` raised in its
        thread: the request cycle answers 500 (if no byte was sent) and logs where the
        application was. A thread blocked outside Python cannot take it: a second later
        its stack is logged from here, its client answered and the worker retired (the
        arbiter starts a fresh one; the stuck thread ends with this process)."""
        limit = float(self.cfg.timeout or 0)
        if limit <= 0:
            return
        for slot in list(self._slots):
            if not slot.busy or slot.waiting:
                continue
            if not slot.aborted:
                if now - slot.started > limit:
                    slot.aborted = now
                    _raise_in_thread(slot.ident, RequestTimeout)
            elif now - slot.aborted > _ABORT_GRACE and self.alive:
                self._stuck(slot, limit)

    def _stuck(self, slot: _Slot, limit: float) -> None:
        frame = sys._current_frames().get(slot.ident)
        where = application_stack(traceback.extract_stack(frame)) if frame else "  (unknown)"
        self.log.error(
            "A request timed out after %ss and its thread is blocked; it was at:\n%s",
            limit,
            where,
        )
        client = slot.client
        if client is not None and type(client.http) is BlockingHTTPConnection:
            client.http.abort(LocalProtocolError())
        self.log.info("Retiring this worker to get its thread back")
        self.alive = False
        self.metrics.exiting_because("timeout")

    def _close_expired(self, now: float) -> None:
        for client in list(self._parked.values()):
            http = client.http
            if type(http) is H2Driver:
                # Not the deadline set at parking: the streams running then may have
                # ended since. While streams run, the connection lives as long as they
                # make progress; once none runs, for the keep-alive time.
                limit = self._header_timeout if http.active else self._keepalive
                if http.last_activity + limit > now:
                    continue
            elif client.deadline > now:
                continue
            if self._claim_client(client):
                self._close(client)

    def _graceful_stop(self) -> None:
        """Stop accepting at once; finish every request already received, answered with
        ``Connection: close`` (HTTP/2: GOAWAY, in-flight streams finish); keep idle
        keep-alive connections for ``_LINGER`` seconds so that a request already on its
        way is answered instead of meeting a closed socket, then close them; give busy
        threads up to ``graceful_timeout``."""
        self._accepting = False
        poller = self.poller
        assert poller is not None
        for fd in self._listeners:
            poller.remove(fd)
        with self._lock:  # no pool thread is in accept() meanwhile
            # New clients are refused from now on, not queued behind a worker that will
            # not accept them.
            for listener in self._listeners.values():
                listener.close()
        for slot in list(self._slots):
            # A response not started yet announces the close; one whose head went out
            # keeps its keep-alive, and the next request there is answered with close.
            client = slot.client
            if client is not None and type(client.http) is BlockingHTTPConnection:
                client.http.close_after_response()
        for driver in list(self._h2):
            driver.shutdown()
        now = self._clock()
        deadline = now + float(self.cfg.graceful_timeout)
        linger_until = min(now + _LINGER, deadline)
        while True:
            now = self._clock()
            if now >= linger_until:
                self._retire_idle()
            # A thread stuck past its timeout is not waited for: it ends with the process.
            busy = self._tasks or any(slot.busy and not slot.aborted for slot in list(self._slots))
            if now >= linger_until and not busy and not self._parked_with_work():
                break
            if now >= deadline:
                break
            self.notify()
            time.sleep(0.05)
        self._serving = False
        self._close_parked()
        for thread in list(self._threads):
            thread.join(max(0.0, min(_POLL_WAIT * 2, deadline - self._clock())))

    def _parked_with_work(self) -> bool:
        """Parked connections that still have something to answer."""
        for client in list(self._parked.values()):
            http = client.http
            if type(http) is H2Driver:
                if http.active:
                    return True
            elif not client.handshaking and _has_input(client.sock):
                return True
        return False

    def _retire_idle(self) -> None:
        """Close parked connections idle between requests (those whose next request has
        arrived are left to the pool threads, which answer it with ``Connection: close``)."""
        for client in list(self._parked.values()):
            http = client.http
            if type(http) is H2Driver:
                idle = not http.active
            else:
                idle = client.handshaking or not _has_input(client.sock)
            if idle and self._claim_client(client):
                self._close(client)

    def _close_parked(self) -> None:
        for client in list(self._parked.values()):
            if self._claim_client(client):
                self._close(client)

    # -- tasks -----------------------------------------------------------------------------

    def _spawn(self, tasks: list[Callable[[], None]]) -> None:
        """Run each task on a pool thread. The thread that spawns them takes them too
        once it is free, so a waiting thread is woken only to share them."""
        self._tasks.extend(tasks)
        if self._idle:
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            os.write(self._wake_w, b"x")

    def _woken(self) -> None:
        assert self.poller is not None
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            os.read(self._wake_r, 4096)
        self.poller.rearm(self._wake_r, READ)

    def _run_task(self, slot: _Slot, task: Callable[[], None]) -> None:
        if self._tasks and self._idle:
            self._wake()  # more are waiting: share them
        slot.started = self._clock()
        slot.busy = True
        try:
            task()
        except Exception:
            self.log.exception("Error in a pool task")
        except RequestTimeout:
            pass  # answered and logged by the request cycle; the thread lives on
        finally:
            slot.served += 1
            slot.busy = False
            if slot.aborted:
                _cancel_in_thread(slot.ident)
                slot.aborted = 0.0

    # -- pool threads ----------------------------------------------------------------------

    def _pool_thread(self, slot: _Slot) -> None:
        slot.ident = threading.get_ident()
        self._slot_of[slot.ident] = slot
        while self._serving:
            try:
                if self._pool_loop(slot):
                    return
            except RequestTimeout:
                # Delivered after its request had ended: nothing to answer any more.
                slot.busy = False
                slot.aborted = 0.0

    def _pool_loop(self, slot: _Slot) -> bool:
        """Serve until the worker stops (False) or this stand-in is not needed (True)."""
        poller = self.poller
        assert poller is not None
        wait = poller.wait
        listeners = self._listeners
        claim = self._claim
        tasks = self._tasks
        wake = self._wake_r
        idle_lock = self._idle_lock
        while self._serving:
            if slot.extra and self._surplus(slot):
                return True
            if tasks:
                try:
                    task = tasks.popleft()
                except IndexError:
                    continue
                self._run_task(slot, task)
                continue
            # Counted idle before looking at the tasks again: a spawner that sees the
            # count wakes us, one that does not left its tasks where we look.
            with idle_lock:
                self._idle += 1
            try:
                ready = [] if tasks else wait(_POLL_WAIT)
            finally:
                with idle_lock:
                    self._idle -= 1
            for fd, _events in ready:
                if fd == wake:
                    self._woken()
                    continue
                listener = listeners.get(fd)
                if listener is not None:
                    try:
                        self._accept(listener)
                    except Exception:
                        self.log.exception("Error accepting connections")
                    continue
                client = claim(fd)
                if client is None:
                    continue  # closed by its deadline meanwhile, or read by its stream
                slot.client = client
                slot.started = self._clock()
                slot.busy = True
                try:
                    self._serve(client, slot)
                except RequestTimeout:
                    self._close_busy(client)  # answered and logged by the request cycle
                except BaseException as exc:  # a pool thread must not die with a request
                    self._drop(client, exc)
                finally:
                    slot.served += 1
                    slot.busy = False
                    slot.client = None
                    if slot.aborted:
                        _cancel_in_thread(slot.ident)
                        slot.aborted = 0.0
        return False

    def _connection(self, client: Client) -> Any:
        """The driver for a connection whose TLS handshake (if any) is done."""
        options = self._options
        assert options is not None
        sock = client.sock
        is_ssl = isinstance(sock, ssl.SSLSocket)
        alpn = sock.selected_alpn_protocol() if is_ssl else None  # type: ignore[attr-defined]
        session = Session(
            sock, client.addr, client.listener, self, options, is_ssl=is_ssl, alpn=alpn
        )
        if session.mode == "h2":
            return self._h2_driver(client, session)
        http = BlockingHTTPConnection(
            sock, client.addr, client.listener, self.wsgi, self, options=options, session=session
        )
        http.client_wait = self.client_wait
        return http

    def _h2_driver(self, client: Client, session: Session) -> H2Driver:
        def claim() -> bool:
            return self._claim_client(client)

        def park(want: int) -> None:
            self._park_h2(client, want)

        driver = H2Driver(
            client.sock,
            session,
            self.wsgi,
            client_wait=self.client_wait,
            spawn=self._spawn,
            claim=claim,
            park=park,
            timeout=self._header_timeout,
        )
        self._h2.add(driver)
        if not self._accepting:
            driver.shutdown()
        return driver

    def _park_h2(self, client: Client, want: int) -> None:
        if want == multiplex.CLOSED:
            self._forget(client)
            return
        http = client.http
        now = self._clock()
        client.deadline = now + (self._header_timeout if http.active else self._keepalive)
        events = 0
        if want & multiplex.WANT_READ:
            events |= READ
        if want & multiplex.WANT_WRITE:
            events |= WRITE
        self._park(client, events)

    def _serve(self, client: Client, slot: _Slot | None = None) -> None:
        """Serve what a ready connection sent; park it again or close it."""
        sock = client.sock
        if client.handshaking:
            want = tls.handshake_step(sock)  # type: ignore[arg-type]
            if want:
                self._park(client, want)
                return
            client.handshaking = False
        http = client.http
        if http is None:
            http = client.http = self._connection(client)
            if type(http) is H2Driver:
                self._park_h2(client, http.start())
                return
        if type(http) is H2Driver:
            self._park_h2(client, http.on_readable())
            return
        while True:
            if sock.gettimeout() != 0.0:
                sock.settimeout(0.0)  # reading a head never waits for the client
            state = http.receive_request()
            if state == NEED_DATA:
                if http.preface_deadline is not None:
                    # A partial HTTP/2 preface gets a second, not the head's timeout.
                    client.deadline = min(client.deadline, http.preface_deadline)
                break
            if state == CLOSED:
                self._forget(client)
                return
            if state == SWITCH_H2:
                self._switch_to_h2(client, http.handoff)
                return
            if self._keepalive <= 0 or not self._accepting:
                http.close_after_response()
            if slot is not None:
                slot.started = self._clock()  # each request has its own timeout
            if not http.serve_one():  # the driver closed the connection, or handed it over
                if http.handoff is not None:
                    self._switch_to_h2(client, http.handoff)
                    return
                self._forget(client)
                return
            # A response that promised keep-alive is never followed by a close here,
            # even when the worker is stopping: the client may already be sending its
            # next request. The graceful stop answers that one with Connection: close,
            # or closes the connection once it has been idle for a while.
            client.idle = True
            client.deadline = self._clock() + self._keepalive
            if not http.has_pending_request:
                break  # nothing buffered: the poller tells when the next request comes
        since = http.waiting_head_since
        if since is not None and client.idle:
            # A kept-alive client started its next request: its head has a deadline now.
            client.idle = False
            client.deadline = since + self._header_timeout
        self._park(client, READ)

    def _switch_to_h2(self, client: Client, handoff: Handoff) -> None:
        """A cleartext client sent the HTTP/2 preface or upgraded with ``h2c``."""
        old = client.http
        driver = self._h2_driver(client, old.session)
        client.http = driver
        self._park_h2(client, driver.start(handoff))


def _raise_in_thread(ident: int, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` in thread ``ident`` at its next Python instruction."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))


def _cancel_in_thread(ident: int) -> None:
    """Withdraw an exception sent with ``_raise_in_thread`` that was not raised yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


def _has_input(sock: socket.socket) -> bool:
    """Whether the peer sent bytes we have not read (or closed its side)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poller = select.poll()
    try:
        poller.register(sock.fileno(), select.POLLIN)
    except (OSError, ValueError):
        return False
    return bool(poller.poll(0))


__all__ = ["ThreadWorker"]
