"""HPACK (RFC 7541) for the server: a stateless encoder with cached blocks, and a decoder
that remembers blocks which leave its dynamic table unchanged.

The encoder never uses the dynamic table: a field in the static table is sent indexed
(§6.1), any other as a literal without indexing (§6.2.2), its name indexed when the
static table has it; a never-indexed field (``NeverIndexedHeaderTuple``) as such
(§6.2.3). A block then depends only on its fields, so blocks are cached process-wide,
keyed by the field list (the Date value changes once a second), and no block changes
the peer's decoding state.

The decoder is ``hpack``'s, whose errors end the connection with COMPRESSION_ERROR
(RFC 9113 §4.3). A block made only of indexed fields and literals without indexing
does not change the dynamic table; while the table stays as it was, the same block
decodes to the same fields, so the last few such blocks are remembered. A client that
repeats a request (h2load, a poller, a health check) is then decoded by one lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError
from hpack import Decoder, Encoder
from hpack.exceptions import HPACKError, OversizedHeaderListError
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.struct import HeaderTuple, HeaderWeaklyTyped
from hpack.table import HeaderTable

Field = tuple[bytes, bytes]

# RFC 7541 Appendix A: index of each whole field, and the lowest index of each name.
_STATIC_FIELDS: dict[Field, int] = {}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, _field in enumerate(HeaderTable.STATIC_TABLE, 1):
    _STATIC_FIELDS.setdefault(_field, _index)
    _STATIC_NAMES.setdefault(_field[0], _index)

_INDEXED = 0x80  # §6.1
_NOT_INDEXED = 0x00  # §6.2.2
_NEVER_INDEXED = 0x10  # §6.2.3
_SIZE_UPDATE = 0x20  # §6.3
_HUFFMAN = 0x80  # §5.2: the H bit of a string literal

# Decoded blocks remembered per connection: only small ones (the fields of a remembered
# block stay alive with it), a few at a time.
_DECODED_MAX = 8
_DECODED_MAX_BYTES = 256
_DECODED_MAX_FIELDS = 48

# RFC 7541 Appendix B: each octet's Huffman code and its length in bits.
_HUFFMAN_CODES = tuple(zip(REQUEST_CODES[:256], REQUEST_CODES_LENGTH[:256], strict=True))

# Process-wide caches (blocks and fields depend on nothing else). Cleared when full.
_BLOCKS: dict[tuple[Field, ...], bytes] = {}
_BLOCKS_MAX = 512
_BLOCK_MAX_BYTES = 1024
_FIELDS: dict[Field, bytes] = {}
_FIELDS_MAX = 2048
_FIELD_MAX_BYTES = 256


def encode_integer(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """RFC 7541 §5.1: ``value`` with an N-bit prefix, the high bits from ``first_byte``."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = bytearray((first_byte | limit,))
    value -= limit
    while value >= 0x80:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def huffman_encode(data: bytes) -> bytes:
    """RFC 7541 §5.2: the Huffman code of ``data``, padded with the EOS prefix (1 bits)."""
    codes = _HUFFMAN_CODES
    out = b""
    acc = bits = 0
    # Whole octets leave the accumulator every 64 input octets: shifting one ever
    # longer integer would make long values quadratic.
    for start in range(0, len(data), 64):
        for octet in data[start : start + 64]:
            code, length = codes[octet]
            acc = (acc << length) | code
            bits += length
        spare = bits & 7
        out += (acc >> spare).to_bytes(bits >> 3, "big")
        acc &= (1 << spare) - 1
        bits = spare
    if bits:
        pad = 8 - bits
        out += ((acc << pad) | ((1 << pad) - 1)).to_bytes(1, "big")
    return out


def encode_string(data: bytes, huffman: bool = True) -> bytes:
    """RFC 7541 §5.2: a length-prefixed literal, Huffman-coded when that is shorter."""
    if huffman and data:
        coded = huffman_encode(data)
        if len(coded) < len(data):
            return encode_integer(len(coded), 7, _HUFFMAN) + coded
    return encode_integer(len(data), 7) + data


def encode_field(name: bytes, value: bytes, sensitive: bool = False, huffman: bool = True) -> bytes:
    """One field without touching any dynamic table: indexed if the static table holds
    it whole, else a literal (never indexed when ``sensitive``)."""
    if not sensitive:
        index = _STATIC_FIELDS.get((name, value))
        if index is not None:
            return encode_integer(index, 7, _INDEXED)
    kind = _NEVER_INDEXED if sensitive else _NOT_INDEXED
    index = _STATIC_NAMES.get(name, 0)
    if index:
        head = encode_integer(index, 4, kind)
    else:
        head = bytes((kind,)) + encode_string(name, huffman)
    return head + encode_string(value, huffman)


def _cached_field(field: Field) -> bytes:
    encoded = _FIELDS.get(field)
    if encoded is None:
        encoded = encode_field(field[0], field[1])
        if len(encoded) <= _FIELD_MAX_BYTES:
            if len(_FIELDS) >= _FIELDS_MAX:
                _FIELDS.clear()
            _FIELDS[field] = encoded
    return encoded


