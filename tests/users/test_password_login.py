"""The password grant (RFC 6749 §4.3) with password-exchange hooks, the login
throttle, rehashing, and password changes (a reset link, an admin) with
post-change-password."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import Server, run_server, serve_again
from tests.users.helpers import (
    OTHER_PASSWORD,
    PASSWORD,
    create_api,
    create_app,
    find_user,
    new_email,
    password_token,
    signup,
    wait_for,
)
from tests.users.test_registration_hooks import console_text, create_hook, deliveries, logs


def verified_claims(server: Server, token: str, audience: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(server.url + "/.well-known/jwks.json").get_signing_key_from_jwt(token)
    return dict(
        jwt.decode(
            token, key.key, algorithms=["RS256", "ES256"], audience=audience, issuer=server.issuer
        )
    )


def registered(server: Server, **app_fields: Any) -> tuple[dict[str, Any], str, str]:
    """An app, a signed-up user's email, and an API."""
    app = create_app(server, **app_fields)
    email = new_email()
    assert signup(server, app["client_id"], email).status_code == 200
    return app, email, create_api(server)


def database(server: Server) -> Database:
    url = server.database_url
    return Database(url)


def test_public_app_logs_a_user_in_with_authlib(server: Server) -> None:
    app, email, audience = registered(server)
    with OAuth2Client(app["client_id"], token_endpoint_auth_method="none") as oauth:
        token = oauth.fetch_token(
            server.url + "/oauth/token",
            grant_type="password",
            username=email,
            password=PASSWORD,
            audience=audience,
            scope="openid read:notes",
        )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "read:notes"
    claims = verified_claims(server, token["access_token"], audience)
    user = find_user(server, email)
    assert claims["sub"] == user["user_id"]
    assert claims["gty"] == "password"
    assert claims["client_id"] == app["client_id"]
    assert user["logins_count"] == 1
    assert user["last_login"] is not None


def test_confidential_app_must_send_its_secret(server: Server) -> None:
    app, email, audience = registered(server, app_type="regular_web", grant_types=["password"])
    no_secret = password_token(server, app["client_id"], email, PASSWORD, audience)
    assert no_secret.status_code == 401
    with_secret = password_token(
        server, app["client_id"], email, PASSWORD, audience, client_secret=app["client_secret"]
    )
    assert with_secret.status_code == 200, with_secret.text


def test_wrong_password_and_unknown_user_get_the_same_answer(server: Server) -> None:
    app, email, audience = registered(server)
    wrong = password_token(server, app["client_id"], email, OTHER_PASSWORD, audience)
    unknown = password_token(server, app["client_id"], new_email(), PASSWORD, audience)
    assert wrong.status_code == unknown.status_code == 400
    assert (
        wrong.json()
        == unknown.json()
        == {
            "error": "invalid_grant",
            "error_description": "wrong email or password",
        }
    )


def test_refusals(server: Server) -> None:
    app, email, audience = registered(server)
    machine = create_app(server, app_type="non_interactive", grant_types=["client_credentials"])
    cases: list[tuple[dict[str, str], int, str]] = [
        ({"audience": server.management_audience}, 403, "access_denied"),
        ({"audience": "https://nowhere.example.com/"}, 403, "access_denied"),
        # RFC 8707's resource gets RFC 8707's answers, as in the client credentials grant.
        ({"audience": "", "resource": "https://nowhere.example.com/"}, 400, "invalid_target"),
        ({"audience": "", "resource": server.management_audience}, 400, "invalid_target"),
        ({"audience": "", "resource": "notes#fragment"}, 400, "invalid_target"),
        ({"resource": "https://other.example.com/"}, 400, "invalid_request"),
        ({"scope": "read:notes delete:everything"}, 400, "invalid_scope"),
        ({"password": ""}, 400, "invalid_request"),  # RFC 6749 §3.1: empty is omitted
        ({"username": ""}, 400, "invalid_request"),
    ]
    for params, status, error in cases:
        body = {"audience": audience, **params}
        response = password_token(
            server,
            app["client_id"],
            body.pop("username", email),
            body.pop("password", PASSWORD),
            **body,
        )
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"] == error
    by_resource = password_token(server, app["client_id"], email, PASSWORD, "", resource=audience)
    assert by_resource.status_code == 200, by_resource.text
    not_allowed = password_token(
        server,
        machine["client_id"],
        email,
        PASSWORD,
        audience,
        client_secret=machine["client_secret"],
    )
    assert not_allowed.status_code == 400
    assert not_allowed.json()["error"] == "unauthorized_client"


def test_discovery_lists_the_password_grant(server: Server) -> None:
    metadata = httpx.get(server.url + "/.well-known/oauth-authorization-server").json()
    assert "password" in metadata["grant_types_supported"]
    assert REALM_GRANT in metadata["grant_types_supported"]
    assert "none" in metadata["token_endpoint_auth_methods_supported"]


