"""A "model" loaded once in the dirty workers, called from a Flask view.

    pip install flask
    gunicorn -w 4 -k gthread --dirty-workers 2 --dirty-app dirty_app:SentimentModel dirty_app:app

    curl 'http://127.0.0.1:8000/predict?text=a+great+day'
    curl 'http://127.0.0.1:8000/stream?text=a+great+day'
    curl 'http://127.0.0.1:8000/stats'

The HTTP workers never load the model: they call into the dirty pool, where each dirty
worker loaded it once in ``init()``. ``workers = 1`` would keep it in a single dirty
worker (or write ``--dirty-app dirty_app:SentimentModel:1``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify, request

from gunicorn.dirty import DirtyApp, DirtyError, get_dirty_client, stash

MODEL = "dirty_app:SentimentModel"


class SentimentModel(DirtyApp):
    """Stands in for a large model: slow to load, then quick to call."""

    def init(self) -> None:
        time.sleep(1.0)  # reading weights from disk...
        self.weights = {"great": 2.0, "good": 1.0, "bad": -1.0, "awful": -2.0}
        self.loaded_by = os.getpid()

    def predict(self, text: str) -> dict[str, Any]:
        score = sum(self.weights.get(word, 0.0) for word in text.lower().split())
        stash.put("stats", "predictions", int(stash.get("stats", "predictions", 0)) + 1)
        return {"text": text, "score": score, "dirty_worker": self.loaded_by}

    def explain(self, text: str) -> Iterator[str]:
        """A streamed answer: one line per word, as a generator."""
        for word in text.lower().split():
            time.sleep(0.1)
            yield f"{word}: {self.weights.get(word, 0.0):+.1f}\n"

    def close(self) -> None:
        self.weights = {}


app = Flask(__name__)


@app.get("/predict")
def predict() -> Any:
    try:
        result = get_dirty_client(timeout=10).execute(MODEL, "predict", request.args["text"])
    except DirtyError as exc:
        return jsonify(error=type(exc).__name__, message=exc.message), 503
    return jsonify(result)


@app.get("/stream")
def stream() -> Response:
    chunks = get_dirty_client(timeout=10).stream(MODEL, "explain", request.args["text"])
    return Response(chunks, mimetype="text/plain")


@app.get("/stats")
def stats() -> Any:
    return jsonify(predictions=stash.get("stats", "predictions", 0))
