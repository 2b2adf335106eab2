"""/api/v2/users: create, list, search, get, patch and delete users (Auth0's shapes)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Server, unique
from tests.users.helpers import (
    OTHER_PASSWORD,
    PASSWORD,
    create_api,
    create_app,
    new_email,
    password_token,
)

USER_ID = re.compile(r"^auth0\|[0-9a-f]{24}$")
ERROR_KEYS = {"statusCode", "error", "message", "errorCode"}
UNKNOWN_ID = "auth0|" + "0" * 24


@pytest.fixture(scope="module")
def app(server: Server) -> dict[str, Any]:
    return create_app(server)


@pytest.fixture(scope="module")
def audience(server: Server) -> str:
    return create_api(server)


def path(user_id: str) -> str:
    """The user's URL: the '|' of an Auth0 id is URL-encoded, as Auth0's SDKs do."""
    return "/users/" + quote(user_id, safe="")


def create_user(server: Server, **fields: Any) -> dict[str, Any]:
    body = {"email": new_email(), "password": PASSWORD, **fields}
    with server.api() as api:
        response = api.post("/users", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def get_user(server: Server, user_id: str) -> dict[str, Any]:
    with server.api() as api:
        response = api.get(path(user_id))
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()
    return user


def total_users(api: httpx.Client) -> int:
    response = api.get("/users", params={"per_page": 1, "include_totals": "true"})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def assert_error(response: httpx.Response, status: int, code: str, says: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["statusCode"] == status
    assert body["errorCode"] == code, body
    assert says in body["message"], body


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep: {"k": {"k": ... {"k": "leaf"}}}."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    result: dict[str, Any] = value
    return result


def login(server: Server, app: dict[str, Any], audience: str, email: str, password: str) -> Any:
    return password_token(server, str(app["client_id"]), email, password, audience)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# Create


def test_create_returns_the_auth0_user(server: Server) -> None:
    email = new_email()
    username = unique("Ada_Lovelace")
    with server.api() as api:
        response = api.post(
            "/users",
            json={
                "email": email.upper(),
                "password": PASSWORD,
                "connection": "Username-Password-Authentication",
                "username": username,
                "phone_number": "+14155550100",
                "email_verified": True,
                "user_metadata": {"theme": "dark", "nested": {"list": [1, 2, {"a": None}]}},
                "app_metadata": {"plan": "pro"},
            },
        )
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {
        "user_id",
        "email",
        "email_verified",
        "username",
        "phone_number",
        "user_metadata",
        "app_metadata",
        "blocked",
        "created_at",
        "updated_at",
        "last_password_reset",
        "last_login",
        "logins_count",
        "name",
        "nickname",
        "given_name",
        "family_name",
        "picture",
        "phone_verified",
        "identities",
    }
    assert USER_ID.match(user["user_id"]), user["user_id"]
    # Auth0's defaults for the profile a create did not give.
    assert (user["name"], user["nickname"]) == (email, email.split("@")[0])
    assert (user["given_name"], user["family_name"], user["picture"]) == (None, None, None)
    assert user["email"] == email
    assert user["username"] == username.lower()
    assert user["email_verified"] is True
    assert user["phone_number"] == "+14155550100"
    assert user["user_metadata"] == {"theme": "dark", "nested": {"list": [1, 2, {"a": None}]}}
    assert user["app_metadata"] == {"plan": "pro"}
    assert user["blocked"] is False
    assert user["last_password_reset"] is None
    assert user["last_login"] is None
    assert user["logins_count"] == 0
    assert parse_time(user["created_at"]).utcoffset() is not None
    assert user["identities"] == [
        {
            "connection": "Username-Password-Authentication",
            "provider": "auth0",
            "user_id": user["user_id"].removeprefix("auth0|"),
            "isSocial": False,
        }
    ]
    assert PASSWORD not in response.text
    assert "argon2" not in response.text
    assert get_user(server, user["user_id"]) == user


def test_create_with_skip_hooks_and_the_user_can_log_in(
    server: Server, app: dict[str, Any], audience: str
) -> None:
    email = new_email()
    user = create_user(server, email=email, skip_hooks=True, blocked=False)
    assert "skip_hooks" not in user
    assert user["email"] == email
    token = login(server, app, audience, email.upper(), PASSWORD)
    assert token.status_code == 200, token.text
    assert token.json()["access_token"]
    after = get_user(server, user["user_id"])
    assert after["logins_count"] == 1
    assert after["last_login"] is not None


def test_duplicate_email_or_username_is_a_conflict(server: Server) -> None:
    email = new_email()
    username = unique("taken")
    create_user(server, email=email, username=username)
    other_email = new_email()
    with server.api() as api:
        before = total_users(api)
        same_email = api.post("/users", json={"email": email.upper(), "password": PASSWORD})
        assert_error(same_email, 409, "conflict", "already exists")
        same_username = api.post(
            "/users",
            json={"email": other_email, "password": PASSWORD, "username": username.upper()},
        )
        assert_error(same_username, 409, "conflict", "already exists")
        assert api.get("/users", params={"email": other_email}).json() == []
        assert total_users(api) == before


@pytest.mark.parametrize(
    ("fields", "code", "says"),
    [
        ({"email": "not-an-email"}, "invalid_body", "email is not a valid address"),
        ({"email": "a" * 250 + "@example.com"}, "invalid_body", "email"),
        ({"username": "has space"}, "invalid_body", "username must be"),
        ({"username": ""}, "invalid_body", "username"),
        ({"phone_number": "555"}, "invalid_body", "E.164"),
        ({"password": "Sh0rt!"}, "invalid_password", "At least 8 characters in length"),
        (
            {"password": "alllowercaseletters"},
            "invalid_password",
            "At least 3 of the following 4 types of characters",
        ),
        ({"password": "Password123!"}, "invalid_password", "Not one of the most common"),
        ({"password": "x" * 300}, "invalid_body", "password"),
        ({"favourite_colour": "teal"}, "invalid_body", "favourite_colour"),
        ({"picture": "javascript:alert(1)"}, "invalid_body", "picture must be an http(s) URL"),
        ({"name": "x" * 301}, "invalid_body", "name"),
        ({"connection": "google-oauth2"}, "invalid_body", "connection"),
        ({"user_metadata": nested(11)}, "invalid_body", "nested deeper than 10 levels"),
        ({"app_metadata": {"blob": "x" * 17_000}}, "invalid_body", "exceeds 16384 bytes"),
        ({"user_metadata": {"a.b": 1}}, "invalid_body", "contain '.'"),
        ({"app_metadata": {"ok": {"$set": 1}}}, "invalid_body", "'$set'"),
        ({"user_metadata": {"list": [{"x.y": 1}]}}, "invalid_body", "'x.y'"),
        ({"user_metadata": "not an object"}, "invalid_body", "user_metadata"),
    ],
)
def test_bad_input_is_a_400_and_stores_nothing(
    server: Server, fields: dict[str, Any], code: str, says: str
) -> None:
    email = new_email()
    body = {"email": email, "password": PASSWORD, **fields}
    with server.api() as api:
        before = total_users(api)
        response = api.post("/users", json=body)
        assert_error(response, 400, code, says)
        assert response.json()["error"] == "Bad Request"
        assert api.get("/users", params={"email": email}).json() == []
        assert total_users(api) == before


def test_metadata_at_the_limits_is_accepted(server: Server) -> None:
    # 10 levels deep and just under 16 KiB are allowed; one more of either is not.
    user = create_user(
        server, user_metadata=nested(10), app_metadata={"blob": "x" * (16 * 1024 - 20)}
    )
    assert user["user_metadata"] == nested(10)
    assert len(user["app_metadata"]["blob"]) == 16 * 1024 - 20


# List and search


def test_list_by_email_is_case_insensitive_and_exact(server: Server) -> None:
    email = new_email()
    user = create_user(server, email=email)
    with server.api() as api:
        found = api.get("/users", params={"email": email.upper()})
        assert found.status_code == 200, found.text
        assert [row["user_id"] for row in found.json()] == [user["user_id"]]
        assert found.json()[0] == user
        # Exact: a part of the address finds nobody.
        assert api.get("/users", params={"email": email[1:]}).json() == []
        assert api.get("/users", params={"email": email.split("@")[0]}).json() == []


def test_search_matches_part_of_an_email_or_username(server: Server) -> None:
    tag = unique("srch")
    by_email = create_user(server, email=f"first.{tag}@example.com")
    by_username = create_user(server, email=new_email(), username=f"{tag}_name")
    create_user(server, email=new_email(), username=unique("unrelated"))
    with server.api() as api:
        response = api.get("/users", params={"q": tag.upper()})
        assert response.status_code == 200, response.text
        assert [row["user_id"] for row in response.json()] == [
            by_email["user_id"],
            by_username["user_id"],
        ]
        only_email = api.get("/users", params={"q": f"first.{tag}@"}).json()
        assert [row["user_id"] for row in only_email] == [by_email["user_id"]]
        both = api.get("/users", params={"q": tag, "email": f"first.{tag}@example.com"}).json()
        assert [row["user_id"] for row in both] == [by_email["user_id"]]


def test_search_takes_percent_and_underscore_literally(server: Server) -> None:
    tag = unique("lit").replace("-", "")
    underscore = create_user(server, email=f"{tag}_1@example.com")
    create_user(server, email=f"{tag}a1@example.com")
    percent = create_user(server, email=f"{tag}%z@example.com")
    create_user(server, email=f"{tag}abcz@example.com")
    named = create_user(server, email=new_email(), username=f"{tag}_u")
    create_user(server, email=new_email(), username=f"{tag}xu")
    with server.api() as api:

        def search(q: str) -> list[str]:
            response = api.get("/users", params={"q": q})
            assert response.status_code == 200, response.text
            return [row["user_id"] for row in response.json()]

        assert search(f"{tag}_1") == [underscore["user_id"]]
        assert search(f"{tag}%z") == [percent["user_id"]]
        assert search(f"{tag}_u") == [named["user_id"]]
        assert search(f"{tag}\\") == []
        assert len(search(tag)) == 6


def test_pagination_with_and_without_totals(server: Server) -> None:
    tag = unique("page")
    ids = [create_user(server, email=f"{tag}-{n}@example.com")["user_id"] for n in range(5)]
    with server.api() as api:
        bare = api.get("/users", params={"q": tag, "per_page": 2})
        assert bare.status_code == 200, bare.text
        assert [row["user_id"] for row in bare.json()] == ids[:2]
        pages = []
        for number in range(3):
            response = api.get(
                "/users",
                params={"q": tag, "page": number, "per_page": 2, "include_totals": "true"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"users", "start", "limit", "total"}
            assert body["start"] == number * 2
            assert body["limit"] == 2
            assert body["total"] == 5
            pages.append([row["user_id"] for row in body["users"]])
        assert pages == [ids[0:2], ids[2:4], ids[4:5]]
        past = api.get(
            "/users", params={"q": tag, "page": 9, "per_page": 2, "include_totals": "true"}
        ).json()
        assert past == {"users": [], "start": 18, "limit": 2, "total": 5}
        everyone = api.get("/users", params={"include_totals": "true", "per_page": 1}).json()
        assert everyone["total"] >= 5
        assert len(everyone["users"]) == 1
        for params in ({"per_page": 0}, {"per_page": 101}, {"page": -1}, {"q": "x" * 1001}):
            assert_error(api.get("/users", params=params), 400, "invalid_query_string", "")


# Get and delete


def test_get_by_id_and_unknown_ids_are_404(server: Server) -> None:
    user = create_user(server)
    assert get_user(server, user["user_id"]) == user
    with server.api() as api:
        for method in ("GET", "PATCH", "DELETE"):
            kwargs: dict[str, Any] = {"json": {"blocked": True}} if method == "PATCH" else {}
            response = api.request(method, path(UNKNOWN_ID), **kwargs)
            assert_error(response, 404, "inexistent_resource", UNKNOWN_ID)
        for odd in ("not-even-an-id", "auth0|" + "f" * 300, "auth0|%_"):
            assert_error(api.get(path(odd)), 404, "inexistent_resource", "no user")


def test_delete_then_404(server: Server, app: dict[str, Any], audience: str) -> None:
    email = new_email()
    user = create_user(server, email=email)
    assert login(server, app, audience, email, PASSWORD).status_code == 200
    with server.api() as api:
        deleted = api.delete(path(user["user_id"]))
        assert deleted.status_code == 204, deleted.text
        assert deleted.content == b""
        assert_error(api.get(path(user["user_id"])), 404, "inexistent_resource", "no user")
        assert_error(api.delete(path(user["user_id"])), 404, "inexistent_resource", "no user")
        assert api.get("/users", params={"email": email}).json() == []
    gone = login(server, app, audience, email, PASSWORD)
    assert gone.status_code in (400, 401, 403), gone.text
    assert gone.json()["error"] == "invalid_grant"
    # The address is free again.
    assert create_user(server, email=email)["user_id"] != user["user_id"]


# Patch


def test_patch_merges_metadata_and_null_removes_a_key(server: Server) -> None:
    user = create_user(
        server,
        user_metadata={"theme": "dark", "lang": "en", "prefs": {"a": 1, "b": 2}},
        app_metadata={"plan": "free", "roles": ["reader"]},
    )
    with server.api() as api:
        response = api.patch(
            path(user["user_id"]),
            json={
                "user_metadata": {"lang": None, "prefs": {"c": 3}, "new": True},
                "app_metadata": {"plan": "pro", "absent": None},
            },
        )
    assert response.status_code == 200, response.text
    patched = response.json()
    # Top-level keys merge; nested objects are replaced, not merged (Auth0's rule).
    assert patched["user_metadata"] == {"theme": "dark", "prefs": {"c": 3}, "new": True}
    assert patched["app_metadata"] == {"plan": "pro", "roles": ["reader"]}
    assert parse_time(patched["updated_at"]) > parse_time(user["updated_at"])
    assert patched["created_at"] == user["created_at"]
    assert get_user(server, user["user_id"]) == patched


@pytest.mark.parametrize("name", ["user_metadata", "app_metadata"])
def test_patch_whose_merged_metadata_is_too_large_is_400_and_unchanged(
    server: Server, name: str
) -> None:
    # Each half is within the limit; merged they exceed 16 KiB.
    user = create_user(server, **{name: {"first": "x" * 10_000}}, email_verified=False)
    with server.api() as api:
        response = api.patch(
            path(user["user_id"]),
            json={name: {"second": "y" * 10_000}, "email_verified": True},
        )
    assert_error(response, 400, "invalid_body", "exceeds 16384 bytes")
    assert get_user(server, user["user_id"]) == user


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"user_metadata": nested(11)}, "nested deeper than 10 levels"),
        ({"app_metadata": {"$where": 1}}, "'$where'"),
        ({"user_metadata": {"a.b": None}}, "'a.b'"),
        ({"email": "not-an-email"}, "email is not a valid address"),
        ({"username": "has space"}, "username must be"),
        ({"phone_number": "555"}, "E.164"),
        ({"email": None}, "email cannot be null"),
        ({"blocked": None}, "blocked cannot be null"),
        ({"user_metadata": None}, "user_metadata cannot be null"),
        ({"favourite_colour": "teal"}, "favourite_colour"),
        ({"nickname": "tab\there"}, "nickname may not contain control characters"),
        ({"name": None, "picture": "ftp://example.com/a.png"}, "picture must be an http(s) URL"),
        ({"connection": "google-oauth2"}, "connection"),
    ],
)
def test_bad_patch_is_a_400_and_changes_nothing(
    server: Server, fields: dict[str, Any], says: str
) -> None:
    user = create_user(
        server, username=unique("keep"), phone_number="+14155550100", user_metadata={"k": 1}
    )
    with server.api() as api:
        response = api.patch(path(user["user_id"]), json={"blocked": True, **fields})
    assert_error(response, 400, "invalid_body", says)
    assert get_user(server, user["user_id"]) == user


def test_patch_blocked_refuses_the_password_grant(
    server: Server, app: dict[str, Any], audience: str
) -> None:
    email = new_email()
    user = create_user(server, email=email)
    assert login(server, app, audience, email, PASSWORD).status_code == 200
    with server.api() as api:
        blocked = api.patch(path(user["user_id"]), json={"blocked": True})
        assert blocked.status_code == 200, blocked.text
        assert blocked.json()["blocked"] is True
        refused = login(server, app, audience, email, PASSWORD)
        assert refused.status_code == 400, refused.text
        assert refused.json() == {"error": "invalid_grant", "error_description": "user is blocked"}
        # A wrong password says nothing about the block.
        wrong = login(server, app, audience, email, OTHER_PASSWORD)
        assert wrong.json()["error_description"] == "wrong email or password"
        unblocked = api.patch(path(user["user_id"]), json={"blocked": False})
        assert unblocked.json()["blocked"] is False
    assert login(server, app, audience, email, PASSWORD).status_code == 200


def test_user_created_blocked_cannot_log_in(
    server: Server, app: dict[str, Any], audience: str
) -> None:
    email = new_email()
    user = create_user(server, email=email, blocked=True)
    assert user["blocked"] is True
    refused = login(server, app, audience, email, PASSWORD)
    assert refused.json()["error"] == "invalid_grant"
    assert refused.json()["error_description"] == "user is blocked"


def test_patch_email_username_and_phone(server: Server, app: dict[str, Any], audience: str) -> None:
    user = create_user(server, username=unique("old"), phone_number="+14155550100")
    email = new_email()
    username = unique("New")
    with server.api() as api:
        response = api.patch(
            path(user["user_id"]),
            json={"email": email.upper(), "username": username, "email_verified": True},
        )
        assert response.status_code == 200, response.text
        assert response.json()["email"] == email
        assert response.json()["username"] == username.lower()
        assert response.json()["email_verified"] is True
        assert response.json()["phone_number"] == "+14155550100"
        assert api.get("/users", params={"email": user["email"]}).json() == []
        # Its own email again, in another case, is no conflict.
        same = api.patch(path(user["user_id"]), json={"email": email.capitalize()})
        assert same.status_code == 200, same.text
        cleared = api.patch(path(user["user_id"]), json={"username": None, "phone_number": None})
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["username"] is None
        assert cleared.json()["phone_number"] is None
    assert get_user(server, user["user_id"]) == cleared.json()
    assert login(server, app, audience, email, PASSWORD).status_code == 200
    assert login(server, app, audience, username, PASSWORD).json()["error"] == "invalid_grant"


def test_patch_to_a_taken_email_or_username_is_409_and_unchanged(server: Server) -> None:
    taken = create_user(server, username=unique("taken"))
    user = create_user(server, username=unique("mine"))
    with server.api() as api:
        for change in (
            {"email": taken["email"].upper()},
            {"username": taken["username"].upper()},
            {"email": new_email(), "username": taken["username"]},
        ):
            response = api.patch(path(user["user_id"]), json={"blocked": True, **change})
            assert_error(response, 409, "conflict", "already exists")
    assert get_user(server, user["user_id"]) == user
    assert get_user(server, taken["user_id"]) == taken


def test_patch_password_changes_the_login(
    server: Server, app: dict[str, Any], audience: str
) -> None:
    email = new_email()
    user = create_user(server, email=email)
    assert user["last_password_reset"] is None
    with server.api() as api:
        response = api.patch(path(user["user_id"]), json={"password": OTHER_PASSWORD})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["last_password_reset"] is not None
    assert parse_time(patched["last_password_reset"]) >= parse_time(user["created_at"])
    assert OTHER_PASSWORD not in response.text
    old = login(server, app, audience, email, PASSWORD)
    assert old.status_code == 400, old.text
    assert old.json()["error"] == "invalid_grant"
    new = login(server, app, audience, email, OTHER_PASSWORD)
    assert new.status_code == 200, new.text
    assert (
        get_user(server, user["user_id"])["last_password_reset"] == (patched["last_password_reset"])
    )


def test_weak_password_in_patch_applies_nothing(
    server: Server, app: dict[str, Any], audience: str
) -> None:
    email = new_email()
    user = create_user(server, email=email, username=unique("weak"), user_metadata={"k": 1})
    with server.api() as api:
        response = api.patch(
            path(user["user_id"]),
            json={
                "password": "alllowercaseletters",
                "email": new_email(),
                "username": None,
                "blocked": True,
                "user_metadata": {"k": None, "other": 2},
            },
        )
    assert_error(response, 400, "invalid_password", "At least 3 of the following")
    assert get_user(server, user["user_id"]) == user
    assert login(server, app, audience, email, PASSWORD).status_code == 200


def test_conflicting_patch_does_not_change_the_password(
    server: Server, app: dict[str, Any], audience: str
) -> None:
    taken = create_user(server)
    email = new_email()
    user = create_user(server, email=email)
    with server.api() as api:
        response = api.patch(
            path(user["user_id"]), json={"password": OTHER_PASSWORD, "email": taken["email"]}
        )
    assert_error(response, 409, "conflict", "already exists")
    assert get_user(server, user["user_id"]) == user
    assert login(server, app, audience, email, PASSWORD).status_code == 200


# Scopes


def test_read_only_token_cannot_write(server: Server) -> None:
    user = create_user(server)
    with server.api(scope="read:users") as reader:
        assert reader.get(path(user["user_id"])).status_code == 200
        listed = reader.get("/users", params={"email": user["email"]})
        assert listed.status_code == 200, listed.text
        assert [row["user_id"] for row in listed.json()] == [user["user_id"]]
        email = new_email()
        created = reader.post("/users", json={"email": email, "password": PASSWORD})
        assert_error(created, 403, "insufficient_scope", "create:users")
        assert created.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
        patched = reader.patch(path(user["user_id"]), json={"blocked": True})
        assert_error(patched, 403, "insufficient_scope", "update:users")
        deleted = reader.delete(path(user["user_id"]))
        assert_error(deleted, 403, "insufficient_scope", "delete:users")
        # The scope is checked before the body: no validation details leak.
        bad = reader.post("/users", json={"email": "not-an-email", "password": "weak"})
        assert_error(bad, 403, "insufficient_scope", "create:users")
        weak = reader.patch(path(user["user_id"]), json={"password": "weak"})
        assert_error(weak, 403, "insufficient_scope", "update:users")
        assert_error(reader.delete(path(UNKNOWN_ID)), 403, "insufficient_scope", "delete:users")
        assert reader.get("/users", params={"email": email}).json() == []
    assert get_user(server, user["user_id"]) == user


def test_write_scopes_cannot_read(server: Server) -> None:
    user = create_user(server)
    with server.api(scope="create:users update:users delete:users") as writer:
        assert_error(writer.get(path(user["user_id"])), 403, "insufficient_scope", "read:users")
        assert_error(writer.get("/users"), 403, "insufficient_scope", "read:users")


def test_no_token_is_401(server: Server) -> None:
    response = httpx.get(server.url + "/api/v2/users")
    assert response.status_code == 401
    assert set(response.json()) >= {"statusCode", "error", "message"}


def test_a_username_cannot_hold_an_at_sign_or_metadata_an_empty_key(server: Server) -> None:
    with server.api() as api:
        email = new_email()
        shadow = api.post(
            "/users", json={"email": email, "password": PASSWORD, "username": new_email()}
        )
        assert shadow.status_code == 400, shadow.text
        assert "username must be" in shadow.json()["message"]
        empty = api.post(
            "/users", json={"email": email, "password": PASSWORD, "user_metadata": {"": 1}}
        )
        assert empty.status_code == 400, empty.text
        assert "may not be empty" in empty.json()["message"]
        assert api.get("/users", params={"email": email}).json() == []


def test_unpaired_surrogates_are_refused_before_anything_is_stored(server: Server) -> None:
    email = new_email()
    fields = f'"email": "{email}", "password": "{PASSWORD}"'
    raw = "{" + fields + ', "user_metadata": {"k": "\\ud800"}}'
    with server.api() as api:
        response = api.post(
            "/users", content=raw.encode(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "unpaired surrogate" in response.json()["message"]
        assert api.get("/users", params={"email": email}).json() == []


def test_users_by_email_as_auth0s_sdks_ask(server: Server) -> None:
    user = create_user(server)
    local, _, domain = user["email"].partition("@")
    with server.api() as api:
        found = api.get("/users-by-email", params={"email": f"{local.upper()}@{domain}"})
        assert found.status_code == 200, found.text
        assert [each["user_id"] for each in found.json()] == [user["user_id"]]
        assert api.get("/users-by-email", params={"email": new_email()}).json() == []

        chosen = api.get(
            "/users-by-email", params={"email": user["email"], "fields": "user_id,email"}
        ).json()
        assert chosen == [{"user_id": user["user_id"], "email": user["email"]}]
        left_out = api.get(
            "/users-by-email",
            params={"email": user["email"], "fields": "user_metadata", "include_fields": "false"},
        ).json()
        assert "user_metadata" not in left_out[0]
        assert left_out[0]["user_id"] == user["user_id"]

        # A name that is no field of a user selects nothing, as in Auth0: the stored
        # hash is not a field, whatever a caller names.
        hidden = api.get(
            "/users-by-email", params={"email": user["email"], "fields": "password_hash"}
        )
        assert hidden.json() == [{}]
        for params, mentions in (({}, "email"), ({"email": user["email"], "fields": "a,,b"}, "")):
            refused = api.get("/users-by-email", params=params)
            assert refused.status_code == 400, refused.text
            assert mentions in refused.text
    denied = httpx.get(server.url + "/api/v2/users-by-email", params={"email": user["email"]})
    assert denied.status_code == 401
