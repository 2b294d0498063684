"""PROXY protocol v1/v2 headers parsed from the start of a connection's bytes."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from gunicorn.http.errors import InvalidProxyLine
from gunicorn.http.proxy import ProxyInfo, parse_proxy_header, proxy_environ

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
HTTP = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"

LOCAL, PROXY = 0x0, 0x1
UNSPEC, INET, INET6, UNIX = 0x0, 0x1, 0x2, 0x3
STREAM, DGRAM = 0x1, 0x2


def v2(
    payload: bytes = b"",
    *,
    command: int = PROXY,
    family: int = INET,
    transport: int = STREAM,
    version: int = 2,
    length: int | None = None,
) -> bytes:
    """A v2 header: signature, version/command, family/transport, big-endian length."""
    size = len(payload) if length is None else length
    return (
        SIG + struct.pack("!BBH", version << 4 | command, family << 4 | transport, size) + payload
    )


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return struct.pack(
        "!4s4sHH",
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
        sport,
        dport,
    )


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return struct.pack(
        "!16s16sHH",
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
        sport,
        dport,
    )


def unix(src: bytes, dst: bytes) -> bytes:
    return struct.pack("!108s108s", src, dst)


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def parse_bytewise(data: bytes, mode: str) -> tuple[ProxyInfo | None, int] | None:
    """Feed growing prefixes: every proper prefix must ask for more bytes."""
    for end in range(len(data)):
        assert parse_proxy_header(data[:end], mode) is None, data[:end]
    return parse_proxy_header(data, mode)


def error_bytewise(data: bytes, mode: str) -> int:
    """Feed growing prefixes of a malformed header: None until the error, never a result.

    Returns the prefix length at which the error was first raised."""
    for end in range(len(data) + 1):
        try:
            result = parse_proxy_header(data[:end], mode)
        except InvalidProxyLine:
            return end
        assert result is None, (data[:end], result)
    raise AssertionError(f"no error raised for {data!r}")


# -- version 1 ------------------------------------------------------------------------

V1_VALID = [
    (
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        ProxyInfo(1, "PROXY", "TCP4", "192.168.0.1", 56324, "192.168.0.11", 443),
    ),
    (
        b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
        ProxyInfo(1, "PROXY", "TCP4", "0.0.0.0", 0, "255.255.255.255", 65535),
    ),
    (
        b"PROXY TCP6 2001:db8::1 ::1 1 8080\r\n",
        ProxyInfo(1, "PROXY", "TCP6", "2001:db8::1", 1, "::1", 8080),
    ),
    (
        b"PROXY TCP6 ::ffff:10.0.0.1 fe80::1 40000 80\r\n",
        ProxyInfo(1, "PROXY", "TCP6", "::ffff:10.0.0.1", 40000, "fe80::1", 80),
    ),
    # The longest TCP6 line a proxy can produce (104 bytes).
    (
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        ProxyInfo(
            1,
            "PROXY",
            "TCP6",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            65535,
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            65535,
        ),
    ),
    (b"PROXY UNKNOWN\r\n", ProxyInfo(1, "UNKNOWN", "UNSPEC")),
    (
        b"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n",
        ProxyInfo(1, "UNKNOWN", "UNSPEC"),
    ),
    # Exactly 107 bytes including CRLF is the maximum.
    (b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n", ProxyInfo(1, "UNKNOWN", "UNSPEC")),
]


@pytest.mark.parametrize("mode", ["v1", "auto"])
@pytest.mark.parametrize(("line", "expected"), V1_VALID)
def test_v1_valid(line: bytes, expected: ProxyInfo, mode: str) -> None:
    assert parse_proxy_header(line + HTTP, mode) == (expected, len(line))
    assert parse_proxy_header(bytearray(line), mode) == (expected, len(line))
    assert parse_bytewise(line, mode) == (expected, len(line))


def test_v1_line_at_maximum_length() -> None:
    line = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
    assert len(line) == 107
    assert parse_proxy_header(line, "v1") == (ProxyInfo(1, "UNKNOWN", "UNSPEC"), 107)


V1_INVALID = [
    # bare LF / stray CR
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    b"PROXY UNKNOWN\n",
    b"PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
    # field count and separators
    b"PROXY \r\n",
    b"PROXY TCP4\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
    b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
    b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n",
    # protocol
    b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY UNKNOWNX\r\n",
    # addresses validated for their family
    b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
    b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
    b"PROXY TCP6 ::1 1.2.3.4 1 2\r\n",
    b"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 localhost 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 \xd9\xa3.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
    b"PROXY TCP6 1::2::3 ::1 1 2\r\n",
    b"PROXY TCP6 [::1] ::1 1 2\r\n",
    # ports: decimal 0-65535, no sign, no leading zero
    b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 \xd9\xa3 2\r\n",
]


@pytest.mark.parametrize("mode", ["v1", "auto"])
@pytest.mark.parametrize("line", V1_INVALID)
def test_v1_invalid(line: bytes, mode: str) -> None:
    with pytest.raises(InvalidProxyLine):
        parse_proxy_header(line + HTTP, mode)
    assert error_bytewise(line, mode) == len(line)


@pytest.mark.parametrize("mode", ["v1", "auto"])
@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 " + b"1" * 200,
        # 108 bytes including CRLF: the CRLF comes too late.
        b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",
    ],
)
def test_v1_line_without_crlf_fails_at_107_bytes(line: bytes, mode: str) -> None:
    assert error_bytewise(line, mode) == 107
    assert parse_proxy_header(line[:106], mode) is None


def test_v1_error_is_a_400() -> None:
    with pytest.raises(InvalidProxyLine) as info:
        parse_proxy_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1")
    assert info.value.status == 400


# -- version 2 ------------------------------------------------------------------------

V2_VALID = [
    (
        v2(inet4("192.168.0.1", "10.0.0.2", 56324, 443)),
        ProxyInfo(2, "PROXY", "TCP4", "192.168.0.1", 56324, "10.0.0.2", 443),
    ),
    (
        v2(inet4("1.2.3.4", "5.6.7.8", 0, 65535), transport=0),
        ProxyInfo(2, "PROXY", "TCP4", "1.2.3.4", 0, "5.6.7.8", 65535),
    ),
    (
        v2(inet6("2001:db8::1", "::1", 1234, 80), family=INET6),
        ProxyInfo(2, "PROXY", "TCP6", "2001:db8::1", 1234, "::1", 80),
    ),
    (
        v2(unix(b"/run/client.sock", b"/run/gunicorn.sock"), family=UNIX),
        ProxyInfo(2, "PROXY", "UNIX", "/run/client.sock", None, "/run/gunicorn.sock", None),
    ),
    (
        v2(unix(b"\x00abstract", b""), family=UNIX),
        ProxyInfo(2, "PROXY", "UNIX", "@abstract", None, "", None),
    ),
    # TLVs after the addresses are skipped: ALPN, authority, an empty NOOP.
    (
        v2(
            inet4("1.2.3.4", "5.6.7.8", 1, 2)
            + tlv(0x01, b"h2")
            + tlv(0x02, b"example.com")
            + tlv(0x04, b"")
        ),
        ProxyInfo(2, "PROXY", "TCP4", "1.2.3.4", 1, "5.6.7.8", 2),
    ),
    (
        v2(inet6("::1", "::2", 1, 2) + tlv(0x04, b"\x00" * 100), family=INET6),
        ProxyInfo(2, "PROXY", "TCP6", "::1", 1, "::2", 2),
    ),
    # The largest accepted payload: 2048 bytes.
    (
        v2(inet4("1.2.3.4", "5.6.7.8", 1, 2) + tlv(0x04, b"\x00" * (2048 - 12 - 3))),
        ProxyInfo(2, "PROXY", "TCP4", "1.2.3.4", 1, "5.6.7.8", 2),
    ),
    # LOCAL: health checks from the proxy; family and addresses are ignored.
    (v2(command=LOCAL, family=UNSPEC, transport=0), ProxyInfo(2, "LOCAL", "UNSPEC")),
    (
        v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), command=LOCAL),
        ProxyInfo(2, "LOCAL", "UNSPEC"),
    ),
    (v2(b"garbage", command=LOCAL, family=0xF, transport=0xF), ProxyInfo(2, "LOCAL", "UNSPEC")),
    # UNSPEC family with PROXY: no addresses, whatever the block holds.
    (v2(family=UNSPEC, transport=0), ProxyInfo(2, "PROXY", "UNSPEC")),
    (v2(b"\xff" * 5, family=UNSPEC), ProxyInfo(2, "PROXY", "UNSPEC")),
]


@pytest.mark.parametrize("mode", ["v2", "auto"])
@pytest.mark.parametrize(("header", "expected"), V2_VALID)
def test_v2_valid(header: bytes, expected: ProxyInfo, mode: str) -> None:
    assert parse_proxy_header(header + HTTP, mode) == (expected, len(header))
    assert parse_proxy_header(bytearray(header), mode) == (expected, len(header))
    assert parse_bytewise(header, mode) == (expected, len(header))


V2_INVALID = [
    # version nibble
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), version=1),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), version=3),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), version=0),
    v2(version=1, command=LOCAL),
    # command
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), command=2),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), command=0xF),
    # family and transport
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), family=4),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), family=0xF),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), transport=DGRAM),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), transport=3),
    # address block shorter than the family needs
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2)[:11]),
    v2(b""),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), family=INET6),
    v2(inet6("::1", "::2", 1, 2)[:35], family=INET6),
    v2(unix(b"/a", b"/b")[:215], family=UNIX),
    v2(inet6("::1", "::2", 1, 2), family=UNIX),
    # TLVs that do not fit in the declared length
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2) + b"\x01"),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2) + b"\x01\x00"),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2) + tlv(0x01, b"h2")[:-1]),
    v2(inet4("1.2.3.4", "5.6.7.8", 1, 2) + tlv(0x04, b"") + struct.pack("!BH", 1, 1)),
    v2(inet6("::1", "::2", 1, 2) + struct.pack("!BH", 4, 65535), family=INET6),
]


@pytest.mark.parametrize("mode", ["v2", "auto"])
@pytest.mark.parametrize("header", V2_INVALID)
def test_v2_invalid(header: bytes, mode: str) -> None:
    with pytest.raises(InvalidProxyLine):
        parse_proxy_header(header + HTTP, mode)
    error_at = error_bytewise(header, mode)
    # Fixed-header errors are seen with the first 16 bytes, others once complete.
    assert error_at in (16, len(header))


@pytest.mark.parametrize("command", [PROXY, LOCAL])
def test_v2_oversize_rejected_from_the_fixed_header(command: int) -> None:
    header = v2(inet4("1.2.3.4", "5.6.7.8", 1, 2), command=command, length=2049)
    assert error_bytewise(header, "auto") == 16
    with pytest.raises(InvalidProxyLine):
        parse_proxy_header(v2(b"\x00" * 65535, command=command), "v2")


def test_v2_waits_for_the_declared_length() -> None:
    header = v2(inet4("1.2.3.4", "5.6.7.8", 1, 2) + tlv(0x01, b"h2"))
    # Everything but the last byte: still incomplete, whatever follows later.
    assert parse_proxy_header(header[:-1], "v2") is None


# -- detection and modes ---------------------------------------------------------------

V1_LINE = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
V2_HEADER = v2(inet4("1.2.3.4", "5.6.7.8", 1, 2))


@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
@pytest.mark.parametrize(
    "data",
    [
        HTTP,
        b"POST /x HTTP/1.0\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\n\r\n",
        b"PROXYGET / HTTP/1.1\r\n\r\n",
        b"PROXY\r\n",
        b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"\x16\x03\x01\x02\x00",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        # A wrong byte inside the v2 signature: not a PROXY header.
        b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + b"\x00" * 12,
    ],
)
def test_non_proxy_start_passes_through(data: bytes, mode: str) -> None:
    assert parse_proxy_header(data, mode) == (None, 0)


def test_v1_mode_passes_v2_through_and_vice_versa() -> None:
    assert parse_proxy_header(V2_HEADER, "v1") == (None, 0)
    assert parse_proxy_header(V1_LINE, "v2") == (None, 0)
    assert parse_proxy_header(V2_HEADER[:1], "v1") == (None, 0)
    assert parse_proxy_header(V1_LINE[:1], "v2") == (None, 0)


def test_auto_mode_detects_both_versions() -> None:
    v1_info = ProxyInfo(1, "PROXY", "TCP4", "1.2.3.4", 1, "5.6.7.8", 2)
    v2_info = ProxyInfo(2, "PROXY", "TCP4", "1.2.3.4", 1, "5.6.7.8", 2)
    assert parse_proxy_header(V1_LINE, "auto") == (v1_info, len(V1_LINE))
    assert parse_proxy_header(V2_HEADER, "auto") == (v2_info, len(V2_HEADER))


@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
def test_empty_buffer_needs_more(mode: str) -> None:
    assert parse_proxy_header(b"", mode) is None


@pytest.mark.parametrize(
    ("data", "mode", "expected"),
    [
        (b"PROXY", "v1", None),
        (b"PROXY", "auto", None),
        (b"PROXY", "v2", (None, 0)),
        (b"PROXYX", "auto", (None, 0)),
        (b"\r\n\r\n\x00\r\nQUIT", "v2", None),
        (b"\r\n\r\n\x00\r\nQUIT", "auto", None),
        (b"\r\n\r\n\x00\r\nQUIT", "v1", (None, 0)),
        (b"\r\nG", "auto", (None, 0)),
    ],
)
def test_prefixes(data: bytes, mode: str, expected: tuple[None, int] | None) -> None:
    assert parse_proxy_header(data, mode) == expected


def test_unknown_mode_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="mode"):
        parse_proxy_header(V1_LINE, "v3")


def test_consumed_leaves_the_http_bytes() -> None:
    data = V2_HEADER + V1_LINE + HTTP
    info, consumed = parse_proxy_header(data, "auto") or (None, -1)
    assert info is not None and info.version == 2
    # A second header after the first is plain data to the HTTP layer: the caller
    # parses only once per connection.
    assert data[consumed:] == V1_LINE + HTTP


# -- environ ---------------------------------------------------------------------------


def test_environ_tcp4() -> None:
    info = ProxyInfo(1, "PROXY", "TCP4", "192.168.0.1", 56324, "192.168.0.11", 443)
    assert proxy_environ(info) == {
        "REMOTE_ADDR": "192.168.0.1",
        "REMOTE_PORT": "56324",
        "PROXY_PROTOCOL": "TCP4",
        "PROXY_ADDR": "192.168.0.11",
        "PROXY_PORT": "443",
    }


def test_environ_tcp6_from_v2() -> None:
    header = v2(inet6("2001:db8::1", "2001:db8::2", 1234, 80), family=INET6)
    info, _ = parse_proxy_header(header, "v2") or (None, 0)
    assert proxy_environ(info) == {
        "REMOTE_ADDR": "2001:db8::1",
        "REMOTE_PORT": "1234",
        "PROXY_PROTOCOL": "TCP6",
        "PROXY_ADDR": "2001:db8::2",
        "PROXY_PORT": "80",
    }


def test_environ_unix_has_no_ports() -> None:
    info = ProxyInfo(2, "PROXY", "UNIX", "/run/a.sock", None, "/run/b.sock", None)
    assert proxy_environ(info) == {
        "REMOTE_ADDR": "/run/a.sock",
        "PROXY_PROTOCOL": "UNIX",
        "PROXY_ADDR": "/run/b.sock",
    }


@pytest.mark.parametrize(
    "info",
    [
        None,
        ProxyInfo(1, "UNKNOWN", "UNSPEC"),
        ProxyInfo(2, "LOCAL", "UNSPEC"),
        ProxyInfo(2, "PROXY", "UNSPEC"),
    ],
)
def test_environ_without_addresses_is_empty(info: ProxyInfo | None) -> None:
    assert proxy_environ(info) == {}


def test_proxy_info_repr_and_equality() -> None:
    info = ProxyInfo(1, "PROXY", "TCP4", "1.2.3.4", 1, "5.6.7.8", 2)
    assert "src_addr='1.2.3.4'" in repr(info)
    assert info == ProxyInfo(1, "PROXY", "TCP4", "1.2.3.4", 1, "5.6.7.8", 2)
    assert info != ProxyInfo(2, "PROXY", "TCP4", "1.2.3.4", 1, "5.6.7.8", 2)
