"""Email verification: a link mailed at signup (Auth0's default), or when an admin
asks for one (POST /api/v2/jobs/verification-email); opening it verifies, once."""

from __future__ import annotations

import httpx

from tests.mail.conftest import MailServer
from tests.mail.helpers import outbox_rows
from tests.users.helpers import PASSWORD, create_app, find_user, new_email, signup


def test_signup_mails_a_link_that_verifies_the_address_once(mail: MailServer) -> None:
    app = create_app(mail.server)
    email = new_email()
    answer = signup(mail.server, app["client_id"], email)
    assert answer.status_code == 200
    assert answer.json()["email_verified"] is False

    sent = mail.wait_for_mail(email)
    assert sent.message["Subject"] == "Verify your email address"
    assert "5 days" in sent.text
    link = sent.link("u/email-verification")
    assert link.startswith(mail.server.issuer + "u/email-verification?ticket=")
    assert find_user(mail.server, email)["email_verified"] is False

    page = httpx.get(link)
    assert page.status_code == 200
    assert "Your email was verified" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert find_user(mail.server, email)["email_verified"] is True

    again = httpx.get(link)
    assert again.status_code == 400
    assert "already been used" in again.text


def test_a_link_made_for_an_old_address_verifies_nothing(mail: MailServer) -> None:
    app = create_app(mail.server)
    email = new_email()
    assert signup(mail.server, app["client_id"], email).status_code == 200
    link = mail.wait_for_mail(email).link("u/email-verification")
    user = find_user(mail.server, email)
    with mail.server.api() as api:
        changed = api.patch(f"/users/{user['user_id']}", json={"email": new_email()})
        assert changed.status_code == 200, changed.text
    refused = httpx.get(link)
    assert refused.status_code == 400
    assert "not valid" in refused.text
    with mail.server.api() as api:
        assert api.get(f"/users/{user['user_id']}").json()["email_verified"] is False


def test_users_made_through_the_api_are_mailed_as_auth0_does(mail: MailServer) -> None:
    by_default, not_asked, verified = new_email(), new_email(), new_email()
    with mail.server.api() as api:
        for email, fields in (
            (by_default, {}),
            (not_asked, {"verify_email": False}),
            (verified, {"email_verified": True}),
        ):
            made = api.post("/users", json={"email": email, "password": PASSWORD, **fields})
            assert made.status_code == 201, made.text
    mail.wait_for_mail(by_default)
    assert outbox_rows(mail, not_asked) == []
    assert outbox_rows(mail, verified) == []


def test_a_verification_email_job(mail: MailServer) -> None:
    email = new_email()
    with mail.server.api() as api:
        made = api.post(
            "/users", json={"email": email, "password": PASSWORD, "verify_email": False}
        )
        assert made.status_code == 201, made.text
        user_id = made.json()["user_id"]
        job = api.post("/jobs/verification-email", json={"user_id": user_id})
        assert job.status_code == 201, job.text
        shown = job.json()
        assert shown["type"] == "verification_email"
        assert shown["status"] == "pending"
        assert shown["id"].startswith("job_")
        assert shown["created_at"]

        unknown = api.post("/jobs/verification-email", json={"user_id": "auth0|" + "0" * 24})
        assert unknown.status_code == 404
        bad = api.post("/jobs/verification-email", json={})
        assert bad.status_code == 400

    link = mail.wait_for_mail(email).link("u/email-verification")
    assert httpx.get(link).status_code == 200
    assert find_user(mail.server, email)["email_verified"] is True
    assert [row.id.removeprefix("mail_") for row in outbox_rows(mail, email)] == [
        shown["id"].removeprefix("job_")
    ]
