"""A Flask application: ``gunicorn examples.flask_app:app`` (needs ``pip install flask``)."""

from __future__ import annotations

from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "Hello from Flask!\n"


@app.post("/echo")
def echo() -> Response:
    return Response(request.get_data(), mimetype="application/octet-stream")


@app.get("/json")
def as_json() -> dict[str, object]:
    return {"method": request.method, "path": request.path, "args": request.args.to_dict()}
