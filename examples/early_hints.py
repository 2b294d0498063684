"""103 Early Hints: ``gunicorn examples.early_hints:app``.

``environ["wsgi.early_hints"]`` sends ``HTTP/1.1 103 Early Hints`` at once, so a
browser can start fetching the stylesheet while the page is still being built.
Try ``curl -v http://127.0.0.1:8000/`` (HTTP/1.0 clients never see the 103).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

PAGE = b"""<!DOCTYPE html>
<html><head><link rel="stylesheet" href="/style.css"></head>
<body><h1>Early hints</h1></body></html>
"""


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/style.css":
        css = b"h1 { color: teal; }\n"
        start_response("200 OK", [("Content-Type", "text/css"), ("Content-Length", str(len(css)))])
        return [css]
    send_hints = environ.get("wsgi.early_hints")
    if send_hints is not None:
        send_hints([("Link", "</style.css>; rel=preload; as=style")])
    time.sleep(0.1)  # the slow part: rendering the page
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]
