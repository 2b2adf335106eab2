"""The authorization code flow end to end, with Authlib as a server-side app uses it:
/authorize, the hosted sign-in page, the code exchanged with PKCE, the ID token
verified against the JWKS, userinfo, refresh rotation with reuse detection,
revocation, and single sign-on across clients."""

from __future__ import annotations

import time
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import Server
from tests.signin.helpers import (
    CALLBACK,
    authorize_params,
    browser,
    create_web_app,
    hidden_fields,
    new_person,
    pkce,
    query_of,
    sign_in,
)
from tests.users.helpers import create_api


def verified_id_token(server: Server, token: str, client_id: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(server.url + "/.well-known/jwks.json").json())
    decoded = jwt.decode(token, keys)
    assert decoded.header["typ"] == "JWT"
    claims: dict[str, Any] = decoded.claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": server.issuer},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(claims)
    return claims


def test_a_web_app_signs_a_person_in_with_authlib(server: Server) -> None:
    audience = create_api(server, ["read:notes"])
    app = create_web_app(server)
    email = new_person(server, app["client_id"])
    with OAuth2Client(
        app["client_id"],
        app["client_secret"],
        scope="openid profile email offline_access read:notes",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    ) as oauth:
        flow_with(server, oauth, app, email, audience)


def flow_with(
    server: Server, oauth: OAuth2Client, app: dict[str, Any], email: str, audience: str
) -> None:
    verifier, _ = pkce()
    url, state = oauth.create_authorization_url(
        server.url + "/authorize", code_verifier=verifier, nonce="n-0S6_WzA2Mj", audience=audience
    )
    with browser(server) as person:
        started = person.get(url)
        assert started.status_code == 302
        params = dict(httpx.URL(url).params)
        callback = sign_in(person, params, email)
    assert callback.startswith(CALLBACK + "?")
    answer = query_of(callback)
    assert answer["state"] == state
    assert answer["iss"] == server.issuer  # RFC 9207

    token = oauth.fetch_token(
        server.url + "/oauth/token", authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == {
        "openid",
        "profile",
        "email",
        "offline_access",
        "read:notes",
    }
    claims = verified_id_token(server, token["id_token"], app["client_id"])
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["email"] == email
    assert claims["email_verified"] is False
    assert claims["sub"].startswith("auth0|")
    assert abs(claims["auth_time"] - time.time()) < 60
    assert "sid" in claims
    assert "at_hash" in claims

    access = jwt.decode(
        token["access_token"],
        KeySet.import_key_set(httpx.get(server.url + "/.well-known/jwks.json").json()),
    ).claims
    assert access["aud"] == [audience, server.issuer + "userinfo"]
    assert access["sub"] == claims["sub"]
    assert "gty" not in access

    info = httpx.get(
        server.url + "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert info.status_code == 200, info.text
    assert info.json()["email"] == email
    assert info.json()["sub"] == claims["sub"]

    # Refresh: a new pair, the old refresh token retired; reusing it revokes the family.
    first_refresh = token["refresh_token"]
    renewed = oauth.refresh_token(server.url + "/oauth/token", refresh_token=first_refresh)
    assert renewed["refresh_token"] != first_refresh
    assert "nonce" not in verified_id_token(server, renewed["id_token"], app["client_id"])
    reused = httpx.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first_refresh,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert "family is revoked" in reused.json()["error_description"]
    after = httpx.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": renewed["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert after.json()["error"] == "invalid_grant"


def test_a_code_is_single_use_and_a_replay_revokes_its_refresh_tokens(server: Server) -> None:
    app = create_web_app(server)
    email = new_person(server, app["client_id"])
    verifier, challenge = pkce()
    with browser(server) as person:
        callback = sign_in(
            person,
            authorize_params(app["client_id"], challenge, scope="openid offline_access"),
            email,
        )
    form = {
        "grant_type": "authorization_code",
        "code": query_of(callback)["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
    }
    first = httpx.post(server.url + "/oauth/token", data=form)
    assert first.status_code == 200, first.text
    replayed = httpx.post(server.url + "/oauth/token", data=form)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    refreshed = httpx.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_a_second_app_signs_in_through_the_session_without_a_page(server: Server) -> None:
    first, second = create_web_app(server), create_web_app(server)
    email = new_person(server, first["client_id"])
    with browser(server) as person:
        _, challenge = pkce()
        sign_in(person, authorize_params(first["client_id"], challenge), email)
        again = person.get("/authorize", params=authorize_params(second["client_id"], challenge))
        assert again.status_code == 302
        assert again.headers["location"].startswith(CALLBACK + "?code=")
        # prompt=login asks again; prompt=none answers from the session.
        forced = person.get(
            "/authorize", params=authorize_params(second["client_id"], challenge, prompt="login")
        )
        assert forced.headers["location"].startswith("/u/login?state=")
        silent = person.get(
            "/authorize", params=authorize_params(second["client_id"], challenge, prompt="none")
        )
        assert "code=" in silent.headers["location"]
    with browser(server) as stranger:
        refused = stranger.get(
            "/authorize", params=authorize_params(second["client_id"], challenge, prompt="none")
        )
        answer = query_of(refused.headers["location"])
        assert answer["error"] == "login_required"
        assert answer["iss"] == server.issuer


def test_sessions_are_listed_and_revoked_through_the_management_api(server: Server) -> None:
    app = create_web_app(server)
    email = new_person(server, app["client_id"])
    _, challenge = pkce()
    with browser(server) as person:
        sign_in(person, authorize_params(app["client_id"], challenge), email)
        with server.api() as api:
            user_id = api.get("/users", params={"email": email}).json()[0]["user_id"]
            listed = api.get(f"/users/{user_id}/sessions")
            assert listed.status_code == 200, listed.text
            (only,) = listed.json()["sessions"]
            assert only["user_id"] == user_id
            assert only["clients"] == [{"client_id": app["client_id"]}]
            assert only["authentication"]["methods"][0]["name"] == "pwd"
            assert api.delete(f"/users/{user_id}/sessions").status_code == 202
            assert api.get(f"/users/{user_id}/sessions").json() == {"sessions": []}
            assert api.get("/users/auth0|nobody/sessions").status_code == 404
        # The browser's cookie no longer signs anyone in.
        silent = person.get(
            "/authorize", params=authorize_params(app["client_id"], challenge, prompt="none")
        )
        assert query_of(silent.headers["location"])["error"] == "login_required"


def test_logout_ends_the_session_and_returns_only_to_allowed_urls(server: Server) -> None:
    app = create_web_app(server)
    email = new_person(server, app["client_id"])
    verifier, challenge = pkce()
    with browser(server) as person:
        callback = sign_in(person, authorize_params(app["client_id"], challenge), email)
        id_token = httpx.post(
            server.url + "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": query_of(callback)["code"],
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
            },
        ).json()["id_token"]
        elsewhere = person.get(
            "/oidc/logout",
            params={"id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example/"},
        )
        assert elsewhere.status_code == 400
        assert "allowed logout URLs" in elsewhere.text
        forged = person.get("/oidc/logout", params={"id_token_hint": id_token[:-4] + "AAAA"})
        assert forged.status_code == 400
        # An access token, signed by the same key, is no ID token.
        not_an_id_token = person.get(
            "/oidc/logout", params={"id_token_hint": server.management_token()}
        )
        assert not_an_id_token.status_code == 400
        assert "not an ID token" in not_an_id_token.text
        # Without a hint, the person is asked first; the confirmation keeps the
        # application and where to return.
        asked = person.get(
            "/oidc/logout",
            params={
                "client_id": app["client_id"],
                "post_logout_redirect_uri": "https://app.example.com/signed-out",
            },
        )
        assert asked.status_code == 200
        assert "Do you want to sign out" in asked.text
        assert (
            "form-action 'self' https://app.example.com" in asked.headers["content-security-policy"]
        )
        confirmed = person.post(
            "/oidc/logout", data={**hidden_fields(asked.text), "decision": "logout"}
        )
        assert confirmed.status_code == 303
        assert confirmed.headers["location"] == "https://app.example.com/signed-out"
        # Signed out already: the hinted logout returns at once.
        signed_out = person.get(
            "/oidc/logout",
            params={
                "id_token_hint": id_token,
                "post_logout_redirect_uri": "https://app.example.com/signed-out",
                "state": "after",
            },
        )
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "https://app.example.com/signed-out?state=after"
        silent = person.get(
            "/authorize", params=authorize_params(app["client_id"], challenge, prompt="none")
        )
        assert query_of(silent.headers["location"])["error"] == "login_required"
