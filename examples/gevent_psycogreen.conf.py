"""A configuration for Django or SQLAlchemy + psycopg on the gevent worker.

    gunicorn -c gevent_psycogreen.conf.py mysite.wsgi

psycopg talks to PostgreSQL from C, so gevent's monkey patch does not reach its socket:
without help, a query blocks the whole worker. ``psycogreen`` (``pip install psycogreen``)
gives psycopg a wait callback that waits through gevent's hub. Install it in ``post_fork``:
in the worker, after the fork, before the application opens a connection. (The worker
monkey-patches the standard library itself, right after ``post_fork``, before it imports
the application; the arbiter is never patched.) With eventlet, use
``psycogreen.eventlet.patch_psycopg`` instead.
"""

worker_class = "gevent"
worker_connections = 1000
# Every request holds its database connection while it waits: keep the pool in line
# with worker_connections (or use a pooler such as pgbouncer).
keepalive = 5


def post_fork(server, worker):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    worker.log.info("psycopg made cooperative (psycogreen) in worker %s", worker.pid)
