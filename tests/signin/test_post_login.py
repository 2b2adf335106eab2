"""post-login hooks in a real sign-in: claims on both tokens, the user's metadata,
and a refusal that reaches the application's callback as access_denied. Each
hook acts only for its test's own client: the server is shared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Server, run_server, unique
from tests.signin.helpers import (
    CALLBACK,
    authorize_params,
    browser,
    create_web_app,
    new_person,
    pkce,
    query_of,
    sign_in,
)
from tests.users.helpers import find_user

PYTHON_ACTIONS = """
def on_execute_post_login(event, api):
    if event["client"]["client_id"] != "{client_id}":
        return
    if event["user"]["email"].startswith("denied"):
        api.access.deny("accounts like this one may not sign in here")
        return
    api.id_token.set_custom_claim("https://example.com/plan", "pro")
    api.access_token.set_custom_claim("https://example.com/logins", event["stats"]["logins_count"])
    api.user.set_app_metadata("signed_in_with", event["transaction"]["protocol"])
"""

JAVASCRIPT_ACTIONS = """
exports.onExecutePostLogin = async (event, api) => {
  if (event.client.client_id !== '{client_id}') return;
  if (event.user.email.startsWith('denied')) {
    api.access.deny('accounts like this one may not sign in here');
    return;
  }
  api.idToken.setCustomClaim('https://example.com/plan', 'pro');
  api.accessToken.setCustomClaim('https://example.com/logins', event.stats.logins_count);
  api.user.setAppMetadata('signed_in_with', event.transaction.protocol);
};
"""


@pytest.fixture(params=["python", "javascript"])
def app_with_hook(server: Server, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    app = create_web_app(server)
    script = PYTHON_ACTIONS if request.param == "python" else JAVASCRIPT_ACTIONS
    with server.api() as api:
        created = api.post(
            "/hooks",
            json={
                "name": unique("post-login"),
                "triggerId": "post-login",
                "script": script.replace("{client_id}", app["client_id"]),
                "enabled": True,
            },
        )
        assert created.status_code == 201, created.text
        try:
            yield app
        finally:
            assert api.delete(f"/hooks/{created.json()['id']}").status_code == 204


def exchange(server: Server, app: dict[str, Any], callback: str, verifier: str) -> httpx.Response:
    return httpx.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(callback)["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )


def test_a_hook_adds_claims_to_both_tokens_and_sets_metadata(
    server: Server, app_with_hook: dict[str, Any]
) -> None:
    email = new_person(server, app_with_hook["client_id"])
    verifier, challenge = pkce()
    with browser(server) as person:
        callback = sign_in(person, authorize_params(app_with_hook["client_id"], challenge), email)
    issued = exchange(server, app_with_hook, callback, verifier)
    assert issued.status_code == 200, issued.text
    id_token = jwt.decode(issued.json()["id_token"], options={"verify_signature": False})
    access = jwt.decode(issued.json()["access_token"], options={"verify_signature": False})
    assert id_token["https://example.com/plan"] == "pro"
    assert access["https://example.com/logins"] == 1
    assert "https://example.com/plan" not in access
    assert find_user(server, email)["app_metadata"] == {"signed_in_with": "oidc-basic-profile"}


def test_a_hook_denies_and_the_callback_says_why(
    server: Server, app_with_hook: dict[str, Any]
) -> None:
    email = f"denied-{unique('user')}@example.com"
    with httpx.Client() as setup:
        answer = setup.post(
            server.url + "/dbconnections/signup",
            json={
                "client_id": app_with_hook["client_id"],
                "email": email,
                "password": "Correct-Horse-42",
            },
        )
        assert answer.status_code == 200, answer.text
    _, challenge = pkce()
    params = authorize_params(app_with_hook["client_id"], challenge)
    with browser(server) as person:
        callback = sign_in(person, params, email)
    answer_at_callback = query_of(callback)
    assert callback.startswith(CALLBACK + "?")
    assert answer_at_callback["error"] == "access_denied"
    assert answer_at_callback["error_description"] == "accounts like this one may not sign in here"
    assert answer_at_callback["state"] == params["state"]
    assert "code" not in answer_at_callback
    assert find_user(server, email)["app_metadata"] == {}
    # Refused, so not signed in either: no session to answer prompt=none from.
    with browser(server) as person:
        sign_in(person, params, email)
        silent = person.get("/authorize", params={**params, "prompt": "none"})
        assert query_of(silent.headers["location"])["error"] == "login_required"


PROTOCOL_CLAIM = """
def on_execute_post_login(event, api):
    protocol = event["transaction"]["protocol"]
    api.access_token.set_custom_claim("https://example.com/protocol", protocol)
"""


def test_post_login_runs_again_on_refresh_when_configured(tmp_path: Path, backend: str) -> None:
    with run_server(tmp_path, backend, post_login_on_refresh="true") as again:
        app = create_web_app(again)
        with again.api() as api:
            created = api.post(
                "/hooks",
                json={
                    "name": unique("protocol"),
                    "triggerId": "post-login",
                    "script": PROTOCOL_CLAIM,
                    "enabled": True,
                },
            )
            assert created.status_code == 201, created.text
        email = new_person(again, app["client_id"])
        verifier, challenge = pkce()
        with browser(again) as person:
            callback = sign_in(
                person,
                authorize_params(app["client_id"], challenge, scope="openid offline_access"),
                email,
            )
        issued = exchange(again, app, callback, verifier).json()
        first = jwt.decode(issued["access_token"], options={"verify_signature": False})
        assert first["https://example.com/protocol"] == "oidc-basic-profile"
        refreshed = httpx.post(
            again.url + "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": issued["refresh_token"],
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        claims = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
        assert claims["https://example.com/protocol"] == "oauth2-refresh-token"
