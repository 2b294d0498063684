"""The wire format alone: TLV values, message frames, errors crossing the wire."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunicorn.dirty import protocol, tlv
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyError,
    DirtyProtocolError,
    DirtyTimeoutError,
    DirtyWorkerError,
    StashKeyNotFoundError,
)

# Bytes as gunicorn 27.0.1 writes them (its encoder run on the same values).
UPSTREAM_REQUEST = (
    b"GD\x01\x01\x00\x00\x00c\x00\x00\x00\x00\x00\x00\x00\x07!\x00\x00\x00\x04"
    b"\x11\x00\x00\x00\x08app_path\x11\x00\x00\x00\x03m:C\x11\x00\x00\x00\x06action"
    b"\x11\x00\x00\x00\x03act\x11\x00\x00\x00\x04args \x00\x00\x00\x01"
    b"\x05\x00\x00\x00\x00\x00\x00\x00\x01\x11\x00\x00\x00\x06kwargs!\x00\x00\x00\x01"
    b"\x11\x00\x00\x00\x01a\x05\x00\x00\x00\x00\x00\x00\x00\x02"
)
UPSTREAM_END = b"GD\x01\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.binary(max_size=64)
    | st.text(max_size=32),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
def test_tlv_round_trip(value: Any) -> None:
    assert tlv.decode(tlv.encode(value)) == value


def test_bytes_match_gunicorn() -> None:
    assert protocol.encode_request(7, "m:C", "act", (1,), {"a": 2}) == UPSTREAM_REQUEST
    assert protocol.encode_end(7) == UPSTREAM_END
    message = protocol.decode_message(UPSTREAM_REQUEST)
    assert message == {
        "type": "request", "id": 7, "app_path": "m:C", "action": "act",
        "args": [1], "kwargs": {"a": 2},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "Unsupported type for TLV encoding: object"),
        ({1, 2}, "Unsupported type for TLV encoding: set"),
        (2**63, "Integer out of the 64-bit range"),
    ],
)
def test_values_the_codec_cannot_carry(value: Any, message: str) -> None:
    with pytest.raises(DirtyProtocolError, match=message):
        tlv.encode(value)


def test_nesting_and_size_caps() -> None:
    deep: Any = []
    for _ in range(tlv.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(DirtyProtocolError, match="nested deeper than 64"):
        tlv.encode(deep)
    with pytest.raises(DirtyProtocolError, match="Message too large"):
        protocol.frame(protocol.MSG_TYPE_CHUNK, 1, b"x" * (protocol.MAX_MESSAGE_SIZE + 1))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x99", "Unknown TLV type: 0x99"),
        (b"\x11\x00\x00\x00\x05ab", "Truncated TLV value"),
        (b"\x05\x00\x00", "Truncated TLV value"),
        (b"\x11\x00\x00\x00\x01\xff", "Invalid UTF-8"),
        (b"\x00\x00", "Trailing bytes"),
        (b"\x21\x00\x00\x00\x01\x05" + b"\x00" * 8 + b"\x00", "dict key is not a string"),
        (b"\x20\xff\xff\xff\xff", "TLV list too large"),
    ],
)
def test_bad_tlv_bytes(data: bytes, message: str) -> None:
    with pytest.raises(DirtyProtocolError, match=message):
        tlv.decode(data)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"XX\x01\x01" + struct.pack(">IQ", 0, 1), "Invalid magic"),
        (b"GD\x02\x01" + struct.pack(">IQ", 0, 1), "Unsupported protocol version: 2"),
        (b"GD\x01\x09" + struct.pack(">IQ", 0, 1), "Unknown message type: 0x09"),
        (b"GD\x01\x01" + struct.pack(">IQ", 64 * 1024 * 1024 + 1, 1), "Message too large"),
    ],
)
def test_bad_headers(header: bytes, message: str) -> None:
    with pytest.raises(DirtyProtocolError, match=message):
        protocol.FrameReader().feed(header)


def test_frame_reader_any_split() -> None:
    stream = UPSTREAM_REQUEST + UPSTREAM_END + protocol.encode_chunk(9, b"z" * 100)
    for split in range(len(stream) + 1):
        reader = protocol.FrameReader()
        found = reader.feed(stream[:split]) + reader.feed(stream[split:])
        assert [(t, i) for t, i, _ in found] == [(1, 7), (5, 7), (4, 9)]
        assert b"".join(raw for _, _, raw in found) == stream
        assert reader.pending == 0


def test_relabel_and_app_path() -> None:
    relabelled = protocol.with_request_id(UPSTREAM_REQUEST, 2**40)
    assert protocol.parse_header(relabelled) == (1, len(UPSTREAM_REQUEST) - 16, 2**40)
    assert relabelled[16:] == UPSTREAM_REQUEST[16:]
    assert protocol.request_app_path(UPSTREAM_REQUEST) == "m:C"
    other_order = protocol.frame(1, 1, tlv.encode({"action": "a", "app_path": "x:Y"}))
    assert protocol.request_app_path(other_order) == "x:Y"
    with pytest.raises(DirtyProtocolError, match="Request without an app_path"):
        protocol.request_app_path(protocol.frame(1, 1, tlv.encode({"action": "a"})))


@pytest.mark.parametrize(
    "error",
    [
        DirtyTimeoutError("slow", timeout=3),
        DirtyWorkerError("died", worker_id=12),
        DirtyAppError("bad", app_path="a:B", action="go", traceback="tb"),
        DirtyAppNotFoundError("a:B"),
        StashKeyNotFoundError("t", "k"),
    ],
)
def test_errors_cross_the_wire(error: DirtyError) -> None:
    raw = protocol.encode_error(5, error)
    with pytest.raises(type(error)) as info:
        protocol.final_result(protocol.MSG_TYPE_ERROR, raw)
    rebuilt = info.value
    assert rebuilt.message == error.message
    assert rebuilt.details == error.details
    assert str(rebuilt) == str(error)


def test_unknown_error_type_stays_a_dirty_error() -> None:
    error = DirtyError.from_dict({"error_type": "SomethingNew", "message": "m", "details": {}})
    assert type(error) is DirtyError
    assert error.details["error_type"] == "SomethingNew"
