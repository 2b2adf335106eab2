"""The SMTP sender against a real SMTP server, in this process: each way of
securing the connection, a login, and each way it fails — never falling back
to plain text, never saying the password."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from authhooks.config import Settings
from authhooks.errors import StartupError
from authhooks.identity.mail.messages import EMAIL_VERIFICATION, PASSWORD_RESET, compose
from authhooks.identity.mail.sender import MailNotSent, SmtpSender, SmtpSettings
from tests.mail.smtp import Certificates, Login, MailCatcher, make_certificates

PASSWORD = "smtp-Pa55word-zebra"
LOGIN = Login("mailer", PASSWORD)
TO = "ada@example.com"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def catcher() -> Iterator[list[MailCatcher]]:
    """Catchers a test starts; all stopped after it."""
    started: list[MailCatcher] = []
    yield started
    for one in started:
        one.stop()


def settings(port: int, security: str, **more: str) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security=security,  # type: ignore[arg-type]
        mail_from="Example <no-reply@example.com>",
        **more,  # type: ignore[arg-type]
    )


def send(smtp: Settings, kind: str = PASSWORD_RESET) -> None:
    sender_settings = SmtpSettings.from_settings(smtp)
    assert sender_settings is not None
    message = compose(
        kind,
        from_header=sender_settings.from_header,
        sender=sender_settings.sender,
        recipient=TO,
        context={
            "link": "https://id.example.com/lo/reset?ticket=T",
            "site": "id",
            "valid_for": "1 hour",
        },
    )

    async def send_and_settle() -> None:
        try:
            await SmtpSender(sender_settings).send(message, TO)
        finally:
            # A TLS connection closes over a few turns of the loop (as it does in the
            # server's, which runs on): let it, before asyncio.run closes this one.
            await asyncio.sleep(0.1)

    asyncio.run(send_and_settle())


def test_tls_from_the_first_byte(certificates: Certificates, catcher: list[MailCatcher]) -> None:
    server = MailCatcher(implicit_tls=certificates.server).start()
    catcher.append(server)
    send(
        settings(server.port, "tls", smtp_ca_bundle=str(certificates.ca_file)),
        EMAIL_VERIFICATION,
    )
    (mail,) = server.wait_for(TO)
    assert mail.sender == "no-reply@example.com"
    assert mail.message["From"] == "Example <no-reply@example.com>"
    assert mail.message["Subject"] == "Verify your email address"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "https://id.example.com/lo/reset?ticket=T" in mail.text
    assert 'href="https://id.example.com/lo/reset?ticket=T"' in mail.html


def test_starttls_is_required_not_hoped_for(catcher: list[MailCatcher]) -> None:
    plain = MailCatcher().start()  # offers no STARTTLS
    catcher.append(plain)
    with pytest.raises(MailNotSent, match="STARTTLS"):
        send(settings(plain.port, "starttls"))
    assert plain.mails_to(TO) == []


def test_a_certificate_nobody_vouches_for_is_refused(
    certificates: Certificates, catcher: list[MailCatcher]
) -> None:
    server = MailCatcher(starttls=certificates.server).start()
    catcher.append(server)
    with pytest.raises(MailNotSent, match="CERTIFICATE_VERIFY_FAILED"):
        send(settings(server.port, "starttls"))  # the system's CAs: not the tests' own
    assert server.mails_to(TO) == []


def test_a_refused_login_is_reported_without_the_password(
    certificates: Certificates, catcher: list[MailCatcher]
) -> None:
    server = MailCatcher(starttls=certificates.server, login=LOGIN).start()
    catcher.append(server)
    with pytest.raises(MailNotSent) as refused:
        send(
            settings(
                server.port,
                "starttls",
                smtp_ca_bundle=str(certificates.ca_file),
                smtp_username=LOGIN.username,
                smtp_password=PASSWORD + "-wrong",
            )
        )
    assert "SMTPAuthenticationError" in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_nothing_listening_is_a_failure_to_retry() -> None:
    port = MailCatcher().port  # never started
    with pytest.raises(MailNotSent, match="SMTPConnectError"):
        send(settings(port, "none"))


def test_a_login_over_plain_text_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ValidationError) as refused:
        settings(25, "none", smtp_username="mailer", smtp_password=PASSWORD)
    assert "in clear" in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_mail_needs_a_from_address() -> None:
    with pytest.raises(StartupError, match="AUTHHOOKS_MAIL_FROM"):
        SmtpSettings.from_settings(Settings(smtp_host="127.0.0.1"))


def test_a_ca_bundle_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "nothing.pem"
    with pytest.raises(StartupError, match="AUTHHOOKS_SMTP_CA_BUNDLE"):
        SmtpSettings.from_settings(settings(587, "starttls", smtp_ca_bundle=str(bad)))


def test_the_password_is_not_in_the_settings_repr() -> None:
    configured = settings(587, "starttls", smtp_username="mailer", smtp_password=PASSWORD)
    smtp = SmtpSettings.from_settings(configured)
    assert PASSWORD not in repr(configured)
    assert PASSWORD not in repr(smtp)
    assert smtp is not None
    assert PASSWORD not in smtp.describe()
