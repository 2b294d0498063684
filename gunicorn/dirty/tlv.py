"""The TLV codec of dirty-arbiter payloads (gunicorn's wire format).

Each value is one type byte followed by its body, big-endian:

====  =========  ==============================================
0x00  None       no body
0x01  bool       1 byte (0 or 1)
0x05  int        8 bytes, signed
0x06  float      8 bytes, IEEE 754 double
0x10  bytes      4-byte length, then the bytes
0x11  str        4-byte length, then UTF-8
0x20  list       4-byte count, then the items (tuples travel as lists)
0x21  dict       4-byte count, then key (a str value) and value pairs
====  =========  ==============================================
"""

from __future__ import annotations

import struct
from typing import Any

from gunicorn.dirty.errors import DirtyProtocolError

TYPE_NONE = 0x00
TYPE_BOOL = 0x01
TYPE_INT64 = 0x05
TYPE_FLOAT64 = 0x06
TYPE_BYTES = 0x10
TYPE_STRING = 0x11
TYPE_LIST = 0x20
TYPE_DICT = 0x21

MAX_STRING_SIZE = 64 * 1024 * 1024
MAX_BYTES_SIZE = 64 * 1024 * 1024
MAX_LIST_SIZE = 1024 * 1024
MAX_DICT_SIZE = 1024 * 1024
#: Nesting deeper than this is refused (it would exhaust the stack while decoding).
MAX_DEPTH = 64

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1

_pack_q = struct.Struct(">q").pack
_pack_d = struct.Struct(">d").pack
_pack_len = struct.Struct(">I").pack
_unpack_q = struct.Struct(">q").unpack_from
_unpack_d = struct.Struct(">d").unpack_from
_unpack_len = struct.Struct(">I").unpack_from


def encode(value: Any) -> bytes:
    """The TLV bytes of ``value``; DirtyProtocolError names what cannot be carried."""
    return b"".join(encode_parts(value))


def encode_parts(value: Any) -> list[bytes]:
    """The TLV bytes of ``value`` as pieces (joined once, with the message header)."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return out


def _encode_str(text: str, out: list[bytes]) -> None:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_STRING_SIZE:
        raise DirtyProtocolError(f"String too large: {len(data)} bytes (max {MAX_STRING_SIZE})")
    out.append(b"\x11" + _pack_len(len(data)) + data)


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    kind = type(value)
    if kind is str:
        _encode_str(value, out)
    elif value is None:
        out.append(b"\x00")
    elif kind is bool:
        out.append(b"\x01\x01" if value else b"\x01\x00")
    elif kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise DirtyProtocolError(f"Integer out of the 64-bit range: {value}")
        out.append(b"\x05" + _pack_q(value))
    elif kind is float:
        out.append(b"\x06" + _pack_d(value))
    elif kind is bytes or kind is bytearray or kind is memoryview:
        data = bytes(value)
        if len(data) > MAX_BYTES_SIZE:
            raise DirtyProtocolError(f"Bytes too large: {len(data)} bytes (max {MAX_BYTES_SIZE})")
        out.append(b"\x10" + _pack_len(len(data)))
        out.append(data)
    elif kind is dict or isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise DirtyProtocolError(f"Value nested deeper than {MAX_DEPTH} levels")
        if len(value) > MAX_DICT_SIZE:
            raise DirtyProtocolError(f"Dict too large: {len(value)} items (max {MAX_DICT_SIZE})")
        out.append(b"\x21" + _pack_len(len(value)))
        for key, item in value.items():
            _encode_str(key if type(key) is str else str(key), out)
            _encode(item, out, depth + 1)
    elif kind is list or kind is tuple or isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise DirtyProtocolError(f"Value nested deeper than {MAX_DEPTH} levels")
        if len(value) > MAX_LIST_SIZE:
            raise DirtyProtocolError(f"List too large: {len(value)} items (max {MAX_LIST_SIZE})")
        out.append(b"\x20" + _pack_len(len(value)))
        for item in value:
            _encode(item, out, depth + 1)
    elif isinstance(value, bool):
        out.append(b"\x01\x01" if value else b"\x01\x00")
    elif isinstance(value, int):
        _encode(int(value), out, depth)
    elif isinstance(value, float):
        out.append(b"\x06" + _pack_d(float(value)))
    elif isinstance(value, str):
        _encode_str(str(value), out)
    else:
        raise DirtyProtocolError(f"Unsupported type for TLV encoding: {kind.__name__}")


def decode(data: bytes | memoryview) -> Any:
    """The value encoded in ``data``, which must hold exactly one value."""
    view = memoryview(data)
    value, end = _decode(view, 0, 0)
    if end != len(view):
        raise DirtyProtocolError(f"Trailing bytes after TLV value: {len(view) - end}")
    return value


def _need(view: memoryview, offset: int, size: int) -> None:
    if offset + size > len(view):
        raise DirtyProtocolError(
            f"Truncated TLV value: need {size} bytes at offset {offset}, have {len(view) - offset}"
        )


def _decode(view: memoryview, offset: int, depth: int) -> tuple[Any, int]:
    _need(view, offset, 1)
    kind = view[offset]
    offset += 1
    if kind in (TYPE_STRING, TYPE_BYTES):
        _need(view, offset, 4)
        (size,) = _unpack_len(view, offset)
        offset += 4
        _need(view, offset, size)
        raw = view[offset : offset + size]
        if kind == TYPE_BYTES:
            return raw.tobytes(), offset + size
        try:
            return str(raw, "utf-8", "surrogatepass"), offset + size
        except UnicodeDecodeError as exc:
            raise DirtyProtocolError(f"Invalid UTF-8 in TLV string: {exc}") from None
    if kind == TYPE_INT64:
        _need(view, offset, 8)
        return _unpack_q(view, offset)[0], offset + 8
    if kind == TYPE_NONE:
        return None, offset
    if kind == TYPE_BOOL:
        _need(view, offset, 1)
        return view[offset] != 0, offset + 1
    if kind == TYPE_FLOAT64:
        _need(view, offset, 8)
        return _unpack_d(view, offset)[0], offset + 8
    if kind in (TYPE_LIST, TYPE_DICT):
        if depth >= MAX_DEPTH:
            raise DirtyProtocolError(f"TLV value nested deeper than {MAX_DEPTH} levels")
        _need(view, offset, 4)
        (count,) = _unpack_len(view, offset)
        offset += 4
        if kind == TYPE_LIST:
            if count > MAX_LIST_SIZE:
                raise DirtyProtocolError(f"TLV list too large: {count} items")
            items = []
            for _ in range(count):
                item, offset = _decode(view, offset, depth + 1)
                items.append(item)
            return items, offset
        if count > MAX_DICT_SIZE:
            raise DirtyProtocolError(f"TLV dict too large: {count} items")
        result = {}
        for _ in range(count):
            key, offset = _decode(view, offset, depth + 1)
            if type(key) is not str:
                raise DirtyProtocolError("TLV dict key is not a string")
            result[key], offset = _decode(view, offset, depth + 1)
        return result, offset
    raise DirtyProtocolError(f"Unknown TLV type: 0x{kind:02x}")


class TLVEncoder:
    """gunicorn's class interface to the codec."""

    @staticmethod
    def encode(value: Any) -> bytes:
        return encode(value)

    @staticmethod
    def decode(data: bytes | memoryview, offset: int = 0) -> tuple[Any, int]:
        """The value at ``offset`` and the offset just after it."""
        return _decode(memoryview(data), offset, 0)

    @staticmethod
    def decode_full(data: bytes) -> Any:
        return decode(data)
