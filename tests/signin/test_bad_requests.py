"""Every malformed sign-in request gets its RFC error, and nothing half-done: an
unknown client or redirect URI gets a page, never a redirect; the other errors go
back to the application with ``state`` and ``iss``; codes and refresh tokens
refuse what is not theirs; forms refuse other sites, other browsers and missing
CSRF tokens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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
from tests.users.helpers import PASSWORD


@pytest.fixture(scope="module")
def app(server: Server) -> dict[str, Any]:
    return create_web_app(server)


def test_a_bad_client_or_redirect_uri_gets_a_page_not_a_redirect(
    server: Server, app: dict[str, Any]
) -> None:
    _, challenge = pkce()
    good = authorize_params(app["client_id"], challenge)
    cases = [
        ({k: v for k, v in good.items() if k != "client_id"}, "client_id is missing"),
        ({**good, "client_id": "nobody"}, "no application has this client_id"),
        ({**good, "redirect_uri": "https://evil.example/cb"}, "registered callback URLs"),
        ({**good, "redirect_uri": CALLBACK + "/"}, "registered callback URLs"),  # exact match
    ]
    for params, message in cases:
        response = httpx.get(server.url + "/authorize", params=params)
        assert response.status_code == 400, params
        assert "location" not in response.headers
        assert message in response.text
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    repeated = httpx.get(
        server.url + "/authorize?" + httpx.QueryParams(good).__str__() + "&redirect_uri=x"
    )
    assert repeated.status_code == 400
    assert "redirect_uri is repeated" in repeated.text


@pytest.mark.parametrize(
    ("change", "error", "mentions"),
    [
        ({"response_type": None}, "invalid_request", "response_type is missing"),
        ({"response_type": "token"}, "unsupported_response_type", "code"),
        ({"code_challenge_method": "plain"}, "invalid_request", "S256"),
        ({"code_challenge_method": None}, "invalid_request", "S256"),
        ({"code_challenge": "short"}, "invalid_request", "43"),
        ({"scope": "openid delete:everything"}, "invalid_scope", "delete:everything"),
        ({"audience": "https://unknown.example.com/"}, "access_denied", "cannot get tokens"),
        ({"resource": "not a uri"}, "invalid_target", "absolute URI"),
        ({"prompt": "none login"}, "invalid_request", "prompt=none"),
        ({"prompt": "sometimes"}, "invalid_request", "sometimes"),
        ({"max_age": "soon"}, "invalid_request", "max_age"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported", "request objects"),
        ({"response_mode": "fragment"}, "invalid_request", "response_mode"),
        ({"scope": "openid "}, "invalid_scope", "single spaces"),
        ({"prompt": "login  consent"}, "invalid_request", "prompt"),
        ({"max_age": "\u00b2"}, "invalid_request", "max_age"),
        ({"nonce": "a\u0000b"}, "invalid_request", "NUL"),
        ({"redirect_uri": None}, "invalid_request", "redirect_uri is required"),
        (
            {"code_challenge": None, "code_challenge_method": None, "nonce": None},
            "invalid_request",
            "PKCE",
        ),
    ],
)
def test_other_errors_go_back_to_the_application(
    server: Server, app: dict[str, Any], change: dict[str, str | None], error: str, mentions: str
) -> None:
    _, challenge = pkce()
    params = {**authorize_params(app["client_id"], challenge), **change}
    response = httpx.get(
        server.url + "/authorize", params={k: v for k, v in params.items() if v is not None}
    )
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    answer = query_of(location)
    assert answer["error"] == error
    assert mentions in answer["error_description"]
    assert answer["state"] == params["state"]
    assert answer["iss"] == server.issuer


def test_a_nul_in_the_client_id_gets_a_page(server: Server) -> None:
    response = httpx.get(server.url + "/authorize", params={"client_id": "a\u0000b"})
    assert response.status_code == 400
    assert "NUL" in response.text


def test_a_loopback_callback_matches_on_any_port_and_http_only_on_loopback(
    server: Server,
) -> None:
    native = create_web_app(server, app_type="native", callbacks=["http://127.0.0.1/callback"])
    _, challenge = pkce()
    params = {
        **authorize_params(native["client_id"], challenge),
        "redirect_uri": "http://127.0.0.1:49152/callback",
    }
    with browser(server) as person:
        started = person.get("/authorize", params=params)
        assert started.headers["location"].startswith("/u/login?state=")
        other_path = person.get(
            "/authorize", params={**params, "redirect_uri": "http://127.0.0.1:49152/other"}
        )
        assert other_path.status_code == 400
    with server.api() as api:
        refused = api.post(
            "/clients",
            json={"name": "plain", "app_type": "spa", "callbacks": ["http://app.example.com/cb"]},
        )
    assert refused.status_code == 400
    assert "use https" in refused.json()["message"]


def test_a_repeated_parameter_goes_back_as_invalid_request(
    server: Server, app: dict[str, Any]
) -> None:
    _, challenge = pkce()
    query = str(httpx.QueryParams(authorize_params(app["client_id"], challenge)))
    response = httpx.get(f"{server.url}/authorize?{query}&scope=openid")
    answer = query_of(response.headers["location"])
    assert answer["error"] == "invalid_request"
    assert "scope is repeated" in answer["error_description"]


def test_a_public_client_must_use_pkce_and_a_machine_client_the_code_grant(
    server: Server,
) -> None:
    spa = create_web_app(server, app_type="spa")
    machine = create_web_app(server, app_type="non_interactive", grant_types=["client_credentials"])
    _, challenge = pkce()
    without = {
        k: v
        for k, v in authorize_params(spa["client_id"], challenge).items()
        if not k.startswith("code_challenge")
    }
    answer = query_of(httpx.get(server.url + "/authorize", params=without).headers["location"])
    assert answer["error"] == "invalid_request"
    assert "PKCE" in answer["error_description"]
    refused = httpx.get(
        server.url + "/authorize", params=authorize_params(machine["client_id"], challenge)
    )
    assert query_of(refused.headers["location"])["error"] == "unauthorized_client"


def test_codes_refuse_what_is_not_theirs(server: Server, app: dict[str, Any]) -> None:
    other = create_web_app(server)
    email = new_person(server, app["client_id"])
    verifier, challenge = pkce()

    def fresh_code() -> str:
        with browser(server) as person:
            return query_of(sign_in(person, authorize_params(app["client_id"], challenge), email))[
                "code"
            ]

    base = {
        "grant_type": "authorization_code",
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
    }
    wrong_verifier, _ = pkce()
    cases = [
        ({"code_verifier": wrong_verifier}, "invalid_grant", "does not match"),
        ({"code_verifier": "short"}, "invalid_request", "code_verifier"),
        ({"code_verifier": None}, "invalid_grant", "code_verifier is required"),
        ({"redirect_uri": "https://app.example.com/other"}, "invalid_grant", "redirect_uri"),
        ({"redirect_uri": None}, "invalid_grant", "redirect_uri is required"),
        (
            {"client_id": other["client_id"], "client_secret": other["client_secret"]},
            "invalid_grant",
            "another client",
        ),
        ({"code": "made-up"}, "invalid_grant", "invalid"),
        ({"code": None}, "invalid_request", "code is required"),
    ]
    code = fresh_code()
    for change, error, mentions in cases:
        form = {k: v for k, v in {**base, "code": code, **change}.items() if v is not None}
        response = httpx.post(server.url + "/oauth/token", data=form)
        assert response.status_code == 400, (change, response.text)
        assert response.json()["error"] == error, change
        assert mentions in response.json()["error_description"], change
    # None of those used the code up.
    assert httpx.post(server.url + "/oauth/token", data={**base, "code": code}).status_code == 200


def test_forms_refuse_other_sites_other_browsers_and_missing_tokens(
    server: Server, app: dict[str, Any]
) -> None:
    email = new_person(server, app["client_id"])
    _, challenge = pkce()
    with browser(server) as person:
        started = person.get("/authorize", params=authorize_params(app["client_id"], challenge))
        fields = hidden_fields(person.get(started.headers["location"]).text)
        login = {**fields, "username": email, "password": PASSWORD}
        cross_site = person.post("/u/login", data=login, headers={"Origin": "https://evil.example"})
        assert cross_site.status_code == 403
        no_csrf = person.post("/u/login", data={**login, "csrf": "forged"})
        assert no_csrf.status_code == 403
        wrong = person.post("/u/login", data={**login, "password": "Wrong-Password-1"})
        assert wrong.status_code == 400
        assert "Wrong email or password." in wrong.text
    with browser(server) as elsewhere:  # the transaction is bound to the first browser
        stolen = elsewhere.post("/u/login", data=login)
        assert stolen.status_code == 400
        assert "started in another browser" in stolen.text
        assert "set-cookie" not in stolen.headers


def test_revoked_refresh_tokens_and_foreign_tokens_are_refused(
    server: Server, app: dict[str, Any]
) -> None:
    email = new_person(server, app["client_id"])
    verifier, challenge = pkce()
    with browser(server) as person:
        callback = sign_in(
            person,
            authorize_params(app["client_id"], challenge, scope="openid offline_access"),
            email,
        )
    secret = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
    issued = httpx.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(callback)["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            **secret,
        },
    ).json()
    refresh = issued["refresh_token"]
    narrower = httpx.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "scope": "profile",
            **secret,
        },
    )
    assert narrower.json()["error"] == "invalid_scope"
    bad_hint = httpx.post(
        server.url + "/oauth/revoke",
        data={"token": refresh, "token_type_hint": "id_token", **secret},
    )
    assert bad_hint.json()["error"] == "unsupported_token_type"
    revoked = httpx.post(server.url + "/oauth/revoke", data={"token": refresh, **secret})
    assert revoked.status_code == 200
    unknown = httpx.post(server.url + "/oauth/revoke", data={"token": "never-issued", **secret})
    assert unknown.status_code == 200  # RFC 7009 §2.2
    after = httpx.post(
        server.url + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, **secret},
    )
    assert after.json()["error"] == "invalid_grant"
    assert "revoked" in after.json()["error_description"]

    no_token = httpx.get(server.url + "/userinfo")
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == 'Bearer realm="authhooks"'
    management = httpx.get(
        server.url + "/userinfo",
        headers={"Authorization": f"Bearer {server.management_token()}"},
    )
    assert management.status_code == 401
    assert 'error="invalid_token"' in management.headers["www-authenticate"]
