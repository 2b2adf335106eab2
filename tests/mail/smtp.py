"""A real SMTP server for the tests (aiosmtpd), on a loopback port: plain, with
STARTTLS, or TLS from the first byte, with or without a login; and the
certificate it shows, made here with ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    def link(self, path: str) -> str:
        """The link to ``path`` in the text part (the HTML part must hold the same)."""
        found = re.search(r"https?://\S+/" + re.escape(path) + r"\?ticket=\S+", self.text)
        assert found is not None, self.text
        assert found.group(0) in self.html
        return found.group(0)


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), message)
            )
        return "250 OK"


@dataclass
class Login:
    username: str
    password: str

    def __call__(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = data.login == self.username.encode() and data.password == self.password.encode()
        # handled=False: aiosmtpd answers a refusal itself (535).
        return AuthResult(success=ok, handled=False)


class MailCatcher:
    """An SMTP server on 127.0.0.1 that keeps what it receives. Its port is fixed
    when it is made, so that a server under test can be pointed at it before it
    listens (an SMTP server that is down)."""

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        login: Login | None = None,
    ) -> None:
        self.port = free_port()
        self.handler = Handler()
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._login = login
        self._controller: Controller | None = None

    def start(self) -> MailCatcher:
        if self._controller is None:
            options: dict[str, Any] = {}
            if self._starttls is not None:
                options.update(tls_context=self._starttls, require_starttls=True)
            if self._login is not None:
                # With STARTTLS: aiosmtpd offers AUTH only on TLS it started itself.
                options.update(auth_required=True, authenticator=self._login)
            self._controller = Controller(
                self.handler,
                hostname="127.0.0.1",
                port=self.port,
                ssl_context=self._implicit_tls,
                **options,
            )
            self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def mails_to(self, address: str) -> list[Received]:
        with self.handler.lock:
            return [mail for mail in self.handler.received if address in mail.recipients]

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` mails to ``address``, once they have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.mails_to(address)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} mails to {address} not received in {timeout} s")
            time.sleep(0.05)


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # what the server under test trusts (AUTHHOOKS_SMTP_CA_BUNDLE)
    server: ssl.SSLContext  # what the SMTP server shows


def make_certificates(directory: Path) -> Certificates:
    """A CA of the tests' own, and a certificate it signs for 127.0.0.1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authhooks test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
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
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "server.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Certificates(ca_file, server)
