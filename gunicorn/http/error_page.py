"""The small HTML body of the error responses the server writes itself (HTTP/1 and HTTP/2).

A client error (4xx) says what was wrong with the request; a server error (5xx) says
nothing about the server: its details belong in the error log, not in the response.
"""

from __future__ import annotations


def error_page(status: int, reason: bytes, detail: str) -> bytes:
    """The HTML body for ``status`` and its ``reason`` phrase; ``detail`` is shown
    (escaped) for a client error and dropped for a server error."""
    if status >= 500:
        detail = ""
    detail = detail.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        b"<!DOCTYPE html><html><head><title>%d %s</title></head>"
        b"<body><h1>%d %s</h1><p>%s</p></body></html>\n"
        % (status, reason, status, reason, detail.encode("ascii", "backslashreplace"))
    )


def body_length(response: bytes) -> int:
    """The body length of a whole HTTP/1 response as ``error_response`` frames it (for the
    access log); 0 for no response."""
    return len(response) - response.find(b"\r\n\r\n") - 4 if response else 0
