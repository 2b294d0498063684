"""examples/dirty_app.py runs as its docstring says."""

from __future__ import annotations

import json
import os

from support import Gunicorn, request

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def test_flask_view_calls_the_model() -> None:
    args = "-k gthread -w 2 --dirty-workers 2 --dirty-app dirty_app:SentimentModel"
    with Gunicorn(*args.split(), "--no-control-socket", "dirty_app:app", cwd=EXAMPLES) as server:
        server.wait_for(r"Dirty worker \d+ ready", count=2)
        assert server.address is not None
        status, body = request(server.address, "/predict?text=a+great+day")
        assert status == 200
        assert json.loads(body)["score"] == 2.0
        status, body = request(server.address, "/stream?text=good+bad")
        assert (status, body) == (200, b"good: +1.0\nbad: -1.0\n")
        status, body = request(server.address, "/stats")
        assert json.loads(body) == {"predictions": 1}
