"""Servers under test that send mail to a real SMTP server of the tests' own, and
what the tests share to read those mails and follow their links."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, Server, run_server
from tests.mail.smtp import MailCatcher, Received

MAIL_FROM = "authhooks tests <no-reply@example.com>"
# The shared mail server's caps on reset requests (per address, per client address).
RESETS_PER_EMAIL = 3
RESETS_PER_IP = 5


@dataclass
class MailServer:
    """A server under test, the SMTP server it sends to, and its log."""

    server: Server
    smtp: MailCatcher
    log: Path
    # What must never be in the server's log: each link's ticket, the SMTP password.
    secrets: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_mail(self, address: str, count: int = 1) -> Received:
        """The ``count``-th mail to ``address``; its ticket is remembered as a secret."""
        mail = self.smtp.wait_for(address, count)[count - 1]
        for path in ("lo/reset", "u/email-verification"):
            if f"/{path}?ticket=" in mail.text:
                self.secrets.append(ticket_of(mail.link(path)))
        return mail

    def assert_log_keeps_secrets(self) -> None:
        text = self.log_text()
        leaked = [secret for secret in self.secrets if secret in text]
        assert not leaked, f"secrets in the server log: {leaked}"


def ticket_of(link: str) -> str:
    return httpx.URL(link).params["ticket"]


@contextmanager
def mail_server(
    tmp_path: Path, backend: str, smtp: MailCatcher, **settings: Any
) -> Iterator[MailServer]:
    """A server sending its mail to ``smtp`` (which it need not find listening);
    after it stops, its log is checked for every secret the tests saw."""
    options: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "mail_from": MAIL_FROM,
        "mail_backoff": 0.2,
        "log_level": "info",
        **settings,
    }
    with run_server(tmp_path, backend, **options) as server:
        log = tmp_path / f"server-{server.url.rsplit(':', 1)[1]}.log"
        running = MailServer(server, smtp, log)
        yield running
    running.assert_log_keeps_secrets()


@pytest.fixture(scope="session", params=BACKENDS)
def mail(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MailServer]:
    """A server with mail on, shared by the tests of one backend (each uses addresses
    of its own, and client addresses of its own for the reset throttle)."""
    smtp = MailCatcher().start()
    try:
        with mail_server(
            tmp_path_factory.mktemp("mail-" + request.param),
            request.param,
            smtp,
            password_reset_max_per_email=RESETS_PER_EMAIL,
            password_reset_max_per_ip=RESETS_PER_IP,
        ) as running:
            yield running
    finally:
        smtp.stop()
