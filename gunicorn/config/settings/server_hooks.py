"""Server Hooks: callables run at points of the server's life (config file only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.config.core import Setting
from gunicorn.config.validators import validate_callable, validate_post_request

SECTION = "Server Hooks"


def on_starting(server: Any) -> None:
    """Does nothing."""


def on_reload(server: Any) -> None:
    """Does nothing."""


def when_ready(server: Any) -> None:
    """Does nothing."""


def pre_fork(server: Any, worker: Any) -> None:
    """Does nothing."""


def post_fork(server: Any, worker: Any) -> None:
    """Does nothing."""


def post_worker_init(worker: Any) -> None:
    """Does nothing."""


def worker_int(worker: Any) -> None:
    """Does nothing."""


def worker_abort(worker: Any) -> None:
    """Does nothing."""


def pre_exec(server: Any) -> None:
    """Does nothing."""


def pre_request(worker: Any, req: Any) -> None:
    """Logs the method and path at debug level."""
    worker.log.debug("%s %s", req.method, req.path)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """Does nothing."""


def child_exit(server: Any, worker: Any) -> None:
    """Does nothing."""


def worker_exit(server: Any, worker: Any) -> None:
    """Does nothing."""


def nworkers_changed(server: Any, new_value: int, old_value: int | None) -> None:
    """Does nothing."""


def on_exit(server: Any) -> None:
    """Does nothing."""


def ssl_context(config: Any, default_ssl_context_factory: Callable[[], Any]) -> Any:
    """Returns the context built from the SSL settings."""
    return default_ssl_context_factory()


def hook(
    func: Callable[..., Any],
    section: str,
    signature: str,
    short: str,
    desc: str,
    validator: Callable[[Any], Any] | None = None,
) -> Setting:
    """Declare a hook setting whose default is ``func``."""
    arity = signature.count(",") + 1
    return Setting(
        name=func.__name__,
        section=section,
        validator=validator or validate_callable(arity),
        type=callable,
        default=func,
        default_doc=(func.__doc__ or "").strip(),
        short=short,
        desc=f"```python\ndef {func.__name__}({signature}):\n    ...\n```\n{desc}",
    )


SETTINGS = [
    hook(
        on_starting,
        SECTION,
        "server",
        "Runs in the master at startup, before the sockets are bound.",
        """
Runs in the master once at startup, after the PID file is written and before signals are set
up and sockets bound. `server` is the Arbiter.
""",
    ),
    hook(
        on_reload,
        SECTION,
        "server",
        "Runs in the master when a HUP reload replaces the workers.",
        """
Runs in the master during a HUP reload, after the configuration and logging were reloaded and
before the new workers are started.
""",
    ),
    hook(
        when_ready,
        SECTION,
        "server",
        "Runs in the master once the sockets are bound.",
        """
Runs in the master once the listening sockets are bound, before the first workers are
started. A good place to start a metrics endpoint served by the master.
""",
    ),
    hook(
        pre_fork,
        SECTION,
        "server, worker",
        "Runs in the master just before each worker is forked.",
        """
Runs in the master for every worker, before the fork; `worker` is the new Worker object,
which has no pid yet.
""",
    ),
    hook(
        post_fork,
        SECTION,
        "server, worker",
        "Runs in each worker right after the fork.",
        """
Runs in the new worker process right after the fork, before the application is loaded.
Start per-process resources here: threads and clients that do not survive `fork()`
(tracing exporters, database pools, gevent patches).
""",
    ),
    hook(
        post_worker_init,
        SECTION,
        "worker",
        "Runs in each worker once the application is loaded.",
        """
Runs in the worker after the application was loaded, before it starts serving.
""",
    ),
    hook(
        worker_int,
        SECTION,
        "worker",
        "Runs in a worker told to stop quickly (INT or QUIT).",
        """
Runs in the worker when it is told to stop quickly (INT or QUIT), and when the reloader
restarts it.
""",
    ),
    hook(
        worker_abort,
        SECTION,
        "worker",
        "Runs in a worker that received SIGABRT, usually after a timeout.",
        """
Runs in the worker on SIGABRT, which the master sends to a worker that exceeded `timeout`.
Useful to log where the worker was stuck, e.g. with `traceback.print_stack()`.
""",
    ),
    hook(
        pre_exec,
        SECTION,
        "server",
        "Runs just before the new master is executed on USR2.",
        """
Runs in the freshly forked process just before it executes the new gunicorn binary during a
USR2 upgrade.
""",
    ),
    hook(
        pre_request,
        SECTION,
        "worker, req",
        "Runs in the worker before each request.",
        """
Runs in the worker before the application is called. The default logs the method and path
at debug level.
""",
    ),
    hook(
        post_request,
        SECTION,
        "worker, req, environ, resp",
        "Runs in the worker after each request.",
        """
Runs in the worker after each request, also when the application failed. Callables taking
only `(worker, req)` or `(worker, req, environ)` are accepted too.
""",
        validator=validate_post_request,
    ),
    hook(
        child_exit,
        SECTION,
        "server, worker",
        "Runs in the master after a worker process ended.",
        """
Runs in the master after a worker process ended and was reaped; `worker.pid` is the pid it
had. Prometheus multiprocess mode cleans up here.
""",
    ),
    hook(
        worker_exit,
        SECTION,
        "server, worker",
        "Runs in a worker process as it exits.",
        """
Runs in the worker process as it exits.
""",
    ),
    hook(
        nworkers_changed,
        SECTION,
        "server, new_value, old_value",
        "Runs in the master when the target number of workers changes.",
        """
Runs in the master whenever the target number of workers changes (startup, TTIN, TTOU,
control socket). `old_value` is None the first time.
""",
    ),
    hook(
        on_exit,
        SECTION,
        "server",
        "Runs in the master just before it exits.",
        """
Runs in the master just before it exits.
""",
    ),
    hook(
        ssl_context,
        SECTION,
        "config, default_ssl_context_factory",
        "Returns the SSLContext used for TLS connections.",
        """
Returns the `ssl.SSLContext` used for TLS connections. `default_ssl_context_factory()` builds
the context described by the SSL settings, which the hook may adjust or replace, e.g. to set
a key password or TLS versions.
""",
    ),
]
