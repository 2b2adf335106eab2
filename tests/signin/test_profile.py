"""A person's profile (Auth0's name, nickname, given_name, family_name, picture),
set through the management API, reaches the ID token, userinfo and post-login
hooks; cleared, name and nickname fall back to Auth0's defaults."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import jwt

from tests.conftest import Server, unique
from tests.signin.helpers import authorize_params, browser, create_web_app, pkce, sign_in
from tests.signin.test_post_login import exchange
from tests.users.helpers import PASSWORD, new_email

HOOK = """
def on_execute_post_login(event, api):
    if event["client"]["client_id"] == "{client_id}":
        api.id_token.set_custom_claim("https://example.com/seen", event["user"]["given_name"])
"""


def signed_in(server: Server, app: dict[str, Any], email: str) -> tuple[dict[str, Any], Any]:
    verifier, challenge = pkce()
    with browser(server) as person:
        callback = sign_in(person, authorize_params(app["client_id"], challenge), email)
    issued = exchange(server, app, callback, verifier)
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    info = httpx.get(
        server.url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 200, info.text
    return jwt.decode(tokens["id_token"], options={"verify_signature": False}), info.json()


def test_the_profile_reaches_tokens_userinfo_and_hooks(server: Server) -> None:
    app = create_web_app(server)
    email = new_email()
    profile = {
        "name": "Grace Hopper",
        "nickname": "amazing-grace",
        "given_name": "Grace",
        "family_name": "Hopper",
        "picture": "https://images.example.com/grace.png",
    }
    with server.api() as api:
        created = api.post("/users", json={"email": email, "password": PASSWORD, **profile})
        assert created.status_code == 201, created.text
        user = created.json()
        assert {key: user[key] for key in profile} == profile
        hook = api.post(
            "/hooks",
            json={
                "name": unique("profile"),
                "triggerId": "post-login",
                "script": HOOK.replace("{client_id}", app["client_id"]),
                "enabled": True,
            },
        )
        assert hook.status_code == 201, hook.text
    try:
        id_token, info = signed_in(server, app, email)
        for claims in (id_token, info):
            assert {key: claims[key] for key in profile} == profile
        assert id_token["https://example.com/seen"] == "Grace"

        with server.api() as api:
            cleared = api.patch(
                "/users/" + quote(user["user_id"], safe=""),
                json={"name": None, "nickname": None, "given_name": None, "picture": None},
            )
            assert cleared.status_code == 200, cleared.text
            assert cleared.json()["name"] == email
            assert cleared.json()["nickname"] == email.split("@")[0]
            assert cleared.json()["family_name"] == "Hopper"
        id_token, info = signed_in(server, app, email)
        assert (info["name"], info["nickname"]) == (email, email.split("@")[0])
        assert "given_name" not in info
        assert "picture" not in info
        assert id_token["https://example.com/seen"] is None  # what the hook saw
    finally:
        with server.api() as api:
            assert api.delete(f"/hooks/{hook.json()['id']}").status_code == 204
