"""The SMTP server is down: requests answer as ever, each failed attempt is logged
(with no secret), and the mails go out once it is back. And a link outlives its
lifetime: refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.mail.conftest import MailServer, mail_server
from tests.mail.helpers import NEW_PASSWORD, RESET_SENT, ask_reset, hidden_fields
from tests.mail.smtp import MailCatcher
from tests.users.helpers import create_app, find_user, new_email, signup, wait_for

LIFETIME = 3  # seconds a reset link lives on this server


@pytest.fixture(scope="module", params=BACKENDS)
def late(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MailServer]:
    """A server whose SMTP server is not listening until a test starts it."""
    smtp = MailCatcher()
    try:
        with mail_server(
            tmp_path_factory.mktemp("late-" + request.param),
            request.param,
            smtp,
            mail_backoff=0.3,
            password_reset_ticket_lifetime=LIFETIME,
        ) as running:
            yield running
    finally:
        smtp.stop()


def log_lines(server: MailServer) -> list[dict[str, str]]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def test_mail_waits_for_the_smtp_server(late: MailServer) -> None:
    late.smtp.stop()  # down, whatever ran before
    app = create_app(late.server)
    email = new_email()
    assert signup(late.server, app["client_id"], email).status_code == 200
    asked = ask_reset(late, app["client_id"], email)
    assert asked.status_code == 200
    assert asked.text == RESET_SENT

    def failures() -> list[dict[str, str]]:
        return [
            line
            for line in log_lines(late)
            if line["logger"] == "authhooks.identity.mail.outbox" and "not sent" in line["message"]
        ]

    found = wait_for(lambda: len(failures()) >= 4 and failures())
    assert all(line["level"] == "warning" for line in found)
    assert any("password_reset" in line["message"] for line in found)
    assert any("SMTPConnectError" in line["message"] for line in found)
    assert any("next attempt in" in line["message"] for line in found)
    assert not any(email in line["message"] for line in found)

    late.smtp.start()
    subjects = {late.wait_for_mail(email, n).message["Subject"] for n in (1, 2)}
    assert subjects == {"Verify your email address", "Reset your password"}

    def sent_late() -> list[str]:
        return [
            line["message"]
            for line in log_lines(late)
            if ": sent (attempt " in line["message"] and "(attempt 1 of" not in line["message"]
        ]

    assert len(wait_for(lambda: len(sent_late()) >= 2 and sent_late())) == 2
    late.assert_log_keeps_secrets()


def test_an_expired_link_is_refused(late: MailServer) -> None:
    late.smtp.start()
    app = create_app(late.server)
    email = new_email()
    assert signup(late.server, app["client_id"], email).status_code == 200
    assert ask_reset(late, app["client_id"], email).status_code == 200
    asked_at = time.monotonic()
    reset = next(
        mail
        for mail in (late.wait_for_mail(email, 1), late.wait_for_mail(email, 2))
        if mail.message["Subject"] == "Reset your password"
    )
    assert f"for {LIFETIME} seconds" in reset.text
    link = reset.link("lo/reset")
    page = httpx.get(link)
    if time.monotonic() - asked_at < LIFETIME - 0.5:
        assert page.status_code == 200
    fields = hidden_fields(page.text)
    time.sleep(max(0.0, LIFETIME + 0.3 - (time.monotonic() - asked_at)))

    expired = httpx.get(link)
    assert expired.status_code == 400
    assert "This link has expired" in expired.text
    if fields:
        posted = httpx.post(
            link.split("?")[0],
            data={**fields, "newPassword": NEW_PASSWORD, "confirmNewPassword": NEW_PASSWORD},
        )
        assert posted.status_code == 400
        assert "This link has expired" in posted.text
    assert find_user(late.server, email)["last_password_reset"] is None
