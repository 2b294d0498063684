"""HTTP/2 and HPACK on the wire, byte for byte, for tests that must send them wrong.

Frames are built by hand (RFC 9113 §4.1) so that lengths, stream ids, reserved bits, padding
and flags can lie; HPACK representations (RFC 7541 §5-6) likewise, for the field blocks
``hpack``'s encoder would never produce: invalid indexes, misplaced table size updates,
broken Huffman strings.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from enum import IntEnum

from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_WINDOW = 65535
DEFAULT_MAX_FRAME = 16384
MAX_WINDOW = 2**31 - 1


class FrameType(IntEnum):
    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class Flag:
    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class Setting(IntEnum):
    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


#: SETTINGS as a mapping, or as (identifier, value) pairs when a test repeats one.
Settings = Mapping[Setting, int] | Mapping[int, int] | Iterable[tuple[int, int]]


# ------------------------------------------------------------------------- frame bytes


def frame_bytes(
    frame_type: int,
    flags: int,
    stream_id: int,
    payload: bytes = b"",
    *,
    length: int | None = None,
    reserved_bit: bool = False,
) -> bytes:
    """One frame, byte for byte: ``length`` overrides the announced length (RFC 9113 §4.1)."""
    size = len(payload) if length is None else length
    sid = (stream_id & 0x7FFFFFFF) | (0x80000000 if reserved_bit else 0)
    return struct.pack(">I", size)[1:] + struct.pack(">BBI", frame_type, flags, sid) + payload


def settings_payload(settings: Settings) -> bytes:
    """Identifier/value pairs of a SETTINGS frame (repeats allowed when given as pairs)."""
    pairs = settings.items() if isinstance(settings, Mapping) else settings
    return b"".join(struct.pack(">HI", ident, value) for ident, value in pairs)


def priority_payload(depends_on: int, weight: int = 16, exclusive: bool = False) -> bytes:
    """The 5 priority bytes of HEADERS/PRIORITY; ``weight`` is 1..256 (RFC 9113 §5.3.2)."""
    dep = (depends_on & 0x7FFFFFFF) | (0x80000000 if exclusive else 0)
    return struct.pack(">IB", dep, weight - 1)


def padded(payload: bytes, pad_length: int, *, declared: int | None = None) -> bytes:
    """``payload`` with a Pad Length byte in front (``declared`` may lie) and zero padding."""
    announced = pad_length if declared is None else declared
    return bytes([announced]) + payload + b"\0" * pad_length


# ------------------------------------------------------------------------- hand HPACK

_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def hpack_int(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) whose first byte carries ``first_byte`` above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(data: bytes, *, huffman: bool = False, raw_huffman: bool = False) -> bytes:
    """An HPACK string literal (RFC 7541 §5.2); ``raw_huffman`` sends ``data`` as is, H bit set."""
    if huffman:
        data = _HUFFMAN.encode(data)
    flag = 0x80 if (huffman or raw_huffman) else 0
    return hpack_int(len(data), 7, flag) + data


def hpack_indexed(index: int) -> bytes:
    """Indexed Header Field Representation (RFC 7541 §6.1)."""
    return hpack_int(index, 7, 0x80)


def hpack_literal(
    name: bytes | int,
    value: bytes,
    *,
    mode: str = "without",
    huffman: bool = False,
) -> bytes:
    """A literal field (RFC 7541 §6.2): ``mode`` is ``incremental``, ``without`` or ``never``;
    an ``int`` name is an index into the tables."""
    first, bits = {"incremental": (0x40, 6), "without": (0x00, 4), "never": (0x10, 4)}[mode]
    if isinstance(name, int):
        head = hpack_int(name, bits, first)
    else:
        head = bytes([first]) + hpack_string(name, huffman=huffman)
    return head + hpack_string(value, huffman=huffman)


def hpack_table_size_update(size: int) -> bytes:
    """Dynamic Table Size Update (RFC 7541 §6.3)."""
    return hpack_int(size, 5, 0x20)


def hpack_block(headers: Iterable[tuple[str | bytes, str | bytes]]) -> bytes:
    """A header block of literals without indexing: leaves both dynamic tables untouched."""
    return b"".join(hpack_literal(_b(n), _b(v)) for n, v in headers)


def _b(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("latin-1")
