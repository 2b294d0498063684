"""Server hooks for ``test_every_worker``: each one leaves a line in the error log."""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    worker.log.info("hook post_worker_init: %s", type(worker).__name__)


def pre_request(worker: Any, req: Any) -> None:
    worker.log.info("hook pre_request: %s %s", req.method, req.path)


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    worker.log.info("hook post_request: %s %s %s", req.method, req.path, resp.status_code)


def worker_exit(server: Any, worker: Any) -> None:
    server.log.info("hook worker_exit: %s", type(worker).__name__)
