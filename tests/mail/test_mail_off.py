"""A server with no SMTP server: it says so once at start; what needs mail answers
400 mail_not_configured, saying so; links an admin hands over work all the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, Server, run_server
from tests.mail.helpers import NEW_PASSWORD, ask_reset, fill_reset_form
from tests.users.helpers import PASSWORD, create_app, new_email, signup


@pytest.fixture(scope="module", params=BACKENDS)
def no_mail(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    tmp_path = tmp_path_factory.mktemp("no-mail-" + request.param)
    with run_server(tmp_path, request.param) as server:
        yield server, tmp_path / f"server-{server.url.rsplit(':', 1)[1]}.log"


def test_the_server_says_once_that_mail_is_off(no_mail: tuple[Server, Path]) -> None:
    _, log = no_mail
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    off = [line for line in lines if line["message"].startswith("mail is off")]
    assert len(off) == 1
    assert off[0]["level"] == "warning"
    assert "AUTHHOOKS_SMTP_HOST" in off[0]["message"]


def test_change_password_says_mail_is_not_configured(no_mail: tuple[Server, Path]) -> None:
    server, _ = no_mail
    app = create_app(server)
    email = new_email()
    assert signup(server, app["client_id"], email).status_code == 200  # no mail, no error
    for address in (email, new_email()):
        answer = ask_reset(server, app["client_id"], address)
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["code"] == "mail_not_configured"
        assert body["statusCode"] == 400
        assert "SMTP" in body["description"]
    # Its own mistakes are still told first.
    assert ask_reset(server, "nothing", email).status_code == 400


def test_the_management_api_without_mail(no_mail: tuple[Server, Path]) -> None:
    server, _ = no_mail
    with server.api() as api:
        made = api.post("/users", json={"email": new_email(), "password": PASSWORD})
        assert made.status_code == 201, made.text
        user_id = made.json()["user_id"]
        refused = api.post(
            "/users", json={"email": new_email(), "password": PASSWORD, "verify_email": True}
        )
        assert refused.status_code == 400
        assert refused.json()["errorCode"] == "mail_not_configured"
        job = api.post("/jobs/verification-email", json={"user_id": user_id})
        assert job.status_code == 400
        assert "SMTP" in job.json()["message"]

        # A link to hand over needs no mail.
        ticket = api.post("/tickets/password-change", json={"user_id": user_id})
        assert ticket.status_code == 201, ticket.text
        assert fill_reset_form(ticket.json()["ticket"], NEW_PASSWORD).status_code == 200
        verify = api.post("/tickets/email-verification", json={"user_id": user_id})
        assert httpx.get(verify.json()["ticket"]).status_code == 200
        assert api.get(f"/users/{user_id}").json()["email_verified"] is True
