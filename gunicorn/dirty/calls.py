"""How the dirty arbiter relays calls: route, dispatch, answer, time out, queue.

A call is forwarded to a worker as it came, relabelled with an arbiter-wide id (a
:class:`~gunicorn.dirty.routing.Task`); the worker's messages are relabelled back for
the client. A call whose client left is still tracked until its worker answers, and its
answer is dropped; so is the answer of a call that timed out.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from typing import Any

from gunicorn.children import Children
from gunicorn.dirty import protocol
from gunicorn.dirty.app import not_found
from gunicorn.dirty.errors import (
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtyTimeoutError,
)
from gunicorn.dirty.links import ClientLink
from gunicorn.dirty.routing import Allocation, Router, Task, Waiting
from gunicorn.dirty.stash_store import StashStore
from gunicorn.dirty.worker import DirtyWorker


def action_of(raw: bytes) -> str:
    """The action named by a request message (for log lines and errors)."""
    try:
        return str(protocol.payload_of(raw).get("action"))
    except (DirtyError, AttributeError):
        return "?"


class CallRelay:
    """The call-handling half of :class:`~gunicorn.dirty.arbiter.DirtyArbiter`."""

    log: Any
    timeout: float
    threads: int
    stopping: bool
    children: Children
    router: Router
    allocation: Allocation
    app_errors: dict[str, str]
    tasks: dict[int, Task]
    stash: StashStore
    clients: set[ClientLink]
    _loop: asyncio.AbstractEventLoop | None
    _next_task: int

    def scale(self, delta: int) -> int:
        raise NotImplementedError

    def kill_worker(self, pid: int, sig: int) -> None:
        raise NotImplementedError

    def manage_workers(self) -> None:
        raise NotImplementedError

    def retire(self, child: Any, sig: int = signal.SIGTERM) -> None:
        raise NotImplementedError

    def _worker_gone(self, worker: DirtyWorker, reason: str) -> None:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        raise NotImplementedError

    def handle_worker_message(
        self, worker: DirtyWorker, msg_type: int, task_id: int, raw: bytes
    ) -> None:
        task = self.tasks.get(task_id)
        if task is None or task.worker is not worker:
            if msg_type == protocol.MSG_TYPE_STATUS:
                self._worker_ready(worker, protocol.payload_of(raw))
            return  # the answer of a call that timed out or whose client left: dropped
        client = task.client
        if client is not None:
            client.write(protocol.with_request_id(raw, task.request_id))
        if msg_type in protocol.FINAL_TYPES:
            self._forget(task_id, task)
            self._drain(worker)
        # A chunk leaves the timer running: dirty_timeout bounds the whole call.

    def _worker_ready(self, worker: DirtyWorker, status: dict[str, Any]) -> None:
        served = [str(app) for app in status.get("apps") or []]
        failed = status.get("failed") or {}
        worker.served = [app for app in served if app in self.allocation.limits]
        worker.ready = not worker.gone
        for app in worker.served:
            self.app_errors.pop(app, None)
        for app, reason in failed.items():
            self.app_errors.setdefault(app, str(reason))
        for child in self.children:
            other = child.worker
            if other is not worker and other.slot == worker.slot and other.replaced:
                self.retire(child)
        self.router.rebuild([c.worker for c in self.children])
        self.log.info("Dirty worker %s ready (apps: %s)", worker.pid, ", ".join(worker.served))
        for app in failed:
            if not self.router.has_ready(app):
                self._fail_waiting(app, not_found(app, self.app_errors.get(app)))
        self._drain(worker)

    def handle_client_message(
        self, client: ClientLink, msg_type: int, request_id: int, raw: bytes
    ) -> None:
        if msg_type == protocol.MSG_TYPE_REQUEST:
            self._route(client, request_id, raw)
            return
        try:
            if msg_type == protocol.MSG_TYPE_STASH:
                result = self.stash.apply(protocol.payload_of(raw))
            elif msg_type == protocol.MSG_TYPE_STATUS:
                result = self.status()
            elif msg_type == protocol.MSG_TYPE_MANAGE:
                payload = protocol.payload_of(raw)
                count = int(payload.get("count", 1))
                op = payload.get("op")
                if op not in (protocol.MANAGE_OP_ADD, protocol.MANAGE_OP_REMOVE):
                    raise DirtyProtocolError(f"Unknown manage operation: {op!r}")
                delta = count if op == protocol.MANAGE_OP_ADD else -count
                result = {"target": self.scale(delta)}
            else:
                raise DirtyProtocolError(f"Unexpected message type 0x{msg_type:02x} from a client")
            client.write(protocol.encode_response(request_id, result))
        except DirtyError as exc:
            client.write(protocol.encode_error(request_id, exc))

    def _route(self, client: ClientLink, request_id: int, raw: bytes) -> None:
        try:
            app_path = protocol.request_app_path(raw)
        except DirtyProtocolError as exc:
            self.log.error("Dirty arbiter: bad request from a client: %s", exc)
            client.write(protocol.encode_error(request_id, exc))
            return
        if self.stopping:
            error: DirtyError = DirtyNoWorkersAvailableError(
                app_path, "The dirty arbiter is shutting down"
            )
            client.write(protocol.encode_error(request_id, error))
            return
        worker = self.router.pick(app_path)
        if worker is not None:
            self._dispatch(worker, client, request_id, app_path, raw)
            return
        if app_path not in self.allocation.limits or (
            app_path in self.app_errors and not self.router.has_ready(app_path)
        ):
            error = not_found(app_path, self.app_errors.get(app_path))
            self.log.warning("Dirty call rejected: %s", error.message)
            client.write(protocol.encode_error(request_id, error))
            return
        queue = self.router.waiting.setdefault(app_path, deque())
        queue.append(Waiting(client, request_id, raw, time.monotonic()))

    def _dispatch(
        self, worker: DirtyWorker, client: ClientLink, request_id: int, app_path: str, raw: bytes
    ) -> None:
        assert self._loop is not None
        self._next_task += 1
        task_id = self._next_task
        task = Task(client, request_id, worker, app_path, raw)
        if self.timeout > 0:
            task.timer = self._loop.call_later(self.timeout, self._task_timeout, task_id)
        self.tasks[task_id] = task
        client.tasks.add(task_id)
        worker.in_flight += 1
        worker.link.write(protocol.with_request_id(raw, task_id))

    def _forget(self, task_id: int, task: Task) -> None:
        self.tasks.pop(task_id, None)
        if task.timer is not None:
            task.timer.cancel()
        task.worker.in_flight -= 1
        if task.client is not None:
            task.client.tasks.discard(task_id)

    def _drain(self, worker: DirtyWorker) -> None:
        """Give queued calls to ``worker`` while it has free threads."""
        if not worker.ready:
            return
        for app in worker.served:
            queue = self.router.waiting.get(app)
            while queue and worker.in_flight < self.threads:
                waiting = queue.popleft()
                if waiting.client.closed:
                    continue
                self._dispatch(worker, waiting.client, waiting.request_id, app, waiting.raw)

    def _task_timeout(self, task_id: int) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            return
        self._forget(task_id, task)
        worker = task.worker
        what = f"{task.app_path}.{action_of(task.raw)}"
        seconds = int(self.timeout) if self.timeout.is_integer() else self.timeout
        error = DirtyTimeoutError(f"Dirty call {what} timed out after {seconds}s", timeout=seconds)
        self._answer_error(task.client, task.request_id, error)
        self.log.error(
            "Dirty call %s timed out after %ss on dirty worker %s; replacing the worker",
            what,
            seconds,
            worker.pid,
        )
        child = self.children.get(worker.pid or 0)
        if child is not None:
            child.term_sent_at = child.term_sent_at or time.monotonic()
            self.kill_worker(child.pid, signal.SIGKILL)
            self._worker_gone(worker, "was killed after a timeout")
            self.manage_workers()

    def _expire_waiting(self) -> None:
        if not self.timeout:
            return
        now = time.monotonic()
        for app, queue in self.router.waiting.items():
            while queue and (queue[0].client.closed or now - queue[0].since > self.timeout):
                waiting = queue.popleft()
                if waiting.client.closed:
                    continue
                error: DirtyError
                if self.router.has_ready(app):
                    error = DirtyTimeoutError(
                        f"Dirty call to {app} waited {int(self.timeout)}s for a free worker",
                        timeout=self.timeout,
                    )
                else:
                    error = DirtyNoWorkersAvailableError(app)
                self.log.warning("Dirty call failed: %s", error.message)
                self._answer_error(waiting.client, waiting.request_id, error)

    def _fail_waiting(self, app: str, error: DirtyError) -> None:
        queue = self.router.waiting.get(app)
        while queue:
            waiting = queue.popleft()
            self._answer_error(waiting.client, waiting.request_id, error)

    def _fail_all(self, error: DirtyError) -> None:
        for task_id, task in list(self.tasks.items()):
            self._forget(task_id, task)
            self._answer_error(task.client, task.request_id, error)

    @staticmethod
    def _answer_error(client: ClientLink | None, request_id: int, error: DirtyError) -> None:
        if client is not None and not client.closed:
            client.write(protocol.encode_error(request_id, error))

    def client_gone(self, client: ClientLink) -> None:
        self.clients.discard(client)
        for task_id in client.tasks:
            task = self.tasks.get(task_id)
            if task is not None:
                task.client = None  # its answer will be dropped
        client.tasks.clear()
