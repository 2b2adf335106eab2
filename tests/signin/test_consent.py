"""Third-party clients ask the person's consent to the scopes they want: once, again
for more or with prompt=consent, never with prompt=none (consent_required); a
refusal reaches the callback as access_denied."""

from __future__ import annotations

import httpx

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
)
from tests.users.helpers import PASSWORD, create_api


def signed_in_to_consent(person: httpx.Client, params: dict[str, str], email: str) -> str:
    """Sign in from /authorize; the consent page it leads to."""
    started = person.get("/authorize", params=params)
    page = person.get(started.headers["location"])
    posted = person.post(
        "/u/login", data={**hidden_fields(page.text), "username": email, "password": PASSWORD}
    )
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"].startswith("/u/consent?state=")
    return str(posted.headers["location"])


def test_a_third_party_client_asks_once_and_a_refusal_is_access_denied(server: Server) -> None:
    app = create_web_app(server, is_first_party=False)
    email = new_person(server, app["client_id"])
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    with browser(server) as person:
        consent = person.get(signed_in_to_consent(person, params, email))
        assert consent.status_code == 200
        for scope in ("openid", "profile", "email"):
            assert f"<li>{scope}</li>" in consent.text
        refused = person.post(
            "/u/consent", data={**hidden_fields(consent.text), "decision": "deny"}
        )
        assert refused.status_code == 303
        answer = query_of(refused.headers["location"])
        assert answer["error"] == "access_denied"
        assert answer["state"] == params["state"]

        # Signed in now; asked again, and allowed.
        again = person.get("/authorize", params=params)
        assert again.headers["location"].startswith("/u/consent?state=")
        page = person.get(again.headers["location"])
        allowed = person.post("/u/consent", data={**hidden_fields(page.text), "decision": "accept"})
        assert allowed.headers["location"].startswith(CALLBACK + "?code=")
        # The same scopes are not asked again; more scopes, or prompt=consent, are.
        quiet = person.get("/authorize", params=authorize_params(app["client_id"], challenge))
        assert quiet.headers["location"].startswith(CALLBACK + "?code=")
        more = person.get(
            "/authorize",
            params=authorize_params(app["client_id"], challenge, scope="openid offline_access"),
        )
        assert more.headers["location"].startswith("/u/consent?state=")
        forced = person.get(
            "/authorize", params=authorize_params(app["client_id"], challenge, prompt="consent")
        )
        assert forced.headers["location"].startswith("/u/consent?state=")
        silent = person.get(
            "/authorize",
            params=authorize_params(
                app["client_id"], challenge, scope="openid offline_access", prompt="none"
            ),
        )
        assert query_of(silent.headers["location"])["error"] == "consent_required"


def test_the_consent_page_cannot_skip_a_sign_in_the_app_asked_for(server: Server) -> None:
    app = create_web_app(server, is_first_party=False)
    email = new_person(server, app["client_id"])
    _, challenge = pkce()
    with browser(server) as person:
        consent = person.get(
            signed_in_to_consent(person, authorize_params(app["client_id"], challenge), email)
        )
        person.post("/u/consent", data={**hidden_fields(consent.text), "decision": "accept"})
        # Signed in; the app asks for a fresh sign-in: the consent page is no way around it.
        forced = person.get(
            "/authorize", params=authorize_params(app["client_id"], challenge, prompt="login")
        )
        login_page = forced.headers["location"]
        assert login_page.startswith("/u/login?state=")
        fields = hidden_fields(person.get(login_page).text)
        skipped = person.get(login_page.replace("/u/login", "/u/consent"))
        assert skipped.status_code == 400
        posted = person.post("/u/consent", data={**fields, "decision": "accept"})
        assert posted.status_code == 400
        assert "location" not in posted.headers


def test_consent_to_one_api_is_not_consent_to_another(server: Server) -> None:
    first, second = create_api(server, ["read"]), create_api(server, ["read"])
    app = create_web_app(server, is_first_party=False)
    email = new_person(server, app["client_id"])
    _, challenge = pkce()
    with browser(server) as person:
        params = authorize_params(app["client_id"], challenge, scope="openid read", audience=first)
        consent = person.get(signed_in_to_consent(person, params, email))
        person.post("/u/consent", data={**hidden_fields(consent.text), "decision": "accept"})
        same = person.get("/authorize", params=params)
        assert same.headers["location"].startswith(CALLBACK + "?code=")
        other = person.get("/authorize", params={**params, "audience": second})
        assert other.headers["location"].startswith("/u/consent?state=")