REALM_GRANT = "http://auth0.com/oauth/grant-type/password-realm"


def test_the_password_realm_grant_as_auth0s_sdks_send_it(server: Server) -> None:
    """auth0-python's GetToken.login and node-auth0's passwordGrant send this grant,
    with a realm naming the connection, as JSON."""
    app, email, audience = registered(server, grant_types=[REALM_GRANT])
    body = {
        "grant_type": REALM_GRANT,
        "client_id": app["client_id"],
        "username": email,
        "password": PASSWORD,
        "audience": audience,
        "scope": "openid read:notes",
        "realm": "Username-Password-Authentication",
    }
    response = httpx.post(server.url + "/oauth/token", json=body)
    assert response.status_code == 200, response.text
    claims = verified_claims(server, response.json()["access_token"], audience)
    assert claims["sub"] == find_user(server, email)["user_id"]

    for realm, mentions in (
        ({"realm": "google-oauth2"}, "unknown realm 'google-oauth2'"),
        ({"realm": ""}, "realm is required"),
    ):
        refused = httpx.post(server.url + "/oauth/token", json={**body, **realm})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_request"
        assert mentions in refused.json()["error_description"]
    wrong = httpx.post(server.url + "/oauth/token", json={**body, "password": OTHER_PASSWORD})
    assert wrong.json()["error"] == "invalid_grant", wrong.text
    # A client not given the grant may not use it.
    other, _, _ = registered(server)
    denied = httpx.post(server.url + "/oauth/token", json={**body, "client_id": other["client_id"]})
    assert denied.json()["error"] == "unauthorized_client", denied.text


def test_failed_logins_are_throttled(backend: str, tmp_path: Path) -> None:
    with run_server(
        tmp_path, backend, login_max_failures_per_user=3, login_failure_window=60
    ) as server:
        app, email, audience = registered(server)
        for _ in range(3):
            failed = password_token(server, app["client_id"], email, OTHER_PASSWORD, audience)
            assert failed.status_code == 400
        throttled = password_token(server, app["client_id"], email, PASSWORD, audience)
        assert throttled.status_code == 429, throttled.text
        assert throttled.json()["error"] == "too_many_attempts"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # Unknown users are throttled alike: the answer says nothing about existence.
        ghost = new_email()
        for _ in range(3):
            password_token(server, app["client_id"], ghost, PASSWORD, audience)
        assert (
            password_token(server, app["client_id"], ghost, PASSWORD, audience).status_code == 429
        )
        other, other_email, _ = registered(server)
        ok = password_token(server, other["client_id"], other_email, PASSWORD, audience)
        assert ok.status_code == 200, ok.text


def test_throttle_per_ip(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend, login_max_failures_per_ip=4) as server:
        app, email, audience = registered(server)
        for _ in range(4):
            password_token(server, app["client_id"], new_email(), OTHER_PASSWORD, audience)
        blocked = password_token(server, app["client_id"], email, PASSWORD, audience)
        assert blocked.status_code == 429


def test_password_is_rehashed_when_the_cost_changes(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend) as first:
        app, email, audience = registered(first)
        assert first.process is not None
        first.process.terminate()
        first.process.wait()
        db = database(first)
        with db.session() as session:
            before = session.scalar(
                select(models.User.password_hash).where(models.User.email == email)
            )
        assert before is not None
        assert "t=1," in before
        with serve_again(first, tmp_path, argon2_time_cost=2) as second:
            ok = password_token(second, app["client_id"], email, PASSWORD, audience)
            assert ok.status_code == 200, ok.text
        with db.session() as session:
            after = session.scalar(
                select(models.User.password_hash).where(models.User.email == email)
            )
        db.dispose()
        assert after is not None
        assert "t=2," in after
        assert after.startswith("$argon2id$")


def test_password_exchange_hook_adds_a_claim(backend: str, tmp_path: Path) -> None:
    script = (
        "from authhooks.hook import InvalidScopeError\n"
        "def password_exchange(user, client, scope, audience, context):\n"
        "    if user['app_metadata'].get('banned'):\n"
        "        raise InvalidScopeError('no scopes for you')\n"
        "    return {'scope': scope + ['write:notes'],\n"
        "            'https://example.com/email': user['email'], 'sub': 'evil'}\n"
    )
    with run_server(tmp_path, backend) as server:
        create_hook(server, "password-exchange", script)
        app, email, audience = registered(server)
        response = password_token(
            server, app["client_id"], email, PASSWORD, audience, scope="read:notes"
        )
        assert response.status_code == 200, response.text
        claims = verified_claims(server, response.json()["access_token"], audience)
        assert claims["https://example.com/email"] == email
        assert claims["scope"] == "read:notes write:notes"
        assert claims["sub"].startswith("auth0|")
        user = find_user(server, email)
        with server.api() as api:
            patched = api.patch(
                f"/users/{user['user_id']}", json={"app_metadata": {"banned": True}}
            )
            assert patched.status_code == 200
        refused = password_token(server, app["client_id"], email, PASSWORD, audience)
        assert refused.status_code == 400
        assert refused.json() == {
            "error": "invalid_scope",
            "error_description": "no scopes for you",
        }


