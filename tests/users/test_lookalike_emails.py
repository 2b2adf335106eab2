"""One account per address however it is spelt: Unicode compatibility forms (NFKC)
and the Unicode or punycode spelling of a domain are one email. And what someone
typed as a login that names nobody is never stored as typed."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import Server, unique
from tests.users.helpers import (
    OTHER_PASSWORD,
    PASSWORD,
    create_api,
    create_app,
    find_user,
    password_token,
    signup,
)


def fullwidth(text: str) -> str:
    """Fullwidth forms of the letters and digits: NFKC makes them ASCII again."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in text)


def test_compatibility_lookalikes_are_the_same_account(server: Server) -> None:
    app = create_app(server)
    local = unique("ada").replace("-", "")
    assert signup(server, app["client_id"], f"{local}@example.com").status_code == 200
    # Fullwidth letters: NFKC makes them the ASCII ones.
    twin = signup(server, app["client_id"], f"{fullwidth(local)}@example.com")
    assert twin.status_code == 409, twin.text
    audience = create_api(server)
    login = password_token(
        server, app["client_id"], f"{fullwidth(local).upper()}@example.com", PASSWORD, audience
    )
    assert login.status_code == 200, login.text


def test_unicode_and_punycode_domains_are_one_account_and_both_log_in(server: Server) -> None:
    app = create_app(server)
    local = unique("ada")
    made = signup(server, app["client_id"], f"{local}@bücher.example")
    assert made.status_code == 200, made.text
    # Stored with the domain IDNA-encoded, as every mail system takes it.
    assert made.json()["email"] == f"{local}@xn--bcher-kva.example"
    assert find_user(server, f"{local}@BÜCHER.example")["email"] == made.json()["email"]
    twin = signup(server, app["client_id"], f"{local}@XN--BCHER-KVA.example")
    assert twin.status_code == 409, twin.text
    audience = create_api(server)
    for spelling in (f"{local}@bücher.example", f"{local}@xn--bcher-kva.example"):
        login = password_token(server, app["client_id"], spelling, PASSWORD, audience)
        assert login.status_code == 200, (spelling, login.text)


def test_the_users_search_takes_any_spelling_of_an_email(server: Server) -> None:
    """``q`` finds part of an email however it is typed: Unicode or punycode domain,
    any case, compatibility forms."""
    app = create_app(server)
    tag = unique("b").replace("-", "")
    domain = f"bücher{tag}.example"
    made = signup(server, app["client_id"], f"ada.{tag}@{domain}")
    assert made.status_code == 200, made.text
    stored = made.json()["email"]
    assert stored.startswith(f"ada.{tag}@xn--")
    with server.api() as api:
        for q in (
            f"bücher{tag}",
            f"BÜCHER{tag}",
            f"@{domain}",
            f"ada.{tag}@{domain.upper()}",
            f"{fullwidth(f'ada.{tag}')}@bücher{tag}",
            stored.split("@")[1],
        ):
            found = api.get("/users", params={"q": q})
            assert found.status_code == 200, found.text
            assert [user["email"] for user in found.json()] == [stored], q


def test_a_reset_ticket_takes_any_spelling_of_the_email(server: Server) -> None:
    app = create_app(server)
    local = unique("ada").replace("-", "")
    made = signup(server, app["client_id"], f"{local}@xn--bcher-kva.example")
    assert made.status_code == 200
    user_id = "auth0|" + made.json()["_id"]
    with server.api() as api:
        for spelling in (
            f"{local}@bücher.example",
            f"{fullwidth(local)}@BÜCHER.example",
            f"{local.upper()}@xn--bcher-kva.example",
        ):
            ticket = api.post(
                "/tickets/password-change",
                json={"email": spelling, "connection_id": "con_default"},
            )
            assert ticket.status_code == 201, (spelling, ticket.text)
            page = httpx.get(ticket.json()["ticket"])
            assert page.status_code == 200
            assert f"{local}@xn--bcher-kva.example" in page.text
        shown = api.get(f"/users/{user_id}").json()
        assert shown["email"] == f"{local}@xn--bcher-kva.example"


def test_an_admin_email_is_normalised_the_same_way(server: Server) -> None:
    local = unique("admin")
    with server.api() as api:
        made = api.post(
            "/admins",
            json={
                "email": f"{fullwidth(local)}@bücher.example",
                "password": "Correct-Horse-42-battery",
                "scopes": ["read:hooks"],
            },
        )
    assert made.status_code == 201, made.text
    assert made.json()["email"] == f"{local}@xn--bcher-kva.example"


def test_unknown_logins_are_not_stored_as_typed(server: Server) -> None:
    app = create_app(server)
    audience = create_api(server)
    # People type passwords into the login field: none of it may reach the table.
    typed = unique("Typed-Secret") + "@example.com"
    assert (
        password_token(server, app["client_id"], typed, OTHER_PASSWORD, audience).status_code == 400
    )
    typed_name = unique("typedsecretname")
    answer = password_token(server, app["client_id"], typed_name, OTHER_PASSWORD, audience)
    assert answer.status_code == 400
    typed_admin = unique("typed-admin") + "@example.com"
    signed = httpx.post(
        server.url + "/dashboard/session", json={"email": typed_admin, "password": "wrong"}
    )
    assert signed.status_code == 401
    database = Database(server.database_url)
    try:
        with database.session() as session:
            keys = list(session.scalars(select(models.LoginFailure.key)))
    finally:
        database.dispose()
    assert keys
    for text in (typed, typed_name, typed_admin):
        assert not [key for key in keys if text.lower().split("@")[0] in key.lower()], keys
