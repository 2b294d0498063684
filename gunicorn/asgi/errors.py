"""Errors the ASGI adapters raise into applications."""

from __future__ import annotations


class ClientDisconnected(OSError):
    """``send()`` after the client is gone (ASGI spec 2.4: an ``OSError`` subclass), for
    HTTP and WebSockets alike."""
