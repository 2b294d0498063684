"""Third-party workers written against gunicorn's Worker API run unchanged.

uvicorn-worker subclasses ``gunicorn.workers.base.Worker`` and reads the logger, the
configuration and the listeners the way it does with upstream gunicorn.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import uvicorn_worker  # noqa: F401  (a test dependency: its absence must fail, not skip)

from tests.support import Gunicorn

REPO = Path(__file__).resolve().parents[2]

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = b"asgi " + scope["method"].encode() + b" " + scope["path"].encode() + b" " + body
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": reply})
"""


def test_the_installed_gunicorn_is_this_checkout() -> None:
    """A plugin's ``gunicorn>=`` requirement must not pull upstream in over us."""
    shown = subprocess.run(
        [sys.executable, "-m", "pip", "show", "gunicorn"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split(": ", 1) for line in shown.splitlines() if ": " in line)
    location = fields.get("Editable project location") or fields.get("Location", "")
    import gunicorn

    assert Path(gunicorn.__file__).resolve().is_relative_to(REPO)
    assert Path(location).resolve() == REPO
    major = int(fields["Version"].split(".")[0])
    assert major >= 27


def test_uvicorn_worker_serves_an_asgi_app(tmp_path: Path) -> None:
    (tmp_path / "asgiapp.py").write_text(ASGI_APP)
    with Gunicorn("-k", "uvicorn_worker.UvicornWorker", "asgiapp:app", cwd=tmp_path) as server:
        assert server.url is not None
        with httpx.Client(base_url=server.url, timeout=5.0) as client:
            got = client.get("/hello")
            posted = client.post("/echo", content=b"payload")
        server.wait_for("Application startup complete")
    assert got.status_code == 200
    assert got.text == "asgi GET /hello "
    assert posted.text == "asgi POST /echo payload"
    assert "Using worker: uvicorn_worker.UvicornWorker" in server.log
