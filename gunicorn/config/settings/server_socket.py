"""Server Socket: where gunicorn listens."""

from __future__ import annotations

import os

from gunicorn.config.core import Setting
from gunicorn.config.validators import parse_int, validate_bind, validate_pos_int

SECTION = "Server Socket"


def default_bind() -> list[str]:
    """``0.0.0.0:$PORT`` when PORT is set (PaaS convention), else 127.0.0.1:8000."""
    port = os.environ.get("PORT")
    return [f"0.0.0.0:{port}"] if port else ["127.0.0.1:8000"]


SETTINGS = [
    Setting(
        name="bind",
        section=SECTION,
        cli=("-b", "--bind"),
        action="append",
        meta="ADDRESS",
        validator=validate_bind,
        default_factory=default_bind,
        default_doc="['127.0.0.1:8000']",
        short="Address to listen on; repeat for several.",
        desc="""
Addresses to listen on. Give the option several times to listen on several sockets, e.g.
`--bind 127.0.0.1:8000 --bind [::1]:8000`. Accepted forms:

- `HOST` or `HOST:PORT` (port 8000 when left out), `tcp://HOST:PORT`
- `[IPV6]:PORT` for IPv6 addresses
- `unix:PATH` or `unix://PATH` for a Unix domain socket
- `fd://N` to use an already open listening socket on descriptor N

When the `PORT` environment variable is set, the default becomes `0.0.0.0:$PORT`.
""",
    ),
    Setting(
        name="backlog",
        section=SECTION,
        cli=("--backlog",),
        meta="INT",
        validator=validate_pos_int,
        type=parse_int,
        default=2048,
        short="Size of the queue of connections waiting to be accepted.",
        desc="""
Length of the kernel queue of connections that were accepted by the network stack but not
yet by a worker. Clients arriving when it is full get errors. The kernel may cap the value
(`net.core.somaxconn` on Linux). Typical values are between 64 and 2048.
""",
    ),
]
