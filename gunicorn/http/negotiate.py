"""Which protocol a new connection speaks: ALPN, the h2c preface, the h2c upgrade.

Sans-IO: the driver owns the clock, so the wait for a prior-knowledge preface
(``PREFACE_TIMEOUT``) is the driver's, as is reading the upgrade request's body.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from enum import Enum

from gunicorn.http.errors import ProtocolError
from gunicorn.http.events import Request
from gunicorn.http.headers import connection_tokens, split_list

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Seconds a trusted cleartext peer has to send the whole preface (gunicorn 27).
PREFACE_TIMEOUT = 1.0

CLEARTEXT_MODES = ("off", "prior-knowledge", "upgrade", "both")

# token68 restricted to the base64url alphabet (RFC 7540 §3.2.1), padding optional.
_BASE64URL_RE = re.compile(rb"[A-Za-z0-9_-]+={0,2}")
_SETTING = struct.Struct(">HL")
_ENABLE_PUSH = 0x2
_INITIAL_WINDOW_SIZE = 0x4
_MAX_FRAME_SIZE = 0x5


class InvalidHTTP2Settings(ProtocolError):
    """The HTTP2-Settings header of an h2c upgrade is not base64url SETTINGS."""


class Negotiated(Enum):
    """What a new connection starts with."""

    H1 = "h1"
    H2 = "h2"
    # Cleartext, trusted peer: wait for the preface; anything else is refused (400).
    PRIOR_KNOWLEDGE = "h2-prior-knowledge"
    # Cleartext, trusted peer: HTTP/1.1 whose requests may upgrade with Upgrade: h2c.
    UPGRADE = "h2c-upgrade"
    # Both: the preface starts HTTP/2, anything else is HTTP/1.1 that may upgrade.
    PRIOR_KNOWLEDGE_OR_UPGRADE = "h2c-both"

    @property
    def sniff_preface(self) -> bool:
        """Look at the first bytes for the HTTP/2 preface (``sniff_preface``)."""
        return self is Negotiated.PRIOR_KNOWLEDGE or self is Negotiated.PRIOR_KNOWLEDGE_OR_UPGRADE

    @property
    def preface_required(self) -> bool:
        """Bytes that are not the preface are refused rather than read as HTTP/1."""
        return self is Negotiated.PRIOR_KNOWLEDGE

    @property
    def upgrade_allowed(self) -> bool:
        """HTTP/1.1 requests may switch to h2c (``upgrade_settings``)."""
        return self is Negotiated.UPGRADE or self is Negotiated.PRIOR_KNOWLEDGE_OR_UPGRADE


_CLEARTEXT = {
    "prior-knowledge": Negotiated.PRIOR_KNOWLEDGE,
    "upgrade": Negotiated.UPGRADE,
    "both": Negotiated.PRIOR_KNOWLEDGE_OR_UPGRADE,
}


def choose_protocol(
    alpn: str | None,
    http_protocols: list[str],
    cleartext_mode: str,
    trusted: bool,
    tls: bool,
) -> Negotiated:
    """TLS: HTTP/2 when ALPN picked "h2", else HTTP/1. Cleartext: h2c only when "h2"
    is among ``http_protocols``, the peer is trusted (``forwarded_allow_ips``) and
    ``cleartext_mode`` (``http2_cleartext``) enables it; otherwise plain HTTP/1."""
    if tls:
        return Negotiated.H2 if alpn == "h2" else Negotiated.H1
    if not trusted or "h2" not in http_protocols:
        return Negotiated.H1
    return _CLEARTEXT.get(cleartext_mode, Negotiated.H1)


def sniff_preface(buf: bytes) -> bool | None:
    """True: ``buf`` starts with the whole preface; False: it cannot be the preface;
    None: it is a prefix of the preface (read more)."""
    if len(buf) >= len(PREFACE):
        return buf.startswith(PREFACE)
    return None if PREFACE.startswith(buf) else False


def decode_settings(value: bytes) -> bytes:
    """The SETTINGS payload an HTTP2-Settings value carries (RFC 7540 §3.2.1): base64url
    of whole 6-byte entries with values SETTINGS allows (RFC 9113 §6.5.2)."""
    value = value.strip(b" \t")
    if _BASE64URL_RE.fullmatch(value) is None:
        raise InvalidHTTP2Settings("HTTP2-Settings is not base64url")
    unpadded = value.rstrip(b"=")
    if len(unpadded) % 4 == 1:
        raise InvalidHTTP2Settings("HTTP2-Settings is not base64url")
    try:
        payload = base64.urlsafe_b64decode(unpadded + b"=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise InvalidHTTP2Settings("HTTP2-Settings is not base64url") from None
    if len(payload) % _SETTING.size:
        raise InvalidHTTP2Settings("HTTP2-Settings does not hold whole settings")
    for identifier, setting in _SETTING.iter_unpack(payload):
        if (
            (identifier == _ENABLE_PUSH and setting > 1)
            or (identifier == _INITIAL_WINDOW_SIZE and setting > 2**31 - 1)
            or (identifier == _MAX_FRAME_SIZE and not 2**14 <= setting < 2**24)
        ):
            raise InvalidHTTP2Settings(f"invalid value {setting} for setting {identifier}")
    return payload


def encode_settings(payload: bytes) -> bytes:
    """A SETTINGS payload as a padded base64url value."""
    return base64.urlsafe_b64encode(payload)


def upgrade_settings(request: Request) -> bytes | None:
    """The HTTP2-Settings value to pass to ``H2Connection.initiate_upgrade`` when an
    HTTP/1.1 request asks for h2c properly (``Upgrade: h2c``, ``Connection: upgrade,
    http2-settings``, exactly one valid HTTP2-Settings field); None otherwise, and the
    request is answered as HTTP/1 (never 101)."""
    if request.version != (1, 1):
        return None
    offered = False
    settings: list[bytes] = []
    for name, value in request.headers:
        if name == b"upgrade":
            offered = offered or b"h2c" in (item.lower() for item in split_list(value))
        elif name == b"http2-settings":
            settings.append(value)
    if not offered or len(settings) != 1:
        return None
    tokens = connection_tokens(request.headers)
    if b"upgrade" not in tokens or b"http2-settings" not in tokens:
        return None
    try:
        decode_settings(settings[0])
    except InvalidHTTP2Settings:
        return None
    return settings[0].strip(b" \t")
