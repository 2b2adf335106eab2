"""Admin users: managed through /api/v2/admins, signed in to the dashboard with an
email and a password, and given management tokens that hold only what the admin
is allowed, as stored now."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.api.helpers import assert_api_error
from tests.conftest import Server, unique

PASSWORD = "Correct-Horse-42-battery"


def new_admin(server: Server, scopes: list[str], **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        body = {"email": unique("admin") + "@example.com", "password": PASSWORD, "scopes": scopes}
        response = api.post("/admins", json=body | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def sign_in(server: Server, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        server.url + "/dashboard/session", json={"email": email, "password": password}
    )


def admin_token(server: Server, signed: httpx.Response) -> str:
    minted = httpx.post(
        server.url + "/dashboard/session/token",
        cookies=signed.cookies,
        headers={"X-CSRF-Token": signed.json()["csrf_token"]},
    )
    assert minted.status_code == 200, minted.text
    token: str = minted.json()["access_token"]
    return token


def as_admin(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + "/api/v2", headers={"Authorization": f"Bearer {token}"}
    )


def test_an_admin_signs_in_and_holds_only_its_scopes(server: Server) -> None:
    admin = new_admin(server, ["read:hooks", "create:hooks", "read:logs"])
    assert admin["email"].endswith("@example.com")
    assert "password" not in admin
    assert "password_hash" not in admin
    assert admin["created_by"] == server.admin_id
    # The email is matched whatever its case.
    signed = sign_in(server, admin["email"].upper())
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["admin"] == {"id": admin["id"], "email": admin["email"]}
    assert body["client_id"] is None
    assert body["scopes"] == ["create:hooks", "read:hooks", "read:logs"]
    assert "httponly" in signed.headers["set-cookie"].lower()

    token = admin_token(server, signed)
    with as_admin(server, token) as api:
        assert api.get("/hooks").status_code == 200
        refused = api.get("/clients")
        assert_api_error(refused, 403, "read:clients", "insufficient_scope")
        # What an admin saves is recorded as the admin's.
        made = api.post(
            "/hooks",
            json={
                "name": unique("by-admin"),
                "triggerId": "credentials-exchange",
                "script": "def credentials_exchange(client, scope, audience, context):\n"
                "    return {}\n",
            },
        )
        assert made.status_code == 201, made.text
        versions = api.get(f"/hooks/{made.json()['id']}/versions").json()
        assert versions[0]["author"] == "admin|" + admin["id"]

    # Narrowing its scopes takes power from the tokens it already holds.
    with server.api() as api:
        narrowed = api.patch(f"/admins/{admin['id']}", json={"scopes": ["read:logs"]})
        assert narrowed.status_code == 200, narrowed.text
    with as_admin(server, token) as api:
        assert api.get("/hooks").status_code == 403
        assert api.get("/logs").status_code == 200

    # Deleting it ends its session and its tokens at once.
    with server.api() as api:
        assert api.delete(f"/admins/{admin['id']}").status_code == 204
        assert api.get(f"/admins/{admin['id']}").status_code == 404
    with as_admin(server, token) as api:
        gone = api.get("/logs")
        assert_api_error(gone, 401, "admin no longer exists", "invalid_token")
    session = httpx.get(server.url + "/dashboard/session", cookies=signed.cookies)
    assert session.status_code == 401


def test_passwords_are_argon2id_and_a_new_one_ends_the_sessions(server: Server) -> None:
    admin = new_admin(server, ["read:hooks"])
    database = Database(server.database_url)
    try:
        with database.session() as session:
            stored = session.get(models.Admin, admin["id"])
            assert stored is not None
            assert stored.password_hash.startswith("$argon2id$")
            assert PASSWORD not in stored.password_hash
    finally:
        database.dispose()
    signed = sign_in(server, admin["email"])
    assert signed.status_code == 200
    new_password = "Another-Long-Secret-77"
    with server.api() as api:
        changed = api.patch(f"/admins/{admin['id']}", json={"password": new_password})
        assert changed.status_code == 200, changed.text
    assert httpx.get(server.url + "/dashboard/session", cookies=signed.cookies).status_code == 401
    assert sign_in(server, admin["email"]).status_code == 401
    assert sign_in(server, admin["email"], new_password).status_code == 200


def test_refused_admin_sign_ins(server: Server) -> None:
    admin = new_admin(server, ["read:hooks"])
    wrong = sign_in(server, admin["email"], "not-the-password")
    assert_api_error(wrong, 401, "wrong email or password")
    unknown = sign_in(server, "nobody@example.com")
    assert_api_error(unknown, 401, "wrong email or password")
    both = httpx.post(
        server.url + "/dashboard/session",
        json={"email": admin["email"], "password": PASSWORD, "client_id": server.admin_id},
    )
    assert_api_error(both, 400, "either client_id and client_secret, or email and password")
    half = httpx.post(server.url + "/dashboard/session", json={"email": admin["email"]})
    assert_api_error(half, 400, "both email and password")
    nothing = new_admin(server, [])
    refused = sign_in(server, nothing["email"])
    assert_api_error(refused, 403, "may not use the management API")
    assert "set-cookie" not in refused.headers


def test_an_admin_left_without_scopes_can_still_see_why_and_sign_out(server: Server) -> None:
    admin = new_admin(server, ["read:hooks"])
    signed = sign_in(server, f"  {admin['email'].title()} ")  # as typed: spaces, capitals
    assert signed.status_code == 200, signed.text
    with server.api() as api:
        assert api.patch(f"/admins/{admin['id']}", json={"scopes": []}).status_code == 200
    session = httpx.get(server.url + "/dashboard/session", cookies=signed.cookies)
    assert session.status_code == 200
    assert session.json()["scopes"] == []
    csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
    minted = httpx.post(
        server.url + "/dashboard/session/token", cookies=signed.cookies, headers=csrf
    )
    assert_api_error(minted, 403, "may no longer use the management API", "access_denied")
    out = httpx.delete(server.url + "/dashboard/session", cookies=signed.cookies, headers=csrf)
    assert out.status_code == 204


def test_client_tokens_are_never_taken_for_an_admins(server: Server) -> None:
    # A client's token names the client, whatever admins exist: it holds the
    # client's grant, and changes are recorded as the client's.
    new_admin(server, ["read:hooks"])
    token = server.management_token()
    with as_admin(server, token) as api:
        made = api.post(
            "/admins",
            json={"email": unique("z") + "@example.com", "password": PASSWORD, "scopes": []},
        )
    assert made.json()["created_by"] == server.admin_id


def test_sign_ins_are_throttled_per_email_and_address(server: Server) -> None:
    admin = new_admin(server, ["read:hooks"])
    limit = 10  # login_max_failures_per_user, as the test server leaves it
    for attempt in range(limit):
        # Every spelling of the address counts against one counter.
        email = admin["email"].upper() if attempt % 2 else f" {admin['email']}"
        assert sign_in(server, email, "wrong").status_code == 401
    throttled = sign_in(server, admin["email"])  # even the right password waits now
    assert_api_error(throttled, 429, "too many failed login attempts", "too_many_attempts")
    assert int(throttled.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"email": "not an email", "password": PASSWORD, "scopes": []}, 400, "email"),
        ({"email": "a@example.com", "password": "short1A!", "scopes": []}, 400, "12 characters"),
        ({"email": "a@example.com", "password": "alllowercaseletters", "scopes": []}, 400, "weak"),
        ({"email": "a@example.com", "password": PASSWORD, "scopes": ["fly:kites"]}, 400, "fly"),
        ({"email": "a@example.com", "password": PASSWORD}, 400, "scopes"),
        ({"email": "a@example.com", "password": PASSWORD, "scopes": [], "x": 1}, 400, "x"),
    ],
    ids=["bad-email", "short-password", "weak-password", "unknown-scope", "no-scopes", "extra"],
)
def test_bad_admins_are_refused_and_nothing_is_stored(
    server: Server, body: dict[str, Any], status: int, message: str
) -> None:
    with server.api() as api:
        before = len(api.get("/admins").json())
        response = api.post("/admins", json=body)
        assert_api_error(response, status, message)
        assert len(api.get("/admins").json()) == before


def test_the_same_email_twice_is_a_conflict(server: Server) -> None:
    admin = new_admin(server, [])
    with server.api() as api:
        again = api.post(
            "/admins", json={"email": admin["email"].upper(), "password": PASSWORD, "scopes": []}
        )
    assert_api_error(again, 409, "already exists", "conflict")


def test_an_admin_cannot_hand_out_or_take_over_more_than_it_holds(server: Server) -> None:
    manager = new_admin(server, ["read:admins", "create:admins", "update:admins", "delete:admins"])
    strong = new_admin(server, ["read:admins", "delete:hooks"])
    token = admin_token(server, sign_in(server, manager["email"]))
    with as_admin(server, token) as api:
        more = api.post(
            "/admins",
            json={
                "email": unique("x") + "@example.com",
                "password": PASSWORD,
                "scopes": ["read:hooks"],
            },
        )
        assert_api_error(more, 403, "read:hooks", "insufficient_scope")
        takeover = api.patch(f"/admins/{strong['id']}", json={"password": "Taken-Over-Now-99"})
        assert_api_error(takeover, 403, "delete:hooks", "insufficient_scope")
        assert api.delete(f"/admins/{strong['id']}").status_code == 403
        widened = api.patch(f"/admins/{manager['id']}", json={"scopes": ["read:hooks"]})
        assert_api_error(widened, 403, "read:hooks", "insufficient_scope")
        # Within its own scopes it manages admins freely.
        peer = api.post(
            "/admins",
            json={
                "email": unique("y") + "@example.com",
                "password": PASSWORD,
                "scopes": ["read:admins"],
            },
        )
        assert peer.status_code == 201, peer.text
        assert peer.json()["created_by"] == "admin|" + manager["id"]
        assert api.delete(f"/admins/{peer.json()['id']}").status_code == 204
    assert sign_in(server, strong["email"]).status_code == 200  # its password is unchanged


def test_an_admin_signs_in_with_any_spelling_of_its_email(server: Server) -> None:
    """Look-alike compatibility forms, the Unicode or punycode domain: one admin."""
    local = unique("admin").replace("-", "")
    admin = new_admin(server, ["read:hooks"], email=f"{local}@bücher.example")
    assert admin["email"] == f"{local}@xn--bcher-kva.example"
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in local)  # NFKC makes it ASCII again
    for spelling in (
        f"{local}@bücher.example",
        f"{local.upper()}@BÜCHER.example",
        f"{local}@XN--BCHER-KVA.example",
        f"{fullwidth}@bücher.example",
    ):
        signed = sign_in(server, spelling)
        assert signed.status_code == 200, (spelling, signed.text)
        assert signed.json()["admin"]["id"] == admin["id"]
