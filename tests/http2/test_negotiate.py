"""Protocol choice for a new connection: ALPN, the h2c preface and the h2c upgrade."""

from __future__ import annotations

import base64
import struct

import h2.config
import h2.connection
import pytest

from gunicorn.http.events import Request
from gunicorn.http.negotiate import (
    PREFACE,
    PREFACE_TIMEOUT,
    InvalidHTTP2Settings,
    Negotiated,
    choose_protocol,
    decode_settings,
    sniff_preface,
    upgrade_settings,
)


def test_preface_constants() -> None:
    assert PREFACE == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    assert PREFACE_TIMEOUT == 1.0


@pytest.mark.parametrize(
    ("buf", "expected"),
    [
        (b"", None),
        (b"PRI * HT", None),
        (PREFACE[:-1], None),
        (PREFACE, True),
        (PREFACE + b"\x00\x00\x00\x04", True),
        (b"GET / HTTP/1.1\r\n", False),
        (b"PRX", False),
        (PREFACE[:-1] + b"x", False),
        (b"P", None),
    ],
)
def test_sniff_preface(buf: bytes, expected: bool | None) -> None:
    assert sniff_preface(buf) is expected


@pytest.mark.parametrize(
    ("alpn", "protocols", "mode", "trusted", "tls", "expected"),
    [
        ("h2", ["h2", "h1"], "off", False, True, Negotiated.H2),
        ("http/1.1", ["h2", "h1"], "off", True, True, Negotiated.H1),
        (None, ["h2", "h1"], "both", True, True, Negotiated.H1),  # TLS ignores h2c
        (None, ["h2", "h1"], "prior-knowledge", True, False, Negotiated.PRIOR_KNOWLEDGE),
        (None, ["h2", "h1"], "upgrade", True, False, Negotiated.UPGRADE),
        (None, ["h2"], "both", True, False, Negotiated.PRIOR_KNOWLEDGE_OR_UPGRADE),
        (None, ["h2", "h1"], "both", False, False, Negotiated.H1),  # untrusted peer
        (None, ["h1"], "both", True, False, Negotiated.H1),  # h2 not enabled
        (None, ["h2", "h1"], "off", True, False, Negotiated.H1),
        ("h2", ["h2", "h1"], "off", True, False, Negotiated.H1),  # no ALPN without TLS
    ],
)
def test_choose_protocol(
    alpn: str | None,
    protocols: list[str],
    mode: str,
    trusted: bool,
    tls: bool,
    expected: Negotiated,
) -> None:
    assert choose_protocol(alpn, protocols, mode, trusted, tls) is expected


def test_choice_properties() -> None:
    table = {
        choice: (choice.sniff_preface, choice.preface_required, choice.upgrade_allowed)
        for choice in Negotiated
    }
    assert table == {
        Negotiated.H1: (False, False, False),
        Negotiated.H2: (False, False, False),
        Negotiated.PRIOR_KNOWLEDGE: (True, True, False),
        Negotiated.UPGRADE: (False, False, True),
        Negotiated.PRIOR_KNOWLEDGE_OR_UPGRADE: (True, False, True),
    }


def client_settings() -> bytes:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    value = client.initiate_upgrade_connection()
    assert value is not None
    return value


def h1_request(*fields: tuple[bytes, bytes], version: tuple[int, int] = (1, 1)) -> Request:
    return Request(b"GET", b"/", version, [(b"host", b"a"), *fields])


UPGRADE = (b"upgrade", b"h2c")
CONNECTION = (b"connection", b"Upgrade, HTTP2-Settings")


def test_upgrade_settings_of_a_proper_offer() -> None:
    value = client_settings()
    request = h1_request(UPGRADE, CONNECTION, (b"http2-settings", value))
    assert upgrade_settings(request) == value
    unpadded = value.rstrip(b"=")
    assert upgrade_settings(h1_request(UPGRADE, CONNECTION, (b"http2-settings", unpadded)))


@pytest.mark.parametrize(
    "fields",
    [
        [CONNECTION, (b"http2-settings", b"AAMAAABk")],  # no Upgrade
        [(b"upgrade", b"websocket"), CONNECTION, (b"http2-settings", b"AAMAAABk")],
        [UPGRADE, (b"connection", b"upgrade"), (b"http2-settings", b"AAMAAABk")],
        [UPGRADE, (b"connection", b"http2-settings"), (b"http2-settings", b"AAMAAABk")],
        [UPGRADE, CONNECTION],  # no HTTP2-Settings
        [UPGRADE, CONNECTION, (b"http2-settings", b"AAMAAABk"), (b"http2-settings", b"AAMAAABk")],
        [UPGRADE, CONNECTION, (b"http2-settings", b"AAMAAAB")],  # not whole entries
        [UPGRADE, CONNECTION, (b"http2-settings", b"AAMAAABk!")],  # not base64url
        [UPGRADE, CONNECTION, (b"http2-settings", b"")],
    ],
    ids=[
        "no upgrade",
        "other protocol",
        "settings not in connection",
        "upgrade not in connection",
        "no settings",
        "two settings",
        "partial entry",
        "not base64url",
        "empty",
    ],
)
def test_upgrade_refused(fields: list[tuple[bytes, bytes]]) -> None:
    assert upgrade_settings(h1_request(*fields)) is None


def test_no_upgrade_for_http_1_0() -> None:
    request = h1_request(UPGRADE, CONNECTION, (b"http2-settings", b"AAMAAABk"), version=(1, 0))
    assert upgrade_settings(request) is None


def encode(*entries: tuple[int, int]) -> bytes:
    payload = b"".join(struct.pack(">HL", identifier, value) for identifier, value in entries)
    return base64.urlsafe_b64encode(payload).rstrip(b"=")


def test_decode_settings() -> None:
    assert decode_settings(encode((3, 100), (4, 65535))) == struct.pack(">HLHL", 3, 100, 4, 65535)
    assert decode_settings(encode((0x99, 7))) == struct.pack(">HL", 0x99, 7)  # unknown: ignored


@pytest.mark.parametrize(
    "entry",
    [(2, 2), (4, 2**31), (5, 100), (5, 2**24)],
    ids=["ENABLE_PUSH 2", "window too large", "frame too small", "frame too large"],
)
def test_decode_settings_refuses_bad_values(entry: tuple[int, int]) -> None:
    with pytest.raises(InvalidHTTP2Settings):
        decode_settings(encode(entry))
