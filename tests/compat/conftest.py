"""A server behind TLS, for Auth0's own tools, which speak only https: a test CA
made here, a certificate it signs for 127.0.0.1, and the server serving it
itself (AUTHHOOKS_TLS_CERTFILE). This process trusts the CA through a bundle
of the roots it trusted before plus it (SSL_CERT_FILE, which httpx reads);
Node tools through NODE_EXTRA_CA_CERTS."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import BACKENDS, Server, run_server


@dataclass(frozen=True)
class Tls:
    ca: Path
    certificate: Path
    key: Path
    bundle: Path  # certifi's roots and the test CA


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls(directory: Path) -> Tls:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("authhooks test CA"))
        .issuer_name(_name("authhooks test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    tls = Tls(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "bundle.pem",
    )
    tls.ca.write_bytes(ca.public_bytes(pem))
    tls.certificate.write_bytes(certificate.public_bytes(pem))
    tls.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tls.bundle.write_bytes(_trusted_roots().read_bytes() + b"\n" + tls.ca.read_bytes())
    return tls


def _trusted_roots() -> Path:
    """The roots this process trusts now: the machine's (SSL_CERT_FILE, or OpenSSL's
    default file), which may hold a local proxy's CA that certifi's do not, so
    that package registries stay reachable; certifi's when there are none."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return Path(certifi.where())


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    made = make_tls(tmp_path_factory.mktemp("tls"))
    before = os.environ.get("SSL_CERT_FILE")
    # A superset of the roots trusted before (_trusted_roots): whatever else this
    # process (and the servers it starts: pip and npm for hooks' dependencies)
    # reaches over TLS is trusted as before.
    os.environ["SSL_CERT_FILE"] = str(made.bundle)
    try:
        yield made
    finally:
        if before is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = before


@pytest.fixture(scope="session", params=BACKENDS)
def tls_server(
    request: pytest.FixtureRequest, tls: Tls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("tls-" + request.param),
        request.param,
        tls_certfile=tls.certificate,
        tls_keyfile=tls.key,
    ) as running:
        yield running