NOTIFY = """
def post_change_password(user, context):
    print("changed", user["email"], user["last_password_reset"], context["event_id"])
"""


def reset_link(server: Server, user_id: str) -> str:
    """A password reset link for the user, as an admin asks for one (no mail needed)."""
    with server.api() as api:
        made = api.post("/tickets/password-change", json={"user_id": user_id})
    assert made.status_code == 201, made.text
    link: str = made.json()["ticket"]
    return link


def reset_with(link: str, new: str) -> httpx.Response:
    """Post the reset page's form, as a browser would after showing it."""
    page = httpx.get(link)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    return httpx.post(
        link.split("?")[0], data={**fields, "newPassword": new, "confirmNewPassword": new}
    )


def test_password_change_runs_post_change_password(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend) as server:
        hook = create_hook(server, "post-change-password", NOTIFY)
        app, email, audience = registered(server)
        user = find_user(server, email)
        link = reset_link(server, user["user_id"])

        weak = reset_with(link, "weak")
        assert weak.status_code == 400
        assert "Not one of the most common passwords" in weak.text
        assert deliveries(server, hook["id"]) == []

        changed = reset_with(link, OTHER_PASSWORD)
        assert changed.status_code == 200, changed.text
        old = password_token(server, app["client_id"], email, PASSWORD, audience)
        assert old.status_code == 400
        new = password_token(server, app["client_id"], email, OTHER_PASSWORD, audience)
        assert new.status_code == 200
        assert find_user(server, email)["last_password_reset"] is not None

        # An admin sets it back through the management API: the hook runs again.
        with server.api() as api:
            patched = api.patch(f"/users/{user['user_id']}", json={"password": PASSWORD})
            assert patched.status_code == 200, patched.text
        done = wait_for(
            lambda: (
                (found := deliveries(server, hook["id"]))
                and len(found) == 2
                and all(item["status"] == "delivered" for item in found)
                and found
            )
        )
        assert len({item["event_id"] for item in done}) == 2
        text = console_text(
            wait_for(lambda: (found := logs(server, hook["id"])) and len(found) == 2 and found)
        )
        assert text.count("changed " + email) == 2
        assert PASSWORD not in text
        assert OTHER_PASSWORD not in text


@pytest.mark.parametrize("field", ["client_id", "email"])
def test_change_password_requires_every_field(server: Server, field: str) -> None:
    body = {"client_id": "x", "email": new_email()}
    del body[field]
    response = httpx.post(server.url + "/dbconnections/change_password", json=body)
    assert response.status_code == 400
    assert field in response.json()["description"]


def test_login_timing_does_not_reveal_users(server: Server) -> None:
    app, email, audience = registered(server)

    def timed(username: str) -> float:
        began = time.perf_counter()
        password_token(server, app["client_id"], username, OTHER_PASSWORD, audience)
        return time.perf_counter() - began

    # Taken in turns, so that a busy moment of the machine weighs on both alike.
    pairs = [(timed(email), timed(new_email())) for _ in range(9)]
    known = sorted(pair[0] for pair in pairs)[4]
    unknown = sorted(pair[1] for pair in pairs)[4]
    # Both verify an argon2 hash, so the medians are close; skipping the hash for an
    # unknown user would make its answer several times faster.
    assert abs(known - unknown) < 0.5 * max(known, unknown)


def test_parallel_guesses_cannot_pass_the_cap(backend: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with run_server(tmp_path, backend, login_max_failures_per_user=3) as server:
        app, email, audience = registered(server)

        def guess(_: int) -> int:
            response = password_token(server, app["client_id"], email, OTHER_PASSWORD, audience)
            return response.status_code

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(guess, range(20)))
        # Each attempt is counted before its password is checked: only 3 are checked.
        assert answers.count(400) == 3, answers
        assert answers.count(429) == 17, answers


def test_a_lockout_holds_for_the_guessing_address_only(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend, login_max_failures_per_user=2) as server:
        app, email, audience = registered(server)

        def login(password: str, ip: str) -> httpx.Response:
            # uvicorn trusts X-Forwarded-For from loopback: a stand-in for two clients.
            data = {
                "grant_type": "password",
                "client_id": app["client_id"],
                "username": email,
                "password": password,
                "audience": audience,
            }
            return httpx.post(
                server.url + "/oauth/token", data=data, headers={"X-Forwarded-For": ip}
            )

        for _ in range(2):
            assert login(OTHER_PASSWORD, "198.51.100.7").status_code == 400
        assert login(PASSWORD, "198.51.100.7").status_code == 429
        assert login(PASSWORD, "203.0.113.9").status_code == 200
