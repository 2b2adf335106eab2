"""What the mail tests do over and over: ask for a reset, follow a link, fill the form."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx

from tests.mail.conftest import MailServer
from tests.users.helpers import create_app, new_email, signup

# change_password's answer, as plain text (Auth0's is not JSON).
RESET_SENT = "We've just sent you an email to reset your password."
NEW_PASSWORD = "Mended-Fences-1984"


def client_address() -> str:
    """A client address of a /64 of its own (uvicorn takes X-Forwarded-For from
    loopback), so that each test's reset requests count apart from the others'."""
    return f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"


def ask_reset(
    server: MailServer | Any,
    client_id: str,
    email: str,
    *,
    ip: str | None = None,
    form: bool = False,
    **fields: str,
) -> httpx.Response:
    url = server.url + "/dbconnections/change_password"
    body = {"client_id": client_id, "email": email, **fields}
    headers = {"X-Forwarded-For": ip or client_address()}
    if form:
        return httpx.post(url, data=body, headers=headers)
    return httpx.post(url, json=body, headers=headers)


def user_with_mail(mail: MailServer, **app_fields: Any) -> tuple[dict[str, Any], str]:
    """An app allowing the password grant and a user who signed up through it (its
    verification mail received)."""
    app = create_app(mail.server, **app_fields)
    email = new_email()
    assert signup(mail.server, app["client_id"], email).status_code == 200
    mail.wait_for_mail(email)
    return app, email


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page's form."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def fill_reset_form(
    link: str, password: str, confirm: str | None = None, **headers: str
) -> httpx.Response:
    """GET the reset page of ``link`` and post its form as a browser would."""
    shown = httpx.get(link)
    assert shown.status_code == 200, shown.text
    fields = hidden_fields(shown.text)
    return httpx.post(
        link.split("?", 1)[0],
        data={**fields, "newPassword": password, "confirmNewPassword": confirm or password},
        headers=headers,
    )


def unescape(text: str) -> str:
    return text.replace("&#39;", "'").replace("&quot;", '"').replace("&amp;", "&")


def outbox_rows(mail: MailServer, address: str) -> list[Any]:
    """The outbox's rows of mails to ``address``, as stored."""
    from sqlalchemy import select

    from authhooks.storage.database import Database
    from authhooks.storage.models import OutgoingMail

    database = Database(mail.server.database_url)
    try:
        with database.session() as session:
            return list(
                session.scalars(select(OutgoingMail).where(OutgoingMail.recipient == address))
            )
    finally:
        database.dispose()
