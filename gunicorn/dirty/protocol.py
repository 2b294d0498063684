"""The dirty-arbiter wire format (gunicorn's): a 16-byte header, then a TLV payload.

Header ``>2sBBIQ``: magic ``GD``, version 1, message type, payload length (at most
64 MiB), request id. Payloads are TLV dicts (:mod:`gunicorn.dirty.tlv`):

- request: ``{app_path, action, args, kwargs}``; response: ``{result}``;
  error: ``{error: {error_type, message, details}}``; chunk: ``{data}``; end: empty;
- stash: ``{op, table, key?, value?, pattern?}``; status: empty; manage: ``{op, count}``.

This module only builds and parses bytes; the processes own the sockets.
"""

from __future__ import annotations

import struct
from typing import Any

from gunicorn.dirty import tlv
from gunicorn.dirty.errors import DirtyError, DirtyProtocolError

MAGIC = b"GD"
VERSION = 1

MSG_TYPE_REQUEST = 0x01
MSG_TYPE_RESPONSE = 0x02
MSG_TYPE_ERROR = 0x03
MSG_TYPE_CHUNK = 0x04
MSG_TYPE_END = 0x05
MSG_TYPE_STASH = 0x10
MSG_TYPE_STATUS = 0x11
MSG_TYPE_MANAGE = 0x12

MSG_TYPE_TO_STR = {
    MSG_TYPE_REQUEST: "request",
    MSG_TYPE_RESPONSE: "response",
    MSG_TYPE_ERROR: "error",
    MSG_TYPE_CHUNK: "chunk",
    MSG_TYPE_END: "end",
    MSG_TYPE_STASH: "stash",
    MSG_TYPE_STATUS: "status",
    MSG_TYPE_MANAGE: "manage",
}
MSG_TYPE_FROM_STR = {name: code for code, name in MSG_TYPE_TO_STR.items()}
#: Messages that end a request (a stream ends with END or ERROR).
FINAL_TYPES = frozenset({MSG_TYPE_RESPONSE, MSG_TYPE_ERROR, MSG_TYPE_END})

STASH_OP_PUT = 1
STASH_OP_GET = 2
STASH_OP_DELETE = 3
STASH_OP_KEYS = 4
STASH_OP_CLEAR = 5
STASH_OP_INFO = 6
STASH_OP_ENSURE = 7
STASH_OP_DELETE_TABLE = 8
STASH_OP_TABLES = 9
STASH_OP_EXISTS = 10

MANAGE_OP_ADD = 1
MANAGE_OP_REMOVE = 2

HEADER_FORMAT = ">2sBBIQ"
HEADER = struct.Struct(HEADER_FORMAT)
HEADER_SIZE = HEADER.size
MAX_MESSAGE_SIZE = 64 * 1024 * 1024

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from
_ID = struct.Struct(">Q")


def frame(msg_type: int, request_id: int, payload: bytes = b"") -> bytes:
    """One message: header and payload."""
    if len(payload) > MAX_MESSAGE_SIZE:
        raise DirtyProtocolError(
            f"Message too large: {len(payload)} bytes (max {MAX_MESSAGE_SIZE})"
        )
    return _pack_header(MAGIC, VERSION, msg_type, len(payload), request_id) + payload


def frame_value(msg_type: int, request_id: int, value: Any) -> bytes:
    """One message whose payload is the TLV encoding of ``value`` (a single copy)."""
    parts = tlv.encode_parts(value)
    length = sum(map(len, parts))
    if length > MAX_MESSAGE_SIZE:
        raise DirtyProtocolError(f"Message too large: {length} bytes (max {MAX_MESSAGE_SIZE})")
    parts.insert(0, _pack_header(MAGIC, VERSION, msg_type, length, request_id))
    return b"".join(parts)


def parse_header(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int, int]:
    """``(msg_type, payload_length, request_id)`` of the header at ``offset``."""
    magic, version, msg_type, length, request_id = _unpack_header(data, offset)
    if magic != MAGIC:
        raise DirtyProtocolError(f"Invalid magic: {magic!r}", raw_data=bytes(magic))
    if version != VERSION:
        raise DirtyProtocolError(f"Unsupported protocol version: {version}")
    if msg_type not in MSG_TYPE_TO_STR:
        raise DirtyProtocolError(f"Unknown message type: 0x{msg_type:02x}")
    if length > MAX_MESSAGE_SIZE:
        raise DirtyProtocolError(f"Message too large: {length} bytes (max {MAX_MESSAGE_SIZE})")
    return msg_type, length, request_id


def with_request_id(message: bytes | bytearray | memoryview, request_id: int) -> bytearray:
    """``message`` (header and payload) relabelled with another request id (one copy)."""
    relabelled = bytearray(message)
    _ID.pack_into(relabelled, 8, request_id)
    return relabelled


class FrameReader:
    """Splits a byte stream into messages; feed it whatever the socket returned.

    :meth:`feed` returns complete messages as ``(msg_type, request_id, raw)`` where
    ``raw`` is the whole message (header included) so it can be relayed unchanged.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        buffer = self._buffer
        if not buffer and len(data) >= HEADER_SIZE:
            # Fast path: one whole message in one read.
            msg_type, length, request_id = parse_header(data)
            if len(data) == HEADER_SIZE + length:
                return [(msg_type, request_id, data)]
        buffer += data
        found: list[tuple[int, int, bytes]] = []
        offset = 0
        size = len(buffer)
        while size - offset >= HEADER_SIZE:
            msg_type, length, request_id = parse_header(buffer, offset)
            end = offset + HEADER_SIZE + length
            if end > size:
                break
            found.append((msg_type, request_id, bytes(buffer[offset:end])))
            offset = end
        if offset:
            del buffer[:offset]
        return found

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message kept for the next read."""
        return len(self._buffer)


