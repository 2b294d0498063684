"""A FastAPI application on the native ASGI worker (``pip install fastapi``)::

    gunicorn -k asgi -w 2 fastapi_app:app

``/healthz`` (liveness: the worker answers) and ``/readyz`` (readiness: lifespan startup
finished) are the probes ``kubernetes/deployment.yaml`` uses; ``/whoami`` shows what the
server made of the connection (client address, scheme) behind a proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    # Open connection pools, load caches... before the worker takes requests.
    yield {"ready": True}
    # ...and close them when the worker stops.


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    return {"message": "Hello from FastAPI!"}


@app.get("/items/{item_id}")
async def item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q}


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, Any]:
    client = request.client
    return {
        "client": client.host if client else None,
        "scheme": request.url.scheme,
        "forwarded_for": request.headers.get("x-forwarded-for"),
    }


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz(request: Request, response: Response) -> dict[str, bool]:
    ready = bool(getattr(request.state, "ready", False))
    if not ready:
        response.status_code = 503
    return {"ready": ready}
