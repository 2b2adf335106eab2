"""POST /dbconnections/change_password mails a reset link, as Auth0's does; the
link opens /lo/reset, whose form sets the password once."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import unique
from tests.mail.conftest import RESETS_PER_EMAIL, RESETS_PER_IP, MailServer, ticket_of
from tests.mail.helpers import (
    NEW_PASSWORD,
    RESET_SENT,
    ask_reset,
    client_address,
    fill_reset_form,
    hidden_fields,
    outbox_rows,
    unescape,
    user_with_mail,
)
from tests.users.helpers import (
    PASSWORD,
    create_api,
    create_app,
    find_user,
    new_email,
    password_token,
    signup,
)
from tests.users.test_lookalike_emails import fullwidth


def test_a_mailed_link_resets_the_password_once(mail: MailServer) -> None:
    app, email = user_with_mail(mail)
    audience = create_api(mail.server)

    asked = ask_reset(mail, app["client_id"], email, connection="Username-Password-Authentication")
    assert asked.status_code == 200, asked.text
    assert asked.headers["content-type"] == "text/plain; charset=utf-8"
    assert asked.text == RESET_SENT

    sent = mail.wait_for_mail(email, 2)  # the first was the signup's verification mail
    assert sent.message["Subject"] == "Reset your password"
    assert sent.message["From"] == "authhooks tests <no-reply@example.com>"
    assert sent.recipients == [email]
    link = sent.link("lo/reset")
    assert link.startswith(mail.server.issuer + "lo/reset?ticket=")
    assert "1 hour" in sent.text

    page = httpx.get(link)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "form-action 'self'" in csp
    assert "script-src" not in csp  # default-src 'none': no scripts at all
    assert email in page.text
    assert page.text.count('autocomplete="new-password"') == 2
    assert "<label>New password" in page.text
    assert set(hidden_fields(page.text)) == {"ticket", "_csrf"}
    assert find_user(mail.server, email)["email_verified"] is False

    # A browser's post: its own origin.
    origin = mail.server.issuer.rstrip("/")
    done = fill_reset_form(link, NEW_PASSWORD, Origin=origin, **{"Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 200, done.text
    assert "Your password has been changed" in done.text

    assert password_token(mail.server, app["client_id"], email, NEW_PASSWORD, audience).is_success
    old = password_token(mail.server, app["client_id"], email, PASSWORD, audience)
    assert old.status_code == 400
    user = find_user(mail.server, email)
    assert user["email_verified"] is True  # following the mailed link proved the mailbox
    assert user["last_password_reset"] is not None

    again = httpx.get(link)
    assert again.status_code == 400
    assert "already been used" in again.text
    assert 'type="password"' not in again.text
    posted = httpx.post(
        link.split("?")[0],
        data={
            **hidden_fields(page.text),
            "newPassword": "Another-Fence-77",
            "confirmNewPassword": "Another-Fence-77",
        },
    )
    assert posted.status_code == 400
    assert "already been used" in posted.text

    # Each mail was sent once; what it said (its link) is no longer stored.
    rows = outbox_rows(mail, email)
    assert sorted((row.kind, row.status, row.attempts) for row in rows) == [
        ("email_verification", "sent", 1),
        ("password_reset", "sent", 1),
    ]
    assert all(row.sealed_content is None for row in rows)
    assert len(mail.smtp.mails_to(email)) == 2


def test_change_password_takes_a_form_body_and_any_spelling(mail: MailServer) -> None:
    app = create_app(mail.server)
    local = unique("ada").replace("-", "")
    stored = f"{local}@xn--bcher-kva.example"
    assert signup(mail.server, app["client_id"], f"{local}@bücher.example").status_code == 200
    mail.wait_for_mail(stored)
    asked = ask_reset(mail, app["client_id"], f"{fullwidth(local)}@BÜCHER.example", form=True)
    assert asked.status_code == 200, asked.text
    assert asked.text == RESET_SENT
    reset = mail.wait_for_mail(stored, 2)
    assert reset.message["Subject"] == "Reset your password"
    assert reset.recipients == [stored]


def test_a_second_link_spends_the_first(mail: MailServer) -> None:
    app, email = user_with_mail(mail)
    ip = client_address()
    assert ask_reset(mail, app["client_id"], email, ip=ip).status_code == 200
    first = mail.wait_for_mail(email, 2).link("lo/reset")
    assert ask_reset(mail, app["client_id"], email, ip=ip).status_code == 200
    second = mail.wait_for_mail(email, 3).link("lo/reset")
    assert fill_reset_form(second, NEW_PASSWORD).status_code == 200
    refused = httpx.get(first)
    assert refused.status_code == 400
    assert "already been used" in refused.text


def test_an_unknown_or_blocked_address_gets_the_same_answer_and_no_mail(mail: MailServer) -> None:
    app, known = user_with_mail(mail)
    _, blocked = user_with_mail(mail)
    with mail.server.api() as api:
        user = find_user(mail.server, blocked)
        assert api.patch(f"/users/{user['user_id']}", json={"blocked": True}).is_success
    unknown = new_email()

    answers = [ask_reset(mail, app["client_id"], email) for email in (unknown, blocked, known)]
    for answer in answers:
        assert answer.status_code == 200
        assert answer.content == answers[-1].content
        assert answer.headers["content-type"] == answers[-1].headers["content-type"]
    # The known user's mail was asked for last: once it is here, any other would be.
    mail.wait_for_mail(known, 2)
    time.sleep(0.5)
    assert mail.smtp.mails_to(unknown) == []
    assert len(mail.smtp.mails_to(blocked)) == 1  # its verification mail only


def test_known_and_unknown_addresses_take_about_as_long(mail: MailServer) -> None:
    app = create_app(mail.server)
    known = []
    for _ in range(7):
        email = new_email()
        assert signup(mail.server, app["client_id"], email).status_code == 200
        known.append(email)

    def timed(email: str) -> float:
        began = time.perf_counter()
        assert ask_reset(mail, app["client_id"], email).status_code == 200
        return time.perf_counter() - began

    # Taken in turns, so that a busy moment of the machine weighs on both alike.
    pairs = sorted((timed(email), timed(new_email())) for email in known)
    known_median = sorted(pair[0] for pair in pairs)[3]
    unknown_median = sorted(pair[1] for pair in pairs)[3]
    assert abs(known_median - unknown_median) < 0.5 * max(known_median, unknown_median)


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"client_id": "nothing", "email": "ada@example.com"}, 400, "invalid_client", "nothing"),
        ({"email": "ada@example.com"}, 400, "invalid_body", "client_id"),
        ({"client_id": "{client}"}, 400, "invalid_body", "email"),
        ({"client_id": "{client}", "email": "no address"}, 400, "invalid_body", "email"),
        (
            {"client_id": "{client}", "email": "ada@example.com", "connection": "other"},
            400,
            "invalid_body",
            "Username-Password-Authentication",
        ),
        (
            {"client_id": "{client}", "email": "ada@example.com", "password": "x"},
            400,
            "invalid_body",
            "password",
        ),
    ],
)
def test_change_password_refuses_bad_requests_in_auth0s_shape(
    mail: MailServer, body: dict[str, str], status: int, code: str, words: str
) -> None:
    client_id = create_app(mail.server)["client_id"]
    sent = {key: value.format(client=client_id) for key, value in body.items()}
    answer = httpx.post(mail.url + "/dbconnections/change_password", json=sent)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["code"] == code
    assert error["statusCode"] == status
    assert words in error["description"]


def test_change_password_wants_json_or_a_form(mail: MailServer) -> None:
    answer = httpx.post(
        mail.url + "/dbconnections/change_password",
        content=b"client_id=x",
        headers={"content-type": "text/plain"},
    )
    assert answer.status_code == 415
    assert answer.json()["code"] == "invalid_body"


def test_forged_links_are_refused(mail: MailServer) -> None:
    for link in (
        mail.url + "/lo/reset?ticket=forged-ticket-of-no-one",
        mail.url + "/lo/reset",
        mail.url + "/lo/reset?ticket=",
    ):
        page = httpx.get(link)
        assert page.status_code == 400, link
        assert "This link is not valid" in page.text
        assert 'type="password"' not in page.text
    posted = httpx.post(
        mail.url + "/lo/reset",
        data={
            "ticket": "forged",
            "_csrf": "0" * 64,
            "newPassword": NEW_PASSWORD,
            "confirmNewPassword": NEW_PASSWORD,
        },
    )
    assert posted.status_code == 400
    assert "This link is not valid" in posted.text


def test_the_form_says_which_rules_a_password_fails_and_the_link_still_works(
    mail: MailServer,
) -> None:
    app, email = user_with_mail(mail)
    assert ask_reset(mail, app["client_id"], email).status_code == 200
    link = mail.wait_for_mail(email, 2).link("lo/reset")

    weak = fill_reset_form(link, "password")
    assert weak.status_code == 400
    text = unescape(weak.text)
    assert "Not met: At least 3 of the following 4 types of characters" in text
    assert "Not met: Not one of the most common passwords" in text
    assert "Met: At least 8 characters in length" in text
    assert 'aria-invalid="true"' in text

    different = fill_reset_form(link, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert different.status_code == 400
    assert "The two passwords are not the same." in different.text

    assert fill_reset_form(link, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},  # an opaque origin: a sandboxed frame, a data: URL
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
    ],
)
def test_the_form_refuses_posts_from_other_sites(mail: MailServer, headers: dict[str, str]) -> None:
    app, email = user_with_mail(mail)
    assert ask_reset(mail, app["client_id"], email).status_code == 200
    link = mail.wait_for_mail(email, 2).link("lo/reset")
    refused = fill_reset_form(link, NEW_PASSWORD, **headers)
    assert refused.status_code == 403
    assert "not sent from this site" in refused.text
    own = mail.server.issuer.rstrip("/")
    done = fill_reset_form(link, NEW_PASSWORD, Origin=own, **{"Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 200, done.text


def test_the_hidden_field_is_bound_to_the_ticket(mail: MailServer) -> None:
    app, email = user_with_mail(mail)
    assert ask_reset(mail, app["client_id"], email).status_code == 200
    link = mail.wait_for_mail(email, 2).link("lo/reset")
    fields = hidden_fields(httpx.get(link).text)
    assert fields["ticket"] == ticket_of(link)
    forged = httpx.post(
        link.split("?")[0],
        data={
            **fields,
            "_csrf": "f" * 64,
            "newPassword": NEW_PASSWORD,
            "confirmNewPassword": NEW_PASSWORD,
        },
    )
    assert forged.status_code == 403
    missing = httpx.post(
        link.split("?")[0],
        data={"ticket": fields["ticket"], "newPassword": NEW_PASSWORD},
    )
    assert missing.status_code == 403
    assert fill_reset_form(link, NEW_PASSWORD).status_code == 200


def test_reset_requests_are_capped_per_address_and_per_client_address(mail: MailServer) -> None:
    client_id = create_app(mail.server)["client_id"]
    # Per address, known or not, from anywhere.
    email = new_email()
    for _ in range(RESETS_PER_EMAIL):
        assert ask_reset(mail, client_id, email).status_code == 200
    capped = ask_reset(mail, client_id, email.upper())
    assert capped.status_code == 429
    assert capped.json()["code"] == "too_many_attempts"
    assert int(capped.headers["Retry-After"]) > 0
    # Per client address (its /64), whatever the addresses asked for.
    network = client_address().removesuffix("1")
    for host in range(1, RESETS_PER_IP + 1):
        assert ask_reset(mail, client_id, new_email(), ip=f"{network}{host:x}").status_code == 200
    assert ask_reset(mail, client_id, new_email(), ip=f"{network}beef").status_code == 429
