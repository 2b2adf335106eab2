"""POST /api/v2/tickets/password-change and /email-verification: links an admin
hands to a user by other means than this server's mail."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.mail.conftest import MailServer
from tests.mail.helpers import NEW_PASSWORD, fill_reset_form, outbox_rows
from tests.users.helpers import PASSWORD, create_api, create_app, new_email, password_token

RESULT_URL = "https://app.example.com/after?from=mail"


def made_user(mail: MailServer) -> dict[str, Any]:
    with mail.server.api() as api:
        made = api.post(
            "/users", json={"email": new_email(), "password": PASSWORD, "verify_email": False}
        )
    assert made.status_code == 201, made.text
    user: dict[str, Any] = made.json()
    return user


def test_a_password_change_ticket_by_user_id(mail: MailServer) -> None:
    user = made_user(mail)
    with mail.server.api(scope="create:user_tickets") as api:
        made = api.post(
            "/tickets/password-change",
            json={"user_id": user["user_id"], "result_url": RESULT_URL, "ttl_sec": 0},
        )
    assert made.status_code == 201, made.text
    assert set(made.json()) == {"ticket"}
    link = made.json()["ticket"]
    assert link.startswith(mail.server.issuer + "lo/reset?ticket=")

    done = fill_reset_form(link, NEW_PASSWORD)
    assert done.status_code == 200, done.text
    assert f'<a href="{RESULT_URL.replace("&", "&amp;")}">Continue</a>' in done.text
    app = create_app(mail.server)
    audience = create_api(mail.server)
    login = password_token(mail.server, app["client_id"], user["email"], NEW_PASSWORD, audience)
    assert login.status_code == 200, login.text
    with mail.server.api() as api:
        shown = api.get(f"/users/{user['user_id']}").json()
    # Whoever opened it need not have read the user's mail.
    assert shown["email_verified"] is False
    assert shown["last_password_reset"] is not None
    assert outbox_rows(mail, user["email"]) == []  # no mail: the admin hands the link over
    assert httpx.get(link).status_code == 400


def test_a_password_change_ticket_by_email_that_verifies_it(mail: MailServer) -> None:
    user = made_user(mail)
    with mail.server.api() as api:
        made = api.post(
            "/tickets/password-change",
            json={
                "email": user["email"].upper(),
                "connection_id": "con_default",
                "mark_email_as_verified": True,
            },
        )
        assert made.status_code == 201, made.text
        assert fill_reset_form(made.json()["ticket"], NEW_PASSWORD).status_code == 200
        assert api.get(f"/users/{user['user_id']}").json()["email_verified"] is True


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "user_id"),
        ({"user_id": "{user}", "email": "{email}", "connection_id": "con_default"}, 400, "both"),
        ({"email": "{email}"}, 400, "connection_id"),
        ({"email": "{email}", "connection_id": "con_other"}, 400, "con_default"),
        ({"email": "nobody@example.com", "connection_id": "con_default"}, 404, "no user"),
        ({"user_id": "auth0|" + "0" * 24}, 404, "no user"),
        ({"user_id": "{user}", "ttl_sec": 31 * 86400}, 400, "ttl_sec"),
        ({"user_id": "{user}", "result_url": "javascript:alert(1)"}, 400, "result_url"),
        ({"user_id": "{user}", "client_id": "x"}, 400, "client_id"),
    ],
)
def test_password_change_tickets_refuse_bad_bodies(
    mail: MailServer, body: dict[str, Any], status: int, words: str
) -> None:
    user = made_user(mail)
    sent = {
        key: value.format(user=user["user_id"], email=user["email"])
        if isinstance(value, str)
        else value
        for key, value in body.items()
    }
    with mail.server.api() as api:
        refused = api.post("/tickets/password-change", json=sent)
    assert refused.status_code == status, refused.text
    assert words in refused.json()["message"]


def test_a_ticket_expires(mail: MailServer) -> None:
    user = made_user(mail)
    with mail.server.api() as api:
        made = api.post("/tickets/password-change", json={"user_id": user["user_id"], "ttl_sec": 1})
    link = made.json()["ticket"]
    shown = httpx.get(link)
    assert shown.status_code == 200
    time.sleep(1.2)
    expired = httpx.get(link)
    assert expired.status_code == 400
    assert "This link has expired" in expired.text


def test_an_email_verification_ticket_sends_the_person_to_the_result_url(
    mail: MailServer,
) -> None:
    user = made_user(mail)
    with mail.server.api(scope="create:user_tickets") as api:
        made = api.post(
            "/tickets/email-verification",
            json={"user_id": user["user_id"], "result_url": RESULT_URL},
        )
    assert made.status_code == 201, made.text
    link = made.json()["ticket"]
    assert link.startswith(mail.server.issuer + "u/email-verification?ticket=")

    followed = httpx.get(link)
    assert followed.status_code == 302
    target = urlsplit(followed.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://app.example.com/after"
    query = parse_qs(target.query)
    assert query["from"] == ["mail"]
    assert query["success"] == ["true"]
    assert "verified" in query["message"][0]
    with mail.server.api() as api:
        assert api.get(f"/users/{user['user_id']}").json()["email_verified"] is True
        unknown = api.post("/tickets/email-verification", json={"user_id": "auth0|nobody"})
        assert unknown.status_code == 404
    assert httpx.get(link).status_code == 400


def test_tickets_need_their_scope(mail: MailServer) -> None:
    user = made_user(mail)
    with mail.server.api(scope="read:users update:users") as api:
        for path in ("/tickets/password-change", "/tickets/email-verification"):
            refused = api.post(path, json={"user_id": user["user_id"]})
            assert refused.status_code == 403
            assert refused.json()["errorCode"] == "insufficient_scope"
    with mail.server.api(scope="create:user_tickets") as api:
        refused = api.post("/jobs/verification-email", json={"user_id": user["user_id"]})
        assert refused.status_code == 403
        assert "update:users" in refused.json()["message"]
