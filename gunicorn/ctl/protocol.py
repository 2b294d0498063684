"""The control socket's wire format (gunicorn 27's): frames of a 4-byte big-endian length
and that many bytes of UTF-8 JSON, at most 16 MiB.

A request is ``{"id": ..., "command": "show workers", "args": [...]}``; the answer carries
the same id and ``"status": "ok"`` with ``"data"``, or ``"status": "error"`` with ``"error"``.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MAX_MESSAGE = 16 * 1024 * 1024
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that cannot be read; the connection cannot be trusted after it."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame holding ``message`` as JSON."""
    payload = json.dumps(message, separators=(",", ":"), default=str).encode("utf-8")
    if len(payload) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE}")
    return _LENGTH.pack(len(payload)) + payload


def ok(request_id: Any, data: Any) -> dict[str, Any]:
    return {"id": request_id, "status": "ok", "data": data}


def error(request_id: Any, text: str) -> dict[str, Any]:
    return {"id": request_id, "status": "error", "error": text}


class FrameReader:
    """Incremental decoder: ``feed`` bytes, then take complete messages from ``messages``.

    The length prefix is checked before any payload is buffered, so a peer announcing
    4 GiB costs nothing: :class:`ProtocolError` is raised at once.
    """

    def __init__(self, limit: int = MAX_MESSAGE) -> None:
        self.limit = limit
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[dict[str, Any] | ProtocolError]:
        """Add ``data``; return the messages it completed, a frame that is not a JSON
        object as a ProtocolError in its place. A length over the limit raises
        ProtocolError: the stream cannot be followed after it."""
        self._buffer += data
        messages: list[dict[str, Any] | ProtocolError] = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > self.limit:
                raise ProtocolError(f"message length {length} exceeds the {self.limit} limit")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            try:
                messages.append(decode(payload))
            except ProtocolError as exc:
                messages.append(exc)
        return messages


def decode(payload: bytes) -> dict[str, Any]:
    """The JSON object of one frame (raises ProtocolError for anything else)."""
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message
