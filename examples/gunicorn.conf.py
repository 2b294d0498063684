"""A sample configuration file: ``gunicorn -c examples/gunicorn.conf.py examples.hello:app``.

Every top-level name that matches a setting is applied. Each server hook below only
logs what it is called for, so the log shows the life of the server step by step.
"""

from __future__ import annotations

import logging
import os
from typing import Any

bind = "127.0.0.1:8000"
workers = 2
worker_class = "sync"
timeout = 30
graceful_timeout = 30
keepalive = 2
accesslog = "-"
errorlog = "-"
loglevel = "info"
proc_name = "example"

log = logging.getLogger("gunicorn.error")


# -- master ------------------------------------------------------------------------------


def on_starting(server: Any) -> None:
    """Master: before the listeners are opened."""
    server.log.info("hook on_starting: master %s is starting", os.getpid())


def on_reload(server: Any) -> None:
    """Master: on SIGHUP, after the configuration was read again."""
    server.log.info("hook on_reload: configuration reloaded")


def when_ready(server: Any) -> None:
    """Master: listeners are open, workers are about to be started."""
    server.log.info("hook when_ready: server is ready")


def pre_fork(server: Any, worker: Any) -> None:
    """Master: just before a worker is forked."""
    server.log.info("hook pre_fork: forking worker (age %s)", worker.age)


def pre_exec(server: Any) -> None:
    """Forked master child: just before a new binary is executed (SIGUSR2)."""
    server.log.info("hook pre_exec: executing a new master")


def child_exit(server: Any, worker: Any) -> None:
    """Master: a worker process was reaped."""
    server.log.info("hook child_exit: worker %s exited", worker.pid)


def nworkers_changed(server: Any, new_value: int, old_value: int | None) -> None:
    """Master: the number of workers to run changed (start, TTIN, TTOU)."""
    server.log.info("hook nworkers_changed: %s -> %s", old_value, new_value)


def on_exit(server: Any) -> None:
    """Master: just before it exits."""
    server.log.info("hook on_exit: master is exiting")


def ssl_context(config: Any, default_ssl_context_factory: Any) -> Any:
    """Wherever TLS is set up: return the server SSLContext (here, the default one)."""
    context = default_ssl_context_factory()
    log.info("hook ssl_context: using the default TLS context")
    return context


# -- worker ------------------------------------------------------------------------------


def post_fork(server: Any, worker: Any) -> None:
    """Worker: right after the fork, before the application is loaded."""
    server.log.info("hook post_fork: worker %s forked", worker.pid)


def post_worker_init(worker: Any) -> None:
    """Worker: the application is loaded, the worker loop is about to start."""
    worker.log.info("hook post_worker_init: worker %s ready", worker.pid)


def worker_int(worker: Any) -> None:
    """Worker: SIGINT or SIGQUIT received (quick shutdown)."""
    worker.log.info("hook worker_int: worker %s interrupted", worker.pid)


def worker_abort(worker: Any) -> None:
    """Worker: SIGABRT received (the master found the worker silent past ``timeout``)."""
    worker.log.info("hook worker_abort: worker %s aborted", worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """Worker: the worker process is exiting."""
    server.log.info("hook worker_exit: worker %s exiting", worker.pid)


def pre_request(worker: Any, req: Any) -> None:
    """Worker: before each request is given to the application."""
    worker.log.info("hook pre_request: %s %s", req.method, req.path)


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    """Worker: after each request, even a failed one."""
    worker.log.info("hook post_request: %s %s -> %s", req.method, req.path, resp.status)


# -- dirty arbiters (used only when dirty_apps and dirty_workers are set) ----------------


def on_dirty_starting(arbiter: Any) -> None:
    """Dirty arbiter: before it starts its workers."""
    log.info("hook on_dirty_starting: dirty arbiter starting")


def dirty_post_fork(arbiter: Any, worker: Any) -> None:
    """Dirty worker: right after the fork."""
    log.info("hook dirty_post_fork: dirty worker forked")


def dirty_worker_init(worker: Any) -> None:
    """Dirty worker: every dirty app is initialised."""
    log.info("hook dirty_worker_init: dirty worker ready")


def dirty_worker_exit(arbiter: Any, worker: Any) -> None:
    """Dirty arbiter: a dirty worker exited."""
    log.info("hook dirty_worker_exit: dirty worker exited")
