"""A server under test sending through STARTTLS with a login, the SMTP server's
certificate checked against a CA bundle of the tests' own; the password never
shown."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS
from tests.mail.conftest import MailServer, mail_server
from tests.mail.smtp import Login, MailCatcher, make_certificates
from tests.users.helpers import create_app, new_email, signup

SMTP_PASSWORD = "Smtp-Secret-Otter-8812"


@pytest.fixture(scope="module", params=BACKENDS)
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MailServer]:
    tmp_path = tmp_path_factory.mktemp("starttls-" + request.param)
    certificates = make_certificates(tmp_path / "certs")
    smtp = MailCatcher(starttls=certificates.server, login=Login("mailer", SMTP_PASSWORD)).start()
    try:
        with mail_server(
            tmp_path,
            request.param,
            smtp,
            smtp_security="starttls",
            smtp_ca_bundle=str(certificates.ca_file),
            smtp_username="mailer",
            smtp_password=SMTP_PASSWORD,
        ) as running:
            running.secrets.append(SMTP_PASSWORD)
            yield running
    finally:
        smtp.stop()


def test_mail_goes_through_starttls_with_a_login(secured: MailServer) -> None:
    app = create_app(secured.server)
    email = new_email()
    assert signup(secured.server, app["client_id"], email).status_code == 200
    sent = secured.wait_for_mail(email)
    assert sent.message["Subject"] == "Verify your email address"

    lines = [json.loads(line) for line in secured.log_text().splitlines() if line.startswith("{")]
    announced = [line["message"] for line in lines if line["message"].startswith("mail goes")]
    port = secured.smtp.port
    assert announced == [
        f"mail goes through 127.0.0.1:{port} (starttls, with a login), from no-reply@example.com"
    ]
    secured.assert_log_keeps_secrets()
