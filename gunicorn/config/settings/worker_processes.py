"""Worker Processes: how many workers, of which kind, and their lifetime limits."""

from __future__ import annotations

import os

from gunicorn.config.core import Setting
from gunicorn.config.validators import (
    parse_int,
    validate_asgi_lifespan,
    validate_asgi_loop,
    validate_class,
    validate_http_parser,
    validate_pos_int,
)

SECTION = "Worker Processes"


def default_workers() -> int:
    """``$WEB_CONCURRENCY`` when set, else 1."""
    return validate_pos_int(os.environ.get("WEB_CONCURRENCY", "1"))


def _int(name: str, cli: tuple[str, ...], default: int, short: str, desc: str) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        cli=cli,
        meta="INT",
        validator=validate_pos_int,
        type=parse_int,
        default=default,
        short=short,
        desc=desc,
    )


SETTINGS = [
    Setting(
        name="workers",
        section=SECTION,
        cli=("-w", "--workers"),
        meta="INT",
        validator=validate_pos_int,
        type=parse_int,
        default_factory=default_workers,
        default_doc="1",
        short="How many worker processes serve requests.",
        desc="""
How many worker processes the master keeps running. A common starting point is two to four
per CPU core; a sync worker handles one request at a time, so this is also its concurrency.
The number can be changed at run time with the TTIN and TTOU signals.

When the `WEB_CONCURRENCY` environment variable is set (Heroku and other platforms set it),
it is the default.
""",
    ),
    Setting(
        name="worker_class",
        section=SECTION,
        cli=("-k", "--worker-class"),
        meta="STRING",
        validator=validate_class,
        default="sync",
        short="Worker implementation: a short name, dotted path or entry point.",
        desc="""
Which worker implementation serves requests. Short names of the bundled workers:

- `sync`: one request at a time per process (the default)
- `gthread`: a pool of `threads` threads per process
- `gevent`, `gevent_wsgi`, `gevent_pywsgi`: greenlets (needs `pip install 'gunicorn[gevent]'`)
- `eventlet`: greenlets on eventlet (needs `pip install 'gunicorn[eventlet]'`)
- `tornado`: a Tornado IOLoop (needs the tornado package)
- `asgi`: asyncio (uvloop when installed) worker for ASGI applications: HTTP/1.1, HTTP/2
  and WebSockets

Any other class may be named by its dotted path (`uvicorn_worker.UvicornWorker`), as an entry
point (`egg:mydist#name`), or passed as a class object from Python. `sync` with `threads`
above 1 runs the `gthread` worker.
""",
    ),
    _int(
        "threads",
        ("--threads",),
        1,
        "Request-handling threads per worker (gthread).",
        """
Threads per worker process for the `gthread` worker. Each thread serves one request at a
time, so a worker handles up to `threads` requests at once. Choosing the `sync` worker with
more than one thread switches to `gthread`. Other worker types ignore the setting.
""",
    ),
    _int(
        "worker_connections",
        ("--worker-connections",),
        1000,
        "Most connections one worker holds open at once.",
        """
Upper bound on the connections one worker holds open at the same time, including idle
kept-alive ones. Used by the `gthread`, `gevent`, `eventlet` and `asgi` workers.
""",
    ),
    _int(
        "max_requests",
        ("--max-requests",),
        0,
        "Restart a worker after it served this many requests (0: never).",
        """
After serving this many requests a worker finishes its current work and exits, and the
master starts a fresh one. This bounds the damage of slow memory leaks in an application.
0 (the default) never restarts workers for this reason.
""",
    ),
    _int(
        "max_requests_jitter",
        ("--max-requests-jitter",),
        0,
        "Up to this many extra requests added at random to max_requests per worker.",
        """
Each worker adds a random number between 0 and this value to `max_requests`, so that workers
started together do not all restart together.
""",
    ),
    _int(
        "timeout",
        ("-t", "--timeout"),
        30,
        "Seconds of silence after which the master replaces a worker.",
        """
Every worker reports to the master regularly. A worker that stays silent for longer than
this is considered stuck: the master sends it SIGABRT, then SIGKILL, and starts a new one.
For the sync worker this bounds a single request; threaded and asynchronous workers keep
reporting while requests run. Over HTTP/2 it is also the longest a stream may make no
progress. 0 disables the check.
""",
    ),
    _int(
        "graceful_timeout",
        ("--graceful-timeout",),
        30,
        "Seconds workers get to finish in-flight requests when stopping.",
        """
Seconds workers get to finish the requests they are serving after a graceful stop or
restart (TERM, HUP, max_requests). Workers still running after that are killed.
""",
    ),
    _int(
        "keepalive",
        ("--keep-alive",),
        2,
        "Seconds an idle kept-alive connection waits for its next request.",
        """
How long an idle kept-alive connection waits for its next request before it is closed. The
sync worker never keeps connections alive. Behind a load balancer, set this above the
balancer's idle timeout (often 60 s), otherwise the balancer may reuse a connection gunicorn
is closing. Also the idle time after which an HTTP/2 connection is sent GOAWAY.
""",
    ),
    Setting(
        name="asgi_loop",
        section=SECTION,
        cli=("--asgi-loop",),
        meta="STRING",
        validator=validate_asgi_loop,
        default="auto",
        short="Event loop for the ASGI worker: auto, asyncio or uvloop.",
        desc="""
`auto` uses uvloop when it is installed and asyncio otherwise; `asyncio` and `uvloop` choose
one explicitly.
""",
    ),
    Setting(
        name="asgi_lifespan",
        section=SECTION,
        cli=("--asgi-lifespan",),
        meta="STRING",
        validator=validate_asgi_lifespan,
        default="auto",
        short="ASGI lifespan protocol: auto, on or off.",
        desc="""
Whether the ASGI worker runs the application's lifespan startup and shutdown events. `auto`
runs them and carries on when the application does not support lifespan; `on` treats a
startup failure as fatal; `off` never sends lifespan events.
""",
    ),
    _int(
        "asgi_disconnect_grace_period",
        ("--asgi-disconnect-grace-period",),
        3,
        "Seconds an ASGI application gets after a client disconnects before it is cancelled.",
        """
When a client goes away, the ASGI application receives `http.disconnect` and then has this
many seconds to return before its task is cancelled. 0 cancels at once.
""",
    ),
    _int(
        "websocket_max_message_size",
        ("--websocket-max-message-size",),
        16777216,
        "The largest WebSocket message accepted by the ASGI worker, in bytes.",
        """
A WebSocket message larger than this closes the connection with code 1009 (message too big).
0 removes the limit. The default is 16 MiB.
""",
    ),
    Setting(
        name="http_parser",
        section=SECTION,
        cli=("--http-parser",),
        meta="STRING",
        validator=validate_http_parser,
        default="auto",
        short="HTTP/1 parser implementation: auto, fast or python.",
        desc="""
`python` uses the pure Python HTTP/1 parser. `fast` requires the optional C parser
(`pip install 'gunicorn[fast]'`) and fails if it is missing. `auto` uses the C parser when
available and compatible with the other settings, and the Python one otherwise.
""",
    ),
]
