"""PROXY protocol v1 (text) and v2 (binary) headers, read from the start of a connection.

The header is sent once by a load balancer before any HTTP bytes and carries the
original client and proxy addresses. Wire formats follow HAProxy's "PROXY protocol"
specification (versions 1 and 2).
"""

from __future__ import annotations

import ipaddress
import struct

from gunicorn.http.errors import InvalidProxyLine

MODES = frozenset({"v1", "v2", "auto"})

V1_PREFIX = b"PROXY "
# Longest v1 line the specification allows, CRLF included.
V1_MAX_LINE = 107

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER_SIZE = 16
# Address block plus TLVs we accept after the fixed header.
V2_MAX_PAYLOAD = 2048

_V2_COMMANDS = {0x0: "LOCAL", 0x1: "PROXY"}
_V2_FAMILIES = {0x0: "UNSPEC", 0x1: "TCP4", 0x2: "TCP6", 0x3: "UNIX"}
# Transport nibble: 0 = UNSPEC, 1 = STREAM. DGRAM (2) cannot carry HTTP.
_V2_TRANSPORTS = frozenset({0x0, 0x1})
# Size of the address block each family needs.
_V2_ADDRESS_SIZES = {"UNSPEC": 0, "TCP4": 12, "TCP6": 36, "UNIX": 216}
_UNIX_PATH_SIZE = 108

_INET4 = struct.Struct("!4s4sHH")
_INET6 = struct.Struct("!16s16sHH")
_TLV_HEAD = struct.Struct("!BH")
_V2_HEAD = struct.Struct("!12sBBH")


class ProxyInfo:
    """What a PROXY header said about the connection.

    ``command`` is "PROXY" (addresses apply), "LOCAL" (v2 health check from the proxy
    itself) or "UNKNOWN" (v1 without addresses). ``family`` is "TCP4", "TCP6", "UNIX" or
    "UNSPEC". Addresses and ports are None when the header carries none; UNIX addresses
    are paths (abstract names start with "@") and have no ports.
    """

    __slots__ = ("command", "dst_addr", "dst_port", "family", "src_addr", "src_port", "version")
    _FIELDS = ("version", "command", "family", "src_addr", "src_port", "dst_addr", "dst_port")

    version: int
    command: str
    family: str
    src_addr: str | None
    src_port: int | None
    dst_addr: str | None
    dst_port: int | None

    def __init__(
        self,
        version: int,
        command: str,
        family: str,
        src_addr: str | None = None,
        src_port: int | None = None,
        dst_addr: str | None = None,
        dst_port: int | None = None,
    ) -> None:
        self.version = version
        self.command = command
        self.family = family
        self.src_addr = src_addr
        self.src_port = src_port
        self.dst_addr = dst_addr
        self.dst_port = dst_port

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProxyInfo):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"ProxyInfo({fields})"


def parse_proxy_header(buf: bytes | bytearray, mode: str) -> tuple[ProxyInfo | None, int] | None:
    """Parse a PROXY header at the start of ``buf``.

    ``mode`` is "v1", "v2" or "auto". Returns None when more bytes are needed,
    ``(info, consumed)`` for a complete header, and ``(None, 0)`` when ``buf`` does not
    start with a header of an accepted version (the bytes are then plain HTTP).
    Raises InvalidProxyLine for a malformed header.
    """
    if mode not in MODES:
        raise ValueError(f"unknown PROXY protocol mode: {mode!r}")
    if mode != "v1":
        if buf.startswith(V2_SIGNATURE):
            return _parse_v2(buf)
        if len(buf) < len(V2_SIGNATURE) and V2_SIGNATURE.startswith(buf):
            return None
    if mode != "v2":
        if buf.startswith(V1_PREFIX):
            return _parse_v1(buf)
        if len(buf) < len(V1_PREFIX) and V1_PREFIX.startswith(buf):
            return None
    return (None, 0)


def proxy_environ(info: ProxyInfo | None) -> dict[str, str | int]:
    """WSGI environ entries for a parsed header (empty when it carries no addresses).

    Values are strings, as CGI variables are: REMOTE_ADDR/REMOTE_PORT are the client's,
    PROXY_ADDR/PROXY_PORT the address the client connected to, PROXY_PROTOCOL the family.
    """
    if info is None or info.src_addr is None or info.dst_addr is None:
        return {}
    environ: dict[str, str | int] = {
        "PROXY_PROTOCOL": info.family,
        "REMOTE_ADDR": info.src_addr,
        "PROXY_ADDR": info.dst_addr,
    }
    if info.src_port is not None:
        environ["REMOTE_PORT"] = str(info.src_port)
    if info.dst_port is not None:
        environ["PROXY_PORT"] = str(info.dst_port)
    return environ


# -- version 1 ------------------------------------------------------------------------


