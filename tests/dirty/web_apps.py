"""A WSGI app that calls the dirty apps as the query string says and answers JSON.

``/?q=<json>`` with ``{"op": "execute"|"stream"|"put"|"get"|"keys", "app", "action",
"args", "kwargs", "client_timeout", "table", "key", "value"}``; the answer is
``{"worker": <http worker pid>, "result": ...}`` or ``{"worker", "error", "message"}``.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.dirty import DirtyError, get_dirty_client, stash


def run(query: dict[str, Any]) -> Any:
    op = query.get("op", "execute")
    if op in ("put", "get", "keys", "delete", "info"):
        table = query["table"]
        if op == "put":
            return stash.put(table, query["key"], query["value"])
        if op == "get":
            return stash.get(table, query["key"], "<missing>")
        if op == "delete":
            return stash.delete(table, query["key"])
        if op == "info":
            return stash.info(table)
        return sorted(stash.keys(table, query.get("pattern")))
    client = get_dirty_client(timeout=query.get("client_timeout", 30.0))
    args = query.get("args", [])
    if query.get("unencodable_arg"):
        args = [object()]
    if query.get("huge_arg"):
        args = [b"x" * (64 * 1024 * 1024 + 1)]
    kwargs = query.get("kwargs", {})
    if op == "stream":
        chunks = list(client.stream(query["app"], query["action"], *args, **kwargs))
        if query.get("sizes"):
            return [len(c) for c in chunks]
        return chunks
    return client.execute(query["app"], query["action"], *args, **kwargs)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    query = json.loads(params["q"][0]) if "q" in params else {}
    answer: dict[str, Any] = {"worker": os.getpid()}
    try:
        answer["result"] = run(query)
    except DirtyError as exc:
        answer["error"] = type(exc).__name__
        answer["message"] = exc.message
        answer["details"] = {k: v for k, v in exc.details.items() if k != "traceback"}
    body = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