def payload_of(raw: bytes) -> Any:
    """The decoded payload of a whole message (an empty payload is ``{}``)."""
    if len(raw) == HEADER_SIZE:
        return {}
    return tlv.decode(memoryview(raw)[HEADER_SIZE:])


def request_app_path(raw: bytes) -> str:
    """The ``app_path`` of a request message, read without decoding the arguments."""
    view = memoryview(raw)[HEADER_SIZE:]
    try:
        key, offset = tlv.TLVEncoder.decode(view, 5) if view[0] == tlv.TYPE_DICT else (None, 0)
        if key == "app_path":
            value, _ = tlv.TLVEncoder.decode(view, offset)
            if isinstance(value, str):
                return value
    except (IndexError, DirtyProtocolError):
        pass
    payload = payload_of(raw)
    app_path = payload.get("app_path") if isinstance(payload, dict) else None
    if not isinstance(app_path, str):
        raise DirtyProtocolError("Request without an app_path")
    return app_path


# -- encoders -----------------------------------------------------------------------------


def encode_request(
    request_id: int,
    app_path: str,
    action: str,
    args: tuple[Any, ...] | list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> bytes:
    body = {"app_path": app_path, "action": action, "args": args or [], "kwargs": kwargs or {}}
    return frame_value(MSG_TYPE_REQUEST, request_id, body)


def encode_response(request_id: int, result: Any) -> bytes:
    return frame_value(MSG_TYPE_RESPONSE, request_id, {"result": result})


def encode_error(request_id: int, error: DirtyError | dict[str, Any]) -> bytes:
    body = error.to_dict() if isinstance(error, DirtyError) else error
    return frame_value(MSG_TYPE_ERROR, request_id, {"error": body})


def encode_chunk(request_id: int, data: Any) -> bytes:
    return frame_value(MSG_TYPE_CHUNK, request_id, {"data": data})


def encode_end(request_id: int) -> bytes:
    return frame(MSG_TYPE_END, request_id)


def encode_status(request_id: int, status: dict[str, Any] | None = None) -> bytes:
    return frame(MSG_TYPE_STATUS, request_id, tlv.encode(status) if status is not None else b"")


def encode_manage(request_id: int, op: int, count: int = 1) -> bytes:
    return frame(MSG_TYPE_MANAGE, request_id, tlv.encode({"op": op, "count": count}))


def encode_stash(
    request_id: int,
    op: int,
    table: str,
    key: Any = None,
    value: Any = None,
    pattern: str | None = None,
) -> bytes:
    body: dict[str, Any] = {"op": op, "table": table}
    if key is not None:
        body["key"] = key
    if value is not None:
        body["value"] = value
    if pattern is not None:
        body["pattern"] = pattern
    return frame(MSG_TYPE_STASH, request_id, tlv.encode(body))


def decode_message(raw: bytes) -> dict[str, Any]:
    """A whole message as a dict with its ``type`` name and ``id`` (gunicorn's layout)."""
    msg_type, length, request_id = parse_header(raw)
    if len(raw) != HEADER_SIZE + length:
        raise DirtyProtocolError(f"Message length mismatch: {len(raw) - HEADER_SIZE} != {length}")
    payload = payload_of(raw)
    if not isinstance(payload, dict):
        raise DirtyProtocolError("Message payload is not a dict")
    return {"type": MSG_TYPE_TO_STR[msg_type], "id": request_id, **payload}


def error_from_message(raw: bytes) -> DirtyError:
    """The error carried by an ERROR message."""
    payload = payload_of(raw)
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        return DirtyProtocolError("Error message without an error")
    return DirtyError.from_dict(body)


def final_result(msg_type: int, raw: bytes) -> Any:
    """The result of a RESPONSE message; an ERROR message raises its error."""
    if msg_type == MSG_TYPE_RESPONSE:
        payload = payload_of(raw)
        return payload.get("result") if isinstance(payload, dict) else None
    if msg_type == MSG_TYPE_ERROR:
        raise error_from_message(raw)
    raise DirtyProtocolError(f"Unexpected message type 0x{msg_type:02x} for a call")


def chunk_data(raw: bytes) -> Any:
    """The data of a CHUNK message."""
    payload = payload_of(raw)
    return payload.get("data") if isinstance(payload, dict) else None


class DirtyProtocol:
    """gunicorn's class interface to the codec (static methods)."""

    HEADER_SIZE = HEADER_SIZE
    MAX_MESSAGE_SIZE = MAX_MESSAGE_SIZE
    encode_request = staticmethod(encode_request)
    encode_response = staticmethod(encode_response)
    encode_error = staticmethod(encode_error)
    encode_chunk = staticmethod(encode_chunk)
    encode_end = staticmethod(encode_end)
    encode_status = staticmethod(encode_status)
    encode_manage = staticmethod(encode_manage)
    encode_stash = staticmethod(encode_stash)
    decode_message = staticmethod(decode_message)

    @staticmethod
    def encode_header(msg_type: int, request_id: int, payload_length: int) -> bytes:
        return _pack_header(MAGIC, VERSION, msg_type, payload_length, request_id)

    @staticmethod
    def decode_header(data: bytes) -> tuple[int, int, int]:
        """``(msg_type, request_id, payload_length)`` (gunicorn's order)."""
        msg_type, length, request_id = parse_header(data)
        return msg_type, request_id, length
