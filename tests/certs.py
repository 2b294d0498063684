"""Test certificates made on the fly: a CA, a server certificate and a client certificate.

The server certificate is valid for ``localhost``, ``127.0.0.1`` and ``::1``. Everything is
signed by the generated CA, so clients verify the server with ``ca`` and the server verifies
clients with the same file.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TestCerts:
    """Paths of the PEM files written by :func:`make_certs`."""

    __test__ = False  # not a pytest test class

    ca: Path
    server_cert: Path
    server_key: Path
    server_combined: Path  # certificate followed by its key, in one file
    client_cert: Path
    client_key: Path
    other_client_cert: Path  # signed by an unrelated CA: must be refused
    other_client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = (
        _builder(common_name, _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    builder = (
        _builder(common_name, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_certs(directory: Path) -> TestCerts:
    """Write a CA, a server certificate and client certificates into ``directory``."""
    ca_cert, ca_key = _make_ca("gunicorn test CA")
    server_cert, server_key = _leaf("localhost", ca_cert, ca_key, server=True)
    client_cert, client_key = _leaf("test client", ca_cert, ca_key, server=False)
    rogue_ca, rogue_key = _make_ca("unrelated CA")
    other_cert, other_key = _leaf("rogue client", rogue_ca, rogue_key, server=False)

    files = {
        "ca.pem": _cert_pem(ca_cert),
        "server.crt": _cert_pem(server_cert),
        "server.key": _key_pem(server_key),
        "server-combined.pem": _cert_pem(server_cert) + _key_pem(server_key),
        "client.crt": _cert_pem(client_cert),
        "client.key": _key_pem(client_key),
        "other-client.crt": _cert_pem(other_cert),
        "other-client.key": _key_pem(other_key),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return TestCerts(
        ca=directory / "ca.pem",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        server_combined=directory / "server-combined.pem",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        other_client_cert=directory / "other-client.crt",
        other_client_key=directory / "other-client.key",
    )
