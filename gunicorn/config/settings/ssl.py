"""SSL: TLS for the listening sockets."""

from __future__ import annotations

import ssl as _ssl

from gunicorn.config.core import Setting
from gunicorn.config.validators import (
    validate_bool,
    validate_int_range,
    validate_ssl_version,
    validate_string,
)

SECTION = "SSL"


def _file(name: str, short: str, desc: str) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        cli=(f"--{name.replace('_', '-')}",),
        meta="FILE",
        validator=validate_string,
        default=None,
        short=short,
        desc=desc,
    )


def _flag(name: str, default: bool, short: str, desc: str) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        cli=(f"--{name.replace('_', '-')}",),
        action="store_true",
        validator=validate_bool,
        default=default,
        short=short,
        desc=desc,
    )


SETTINGS = [
    _file(
        "keyfile",
        "The TLS private key file.",
        """
PEM file holding the server's private key. Setting `keyfile` or `certfile` turns TLS on.
""",
    ),
    _file(
        "certfile",
        "The TLS certificate file.",
        """
PEM file holding the server certificate, followed by any intermediate certificates; it may
also hold the private key.
""",
    ),
    Setting(
        name="ssl_version",
        section=SECTION,
        cli=("--ssl-version",),
        validator=validate_ssl_version,
        default=int(_ssl.PROTOCOL_TLS),
        default_doc="ssl.PROTOCOL_TLS",
        short="Deprecated and ignored: use the ssl_context hook instead.",
        desc="""
Kept so that old configurations still load. The value is ignored and changing it prints a
warning; the context negotiates the best TLS version both sides support. To restrict
versions, set `minimum_version` on the context in the `ssl_context` hook.
""",
    ),
    Setting(
        name="cert_reqs",
        section=SECTION,
        cli=("--cert-reqs",),
        validator=validate_int_range(0, 2),
        type=int,
        default=int(_ssl.CERT_NONE),
        default_doc="0",
        short="Whether client certificates are requested: 0 none, 1 optional, 2 required.",
        desc="""
`0` (`ssl.CERT_NONE`) does not ask for a client certificate, `1` (`CERT_OPTIONAL`) verifies
one when sent, `2` (`CERT_REQUIRED`) refuses clients without a valid one. Client certificates
are checked against `ca_certs`.
""",
    ),
    _file(
        "ca_certs",
        "CA certificates file used to verify client certificates.",
        """
PEM bundle of the certificate authorities trusted to sign client certificates.
""",
    ),
    _flag(
        "suppress_ragged_eofs",
        True,
        "Treat a connection closed without a TLS close_notify as a normal end of file.",
        """
Passed to the TLS layer: an unexpected end of the TCP stream reads as end of file instead of
an error.
""",
    ),
    _flag(
        "do_handshake_on_connect",
        False,
        "Do the TLS handshake as soon as a connection is accepted.",
        """
By default the handshake happens on the first read or write. Passed to `wrap_socket`.
""",
    ),
    Setting(
        name="ciphers",
        section=SECTION,
        cli=("--ciphers",),
        meta="CIPHERS",
        validator=validate_string,
        default=None,
        short="The OpenSSL cipher list for TLS 1.2 and older.",
        desc="""
An OpenSSL cipher list string, e.g. `ECDHE+AESGCM`. Unset means Python's default list. TLS 1.3
cipher suites are not affected.
""",
    ),
]
