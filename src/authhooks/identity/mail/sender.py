"""Sending one mail through the operator's SMTP server (aiosmtplib).

The connection is secured as ``AUTHHOOKS_SMTP_SECURITY`` says — STARTTLS,
required (the default), TLS from the first byte, or none — and the server's
certificate is checked against the system's CA certificates or
``AUTHHOOKS_SMTP_CA_BUNDLE``. A failure is a ``MailNotSent`` whose message
names what went wrong without the password, the mail's content or its
recipient, so that it can be logged and stored as it is.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib

from authhooks.config import Settings
from authhooks.errors import DomainError, StartupError

log = logging.getLogger(__name__)

# The longest one attempt may take, connection and all: a server that accepts the
# connection and then says nothing must not hold a sending slot for long.
SEND_TIMEOUT = 30.0
_MAX_REASON_CHARS = 300


class MailOff(DomainError):
    """Mail is needed and this server has no SMTP server configured."""

    # 4xx: the request asks for what this server, as configured, does not do; no
    # retry will help, and nothing failed (a 5xx would say the server did).
    status = 400
    code = "mail_not_configured"

    def __init__(self) -> None:
        super().__init__(
            "this server sends no mail: its operator has not configured an SMTP server "
            "(AUTHHOOKS_SMTP_HOST)"
        )


class MailNotSent(Exception):
    """An attempt to send failed; ``str(error)`` is safe to log and store."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # starttls, tls or none
    sender: str  # the envelope sender: the address of From
    from_header: str  # From as configured, a display name and all
    username: str = ""
    password: str = field(default="", repr=False)
    tls: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSettings | None:
        """The settings of mail, or None when mail is off; StartupError saying what to
        change when they cannot work."""
        if not settings.smtp_host:
            return None
        _, address = parseaddr(settings.mail_from)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise StartupError(
                "AUTHHOOKS_MAIL_FROM must be set to the address mails come from "
                "(such as no-reply@example.com) when AUTHHOOKS_SMTP_HOST is set"
            )
        tls = None
        if settings.smtp_security != "none":
            try:
                tls = ssl.create_default_context(cafile=settings.smtp_ca_bundle or None)
            except (OSError, ssl.SSLError) as error:
                raise StartupError(
                    f"AUTHHOOKS_SMTP_CA_BUNDLE {settings.smtp_ca_bundle}: "
                    f"not a readable PEM file of CA certificates ({error})"
                ) from None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            sender=address,
            from_header=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            tls=tls,
        )

    def describe(self) -> str:
        """Where mail goes, for the operator: never the credentials."""
        login = ", with a login" if self.username else ""
        return f"{self.host}:{self.port} ({self.security}{login}), from {self.sender}"


def announce(settings: Settings) -> None:
    """Say once, at start, whether mail is on and where it goes; StartupError if its
    settings cannot work."""
    smtp = SmtpSettings.from_settings(settings)
    if smtp is None:
        log.warning(
            "mail is off (AUTHHOOKS_SMTP_HOST is not set): no password reset or email "
            "verification mail is sent, and POST /dbconnections/change_password answers "
            "400 mail_not_configured"
        )
    else:
        log.info("mail goes through %s", smtp.describe())


class SmtpSender:
    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    async def send(self, message: EmailMessage, recipient: str) -> None:
        """Hand ``message`` to the SMTP server for ``recipient``; MailNotSent if it
        was not accepted."""
        smtp = self.smtp
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await aiosmtplib.send(
                    message,
                    sender=smtp.sender,
                    recipients=[recipient],
                    hostname=smtp.host,
                    port=smtp.port,
                    username=smtp.username or None,
                    password=smtp.password if smtp.username else None,
                    use_tls=smtp.security == "tls",
                    # Required, not opportunistic: never a silent fall back to plain text.
                    start_tls=smtp.security == "starttls",
                    tls_context=smtp.tls,
                    timeout=SEND_TIMEOUT,
                )
        except TimeoutError:
            raise MailNotSent(f"no answer within {SEND_TIMEOUT:g} s") from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise MailNotSent(_reason(error, recipient, smtp.password)) from None


def _reason(error: Exception, recipient: str, password: str) -> str:
    """What went wrong, as the SMTP library or the system says it, without the
    recipient's address (the server's answer may repeat it) or the password."""
    text = str(error) or "no detail"
    for secret in (recipient, password):
        if secret:
            text = text.replace(secret, "<redacted>")
    text = " ".join(text.split())[:_MAX_REASON_CHARS]
    return f"{type(error).__name__}: {text}"