def _field_parts(
    header: HeaderWeaklyTyped | tuple[bytes, bytes, bool],
) -> tuple[bytes, bytes, bool]:
    """Name, value and sensitivity of any field form ``hpack.Encoder`` accepts."""
    if isinstance(header, HeaderTuple):
        sensitive = not header.indexable
    else:
        sensitive = len(header) > 2 and bool(header[2])
    name, value = header[0], header[1]
    if isinstance(name, str):
        name = name.encode("utf-8")
    if isinstance(value, str):
        value = value.encode("utf-8")
    return name, value, sensitive


class ServerEncoder(Encoder):
    """``hpack.Encoder``'s interface, encoding statelessly (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._table_size = self.header_table.maxsize
        self._size_update = b""

    @property
    def header_table_size(self) -> int:
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        # The peer's SETTINGS_HEADER_TABLE_SIZE. The dynamic table stays empty, but a
        # limit below its current size must still be acknowledged by a size update at
        # the start of the next block (§4.2; decoders such as nghttp2 wait for it).
        # A larger limit is not taken up: the table is never used.
        if value < self._table_size:
            self._table_size = value
            self._size_update = encode_integer(value, 5, _SIZE_UPDATE)

    def encode(
        self,
        headers: Iterable[
            HeaderTuple
            | tuple[bytes | str, bytes | str]
            | tuple[bytes | str, bytes | str, bool | None]
        ]
        | dict[bytes | str, bytes | str],
        huffman: bool = True,
    ) -> bytes:
        fields = tuple(headers.items() if isinstance(headers, dict) else headers)
        block = _BLOCKS.get(fields)  # type: ignore[arg-type]
        if block is None or not huffman or not _no_header_tuples(fields):
            block = _encode_block(fields, huffman)
        if self._size_update:
            block = self._size_update + block
            self._size_update = b""
        return block


def _no_header_tuples(fields: tuple[object, ...]) -> bool:
    """A cached block may be used: a ``NeverIndexedHeaderTuple`` equals the plain tuple
    a block was cached for, but must not be encoded like it."""
    for field in fields:  # noqa: SIM110 (all() with a generator is slower here)
        if type(field) is not tuple:
            return False
    return True


def _cacheable(fields: tuple[object, ...]) -> bool:
    for field in fields:
        if (
            type(field) is not tuple
            or len(field) != 2
            or type(field[0]) is not bytes
            or type(field[1]) is not bytes
        ):
            return False
    return True


def _encode_block(fields: tuple[object, ...], huffman: bool) -> bytes:
    if huffman and _cacheable(fields):
        block = b"".join([_cached_field(field) for field in fields])  # type: ignore[arg-type]
        if len(block) <= _BLOCK_MAX_BYTES:
            if len(_BLOCKS) >= _BLOCKS_MAX:
                _BLOCKS.clear()
            _BLOCKS[fields] = block  # type: ignore[index]
        return block
    parts = [_field_parts(field) for field in fields]  # type: ignore[arg-type]
    return b"".join(
        [encode_field(name, value, sensitive, huffman) for name, value, sensitive in parts]
    )


class CompressionError(ProtocolError):
    """A field block that HPACK cannot decode (RFC 9113 §4.3)."""

    error_code = ErrorCodes.COMPRESSION_ERROR


class ServerDecoder(Decoder):
    """An HPACK decoder whose decoding errors end the connection with COMPRESSION_ERROR,
    remembering blocks that leave the dynamic table unchanged (see the module docstring).

    ``h2`` turns every ``hpack`` error into a PROTOCOL_ERROR; an ``h2`` ``ProtocolError``
    raised here passes through its handler and keeps its code. An oversized header list
    is left to ``h2`` (a header list bomb: ENHANCE_YOUR_CALM)."""

    def __init__(self) -> None:
        super().__init__()
        self._decoded: dict[bytes, list[HeaderTuple]] = {}
        # The table state the remembered blocks were decoded against: its newest entry
        # (entries are only added at the front, and each is a new tuple, held here so
        # its identity cannot be reused), its length and the header list limit.
        self._newest: object = None
        self._entries = 0
        self._limit = self.max_header_list_size

    def decode(self, data: bytes, raw: bool = False) -> Iterable[HeaderTuple]:
        entries = self.header_table.dynamic_entries
        newest = entries[0] if entries else None
        decoded = self._decoded
        if (
            newest is not self._newest
            or len(entries) != self._entries
            or self.max_header_list_size != self._limit
        ):
            decoded.clear()
            self._newest = newest
            self._entries = len(entries)
            self._limit = self.max_header_list_size
        elif raw and type(data) is bytes:
            fields = decoded.get(data)
            if fields is not None:
                self._assert_valid_table_size()
                return list(fields)
        try:
            fields = cast("list[HeaderTuple]", super().decode(data, raw))
        except OversizedHeaderListError:
            raise
        except (HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise CompressionError(f"undecodable field block: {exc}") from exc
        if (
            raw
            and type(data) is bytes
            and 0 < len(data) <= _DECODED_MAX_BYTES
            and len(fields) <= _DECODED_MAX_FIELDS
            and data[0] & 0xE0 != _SIZE_UPDATE  # §4.2: a size update is only at the start
            and (entries[0] if entries else None) is newest
            and len(entries) == self._entries
        ):
            if len(decoded) >= _DECODED_MAX:
                decoded.clear()
            decoded[data] = list(fields)
        return fields
