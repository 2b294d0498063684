"""HTTP/1.x server connections of the core.

``H1Connection`` (``connection.py``) is assembled from the head reader (``reader.py``,
with ``request_line.py`` and ``fields.py`` for the general path), the body reader
(``body.py``) and the response writer (``writer.py``) over shared fields (``base.py``);
its two state machines are the tables of ``states.py``. Framing decisions for responses
live in ``gunicorn/http/framing.py``, field rules in ``gunicorn/http/headers.py``.
"""

from gunicorn.http.connection import NEED_DATA, PAUSED, NextEvent
from gunicorn.http.h1.connection import H1Connection
from gunicorn.http.h1.dates import date_line, http_date
from gunicorn.http.h1.states import (
    BODY,
    CLOSED,
    DISCARD,
    DONE,
    ERROR,
    IDLE,
    RECEIVE_TRANSITIONS,
    SEND_BODY,
    SEND_TRANSITIONS,
    SWITCHED,
)

__all__ = [
    "BODY",
    "CLOSED",
    "DISCARD",
    "DONE",
    "ERROR",
    "IDLE",
    "NEED_DATA",
    "PAUSED",
    "RECEIVE_TRANSITIONS",
    "SEND_BODY",
    "SEND_TRANSITIONS",
    "SWITCHED",
    "H1Connection",
    "NextEvent",
    "date_line",
    "http_date",
]
