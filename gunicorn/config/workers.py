"""Names of the bundled worker classes and the optional packages they need."""

from __future__ import annotations

SUPPORTED_WORKERS: dict[str, str] = {
    "sync": "gunicorn.workers.sync.SyncWorker",
    "gthread": "gunicorn.workers.gthread.ThreadWorker",
    "gevent": "gunicorn.workers.ggevent.GeventWorker",
    "gevent_wsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "gevent_pywsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "eventlet": "gunicorn.workers.geventlet.EventletWorker",
    "tornado": "gunicorn.workers.gtornado.TornadoWorker",
    "asgi": "gunicorn.workers.gasgi.ASGIWorker",
}

# worker short name -> (importable package it needs, pip extra that installs it)
WORKER_REQUIREMENTS: dict[str, tuple[str, str]] = {
    "gevent": ("gevent", "gevent"),
    "gevent_wsgi": ("gevent", "gevent"),
    "gevent_pywsgi": ("gevent", "gevent"),
    "eventlet": ("eventlet", "eventlet"),
    "tornado": ("tornado", "tornado"),
}

# Short names gunicorn once had: why they are refused now.
REMOVED_WORKERS: dict[str, str] = {}