def _parse_v1(buf: bytes | bytearray) -> tuple[ProxyInfo, int] | None:
    newline = buf.find(b"\n", 0, V1_MAX_LINE)
    if newline < 0:
        if len(buf) >= V1_MAX_LINE:
            raise InvalidProxyLine(f"PROXY v1 line longer than {V1_MAX_LINE} bytes")
        return None
    if buf[newline - 1] != 0x0D:
        raise InvalidProxyLine("PROXY v1 line ends with a bare LF")
    line = bytes(buf[: newline - 1])
    consumed = newline + 1
    if line == b"PROXY UNKNOWN" or line.startswith(b"PROXY UNKNOWN "):
        # The specification says to ignore whatever follows UNKNOWN.
        return ProxyInfo(1, "UNKNOWN", "UNSPEC"), consumed
    fields = line.split(b" ")
    if len(fields) != 6:
        raise InvalidProxyLine(f"PROXY v1 line has {len(fields)} fields, expected 6")
    _, family_field, src, dst, src_port, dst_port = fields
    if family_field == b"TCP4":
        family = "TCP4"
    elif family_field == b"TCP6":
        family = "TCP6"
    else:
        raise InvalidProxyLine(f"PROXY v1 unknown protocol {family_field!r}")
    return (
        ProxyInfo(
            1,
            "PROXY",
            family,
            _v1_address(src, family),
            _v1_port(src_port),
            _v1_address(dst, family),
            _v1_port(dst_port),
        ),
        consumed,
    )


def _v1_address(field: bytes, family: str) -> str:
    try:
        text = field.decode("ascii")
        if family == "TCP4":
            ipaddress.IPv4Address(text)
        else:
            # ipaddress accepts "%scope" suffixes, inet_pton (and the spec) do not.
            if "%" in text:
                raise ValueError(text)
            ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidProxyLine(f"PROXY v1 invalid {family} address {field!r}") from None
    return text


def _v1_port(field: bytes) -> int:
    valid = 0 < len(field) <= 5 and field.isdigit() and (field == b"0" or field[0] != 0x30)
    port = int(field) if valid else -1
    if not 0 <= port <= 0xFFFF:
        raise InvalidProxyLine(f"PROXY v1 invalid port {field!r}")
    return port


# -- version 2 ------------------------------------------------------------------------


def _parse_v2(buf: bytes | bytearray) -> tuple[ProxyInfo, int] | None:
    if len(buf) < V2_HEADER_SIZE:
        return None
    _, version_command, family_transport, length = _V2_HEAD.unpack_from(buf)
    if version_command >> 4 != 2:
        raise InvalidProxyLine(f"PROXY v2 unsupported version {version_command >> 4}")
    command = _V2_COMMANDS.get(version_command & 0x0F)
    if command is None:
        raise InvalidProxyLine(f"PROXY v2 unknown command {version_command & 0x0F}")
    if length > V2_MAX_PAYLOAD:
        raise InvalidProxyLine(f"PROXY v2 header length {length} exceeds {V2_MAX_PAYLOAD}")
    if command == "LOCAL":
        # Health checks from the proxy itself: family and addresses are ignored.
        if len(buf) < V2_HEADER_SIZE + length:
            return None
        return ProxyInfo(2, "LOCAL", "UNSPEC"), V2_HEADER_SIZE + length

    family = _V2_FAMILIES.get(family_transport >> 4)
    if family is None:
        raise InvalidProxyLine(f"PROXY v2 unknown address family {family_transport >> 4}")
    if family_transport & 0x0F not in _V2_TRANSPORTS:
        raise InvalidProxyLine(f"PROXY v2 unsupported transport {family_transport & 0x0F}")
    address_size = _V2_ADDRESS_SIZES[family]
    if length < address_size:
        raise InvalidProxyLine(f"PROXY v2 length {length} too short for a {family} address block")
    if len(buf) < V2_HEADER_SIZE + length:
        return None
    payload = bytes(buf[V2_HEADER_SIZE : V2_HEADER_SIZE + length])
    consumed = V2_HEADER_SIZE + length
    if family == "UNSPEC":
        # Unknown origin: the receiver keeps the real connection endpoints.
        return ProxyInfo(2, "PROXY", "UNSPEC"), consumed
    _check_tlvs(payload, address_size)
    return _v2_addresses(family, payload), consumed


def _v2_addresses(family: str, payload: bytes) -> ProxyInfo:
    if family == "TCP4":
        src, dst, src_port, dst_port = _INET4.unpack_from(payload)
        return ProxyInfo(
            2,
            "PROXY",
            family,
            str(ipaddress.IPv4Address(src)),
            src_port,
            str(ipaddress.IPv4Address(dst)),
            dst_port,
        )
    if family == "TCP6":
        src, dst, src_port, dst_port = _INET6.unpack_from(payload)
        return ProxyInfo(
            2,
            "PROXY",
            family,
            str(ipaddress.IPv6Address(src)),
            src_port,
            str(ipaddress.IPv6Address(dst)),
            dst_port,
        )
    return ProxyInfo(
        2,
        "PROXY",
        family,
        _unix_path(payload[:_UNIX_PATH_SIZE]),
        None,
        _unix_path(payload[_UNIX_PATH_SIZE : 2 * _UNIX_PATH_SIZE]),
        None,
    )


def _unix_path(raw: bytes) -> str:
    if raw[:1] == b"\x00":
        # Linux abstract namespace: a leading NUL, shown as "@" by convention.
        name = raw[1:].rstrip(b"\x00")
        return "@" + name.decode("utf-8", "surrogateescape") if name else ""
    return raw.partition(b"\x00")[0].decode("utf-8", "surrogateescape")


def _check_tlvs(payload: bytes, offset: int) -> None:
    """TLVs follow the addresses; each must fit inside the declared length."""
    end = len(payload)
    while offset < end:
        if end - offset < _TLV_HEAD.size:
            raise InvalidProxyLine("PROXY v2 truncated TLV header")
        _, size = _TLV_HEAD.unpack_from(payload, offset)
        offset += _TLV_HEAD.size + size
        if offset > end:
            raise InvalidProxyLine("PROXY v2 TLV runs past the header length")
