"""Inbound message limits and permessage-deflate (RFC 7692) as wsproto extensions.

Both sit in wsproto's frame layer, so a message is measured as its payload arrives:
``MessageLimit`` counts each data message's (decompressed) bytes and fails the
connection with 1009 once ``websocket_max_message_size`` is passed, and ``Deflate``
never inflates more than the room left under that limit, so a small compressed frame
cannot expand into a large allocation.
"""

from __future__ import annotations

import zlib

from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

_NO_RSV = RsvBits(False, False, False)
_RSV1 = RsvBits(True, False, False)
# RFC 7692 §7.2.1: a compressed message ends with an empty stored block, sent without
# its last four octets; the receiver appends them back before inflating.
_TAIL = b"\x00\x00\xff\xff"
# Messages shorter than this are sent uncompressed (RFC 7692 §6: RSV1 is per message).
MIN_COMPRESSED_SIZE = 128
# The window and memory of our compressor: at most what the client allows, and small
# enough that idle connections stay cheap (about 24 KiB each instead of 256 KiB).
_COMPRESS_WINDOW_BITS = 12
_COMPRESS_MEM_LEVEL = 5

Frames = FrameDecoder | FrameProtocol


class MessageLimit(Extension):
    """Counts the bytes of each incoming data message (never negotiated: always on)."""

    name = "x-gunicorn-message-limit"

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: no limit
        self.size = 0
        # With permessage-deflate a frame's length says nothing of the message's size.
        self.check_lengths = True
        self._in_data = False

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False

    def room(self) -> int | None:
        """Bytes the current message may still grow by (None: unlimited)."""
        if not self.limit:
            return None
        return max(self.limit - self.size, 0)

    def add(self, count: int) -> bool:
        """Count ``count`` more bytes of the current message; False once over the limit."""
        self.size += count
        return not self.limit or self.size <= self.limit

    def frame_inbound_header(
        self, proto: Frames, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            self._in_data = False
            return _NO_RSV
        self._in_data = True
        if opcode is not Opcode.CONTINUATION:
            self.size = 0
        if self.check_lengths and self.limit and self.size + payload_length > self.limit:
            return CloseReason.MESSAGE_TOO_BIG  # known from the header: fail at once
        return _NO_RSV

    def frame_inbound_payload_data(self, proto: Frames, data: bytes) -> bytes | CloseReason:
        if self._in_data and not self.add(len(data)):
            return CloseReason.MESSAGE_TOO_BIG
        return data


class Deflate(PerMessageDeflate):
    """wsproto's permessage-deflate with a bounded inflater and a small compressor."""

    def __init__(self, limit: MessageLimit, agreed: str) -> None:
        super().__init__()
        self._limit = limit
        limit.check_lengths = False
        self._inflater: zlib._Decompress | None = None
        self._deflater: zlib._Compress | None = None
        self._in_data = False
        self._in_compressed = False
        self._out_compressed = False
        self.finalize(agreed)  # takes the agreed parameters and enables the extension

    def frame_inbound_header(
        self, proto: Frames, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol() or opcode is Opcode.CONTINUATION:
            # RFC 7692 §6: RSV1 is set on the first frame of a message only.
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
            self._in_data = not opcode.iscontrol()
            return _RSV1
        self._in_data = True
        self._in_compressed = rsv.rsv1
        return _RSV1

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        inflater = self._inflater
        if inflater is None:
            # Raw deflate with the largest window inflates whatever window the client used.
            inflater = self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        room = self._limit.room()
        try:
            if room is None:
                return inflater.decompress(data)
            out = inflater.decompress(data, room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if inflater.unconsumed_tail or len(out) > room:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_payload_data(self, proto: Frames, data: bytes) -> bytes | CloseReason:
        if not self._in_data or not self._in_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: Frames, fin: bool) -> bytes | CloseReason | None:
        if not fin or not self._in_data or not self._in_compressed:
            return None
        self._in_compressed = False
        out = self._inflate(_TAIL)
        if isinstance(out, CloseReason):
            return out
        # MessageLimit does not see what is returned here: count it ourselves.
        if not self._limit.add(len(out)):
            return CloseReason.MESSAGE_TOO_BIG
        if self.client_no_context_takeover:
            self._inflater = None
        return out

    def frame_outbound(
        self, proto: Frames, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        if opcode.iscontrol():
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            self._out_compressed = len(data) >= MIN_COMPRESSED_SIZE or not fin
            if not self._out_compressed:
                return rsv, data
            rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        elif not self._out_compressed:
            return rsv, data
        deflater = self._deflater
        if deflater is None:
            bits = min(self.server_max_window_bits, _COMPRESS_WINDOW_BITS)
            deflater = self._deflater = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits, _COMPRESS_MEM_LEVEL
            )
        out = deflater.compress(data)
        if fin:
            out += deflater.flush(zlib.Z_SYNC_FLUSH)
            out = out[:-4]  # the _TAIL that Z_SYNC_FLUSH ends with
            if self.server_no_context_takeover:
                self._deflater = None
        return rsv, out


def negotiate(
    offers: list[tuple[str, list[tuple[str, str | None]]]], limit: MessageLimit
) -> tuple[Deflate, bytes] | None:
    """Accept the first permessage-deflate offer we can honour (RFC 7692 §5, §7.1): the
    extension and the Sec-WebSocket-Extensions value of the 101, or None."""
    for name, params in offers:
        if name.lower() != PerMessageDeflate.name:
            continue
        agreed = _agree(params)
        if agreed is not None:
            return Deflate(limit, agreed), agreed.encode("ascii")
    return None


def _agree(params: list[tuple[str, str | None]]) -> str | None:
    """The response to one offer, or None to decline it (§7: unknown, repeated or invalid
    parameters)."""
    seen: set[str] = set()
    answer = [PerMessageDeflate.name]
    for raw_name, value in params:
        name = raw_name.lower()
        if name in seen:
            return None
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                return None
            answer.append(name)  # client_no_context_takeover: we may drop the inflater
        elif name == "server_max_window_bits":
            # §7.1.2.1: the offer's value must come back (we compress with at most it).
            # zlib cannot compress with an 8-bit window: decline those offers.
            bits = _window_bits(value)
            if bits is None or bits < 9:
                return None
            answer.append(f"server_max_window_bits={bits}")
        elif name == "client_max_window_bits":
            # §7.1.2.2: a hint that the client supports it; we inflate any window.
            if value is not None and _window_bits(value) is None:
                return None
        else:
            return None
    return "; ".join(answer)


def _window_bits(value: str | None) -> int | None:
    if value is None or not value.isdigit() or value.startswith("0"):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None
