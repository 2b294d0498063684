"""A request stuck past ``timeout`` is answered with 500, logged in the access log as
500, and its stack (file, line, function) is logged at ERROR before the worker dies."""

from __future__ import annotations

import pytest

from tests.support import Gunicorn
from tests.wsgi.wire import WSGI_DIR, one, request_bytes

pytestmark = pytest.mark.slow


def test_sync_worker_answers_a_timed_out_request_with_500() -> None:
    args = ["-k", "sync", "--timeout", "2", "--access-logfile", "-", "--chdir", str(WSGI_DIR)]
    with Gunicorn(*args, "apps:app") as server:
        reply = one(server.address, request_bytes("GET", "/sleep?t=60"), timeout=20)
        assert reply.status == 500
        log = server.wait_for(r'"GET /sleep\?t=60 HTTP/1.1" 500 ')
        assert "WORKER TIMEOUT" in log
        assert "[ERROR] Request GET /sleep?t=60 timed out after 2.0s" in log
        # The application's own frame, with its file, line and function.
        assert 'apps.py", line' in log and "in sleep" in log
        assert "sync.py" not in log.partition("timed out after")[2].partition("[INFO]")[0]
        server.wait_for("Booting worker", count=2)
        assert one(server.address, request_bytes("GET", "/")).status == 200


def test_gthread_answers_a_timed_out_request_and_keeps_serving() -> None:
    # gunicorn 27's gthread worker never times a stuck request out; this one does, per
    # thread: the stuck request gets 500 and the other thread kept serving meanwhile.
    args = ["-k", "gthread", "--threads", "2", "--timeout", "2", "--access-logfile", "-"]
    with Gunicorn(*args, "--chdir", str(WSGI_DIR), "apps:app") as server:
        reply = one(server.address, request_bytes("GET", "/spin?t=60"), timeout=20)
        assert reply.status == 500
        log = server.wait_for(r'"GET /spin\?t=60 HTTP/1.1" 500 ')
        assert "[ERROR] Request GET /spin?t=60 timed out after 2.0s" in log
        assert "in spin" in log
        assert one(server.address, request_bytes("GET", "/")).status == 200
        assert server.count("Booting worker") == 1  # the thread came back


def test_gthread_retires_a_worker_whose_thread_is_blocked() -> None:
    args = ["-k", "gthread", "--threads", "2", "--timeout", "2", "--access-logfile", "-"]
    with Gunicorn(*args, "--chdir", str(WSGI_DIR), "apps:app") as server:
        # time.sleep blocks in C: the raised RequestTimeout cannot land.
        reply = one(server.address, request_bytes("GET", "/sleep?t=60"), timeout=20)
        assert reply.status == 500
        log = server.wait_for("its thread is blocked; it was at:")
        assert "in sleep" in log.partition("its thread is blocked")[2]
        server.wait_for("Booting worker", count=2)
        assert one(server.address, request_bytes("GET", "/")).status == 200
