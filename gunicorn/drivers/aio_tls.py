"""The ASGI ``tls`` extension of a connection (ASGI TLS spec): certificates, version and
cipher suite, read once from the transport's ``ssl_object``."""

from __future__ import annotations

import ssl
from typing import Any

_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_SUITES: dict[str, int] = {}


def _suite_id(name: str) -> int | None:
    if not _SUITES:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        for cipher in context.get_ciphers():
            _SUITES[cipher["name"]] = int(cipher["id"]) & 0xFFFF
    return _SUITES.get(name)


def _rfc4514(subject: Any) -> str | None:
    """A certificate subject (as ``getpeercert()`` gives it) as an RFC 4514 string."""
    if not subject:
        return None
    short = {
        "commonName": "CN",
        "countryName": "C",
        "localityName": "L",
        "stateOrProvinceName": "ST",
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "domainComponent": "DC",
        "userId": "UID",
    }
    parts = []
    for rdn in reversed(subject):
        parts.append("+".join(f"{short.get(key, key)}={value}" for key, value in rdn))
    return ",".join(parts)


def tls_extension(sslobj: Any) -> dict[str, Any]:
    der = sslobj.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    name = None
    if der:
        try:
            name = _rfc4514(sslobj.getpeercert().get("subject"))
        except (ValueError, AttributeError):
            name = None
    cipher = sslobj.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _VERSIONS.get(sslobj.version() or ""),
        "cipher_suite": _suite_id(cipher[0]) if cipher else None,
    }
