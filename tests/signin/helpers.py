"""What the sign-in tests share: apps with callbacks, and a person going through
the hosted pages with a cookie-keeping HTTP client (the browser tests use a real
Chromium; these read the pages' forms as a browser submits them)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import Server, unique
from tests.users.helpers import PASSWORD, new_email, signup

CALLBACK = "https://app.example.com/callback"
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def create_web_app(server: Server, **fields: Any) -> dict[str, Any]:
    """A regular web app (confidential) with one callback and a logout URL."""
    body = {
        "name": unique("web"),
        "app_type": "regular_web",
        "callbacks": [CALLBACK],
        "allowed_logout_urls": ["https://app.example.com/signed-out"],
        **fields,
    }
    with server.api() as api:
        response = api.post("/clients", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def new_person(server: Server, client_id: str) -> str:
    """A user who signed up through the API; their email (the password is PASSWORD)."""
    email = new_email()
    assert signup(server, client_id, email).status_code == 200
    return email


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def browser(server: Server) -> httpx.Client:
    """A cookie-keeping client that does not follow redirects, so each step is seen."""
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def sign_in(
    person: httpx.Client, authorize: dict[str, str], email: str, password: str = PASSWORD
) -> str:
    """From /authorize through the sign-in page: where the browser is sent at the end."""
    started = person.get("/authorize", params=authorize)
    assert started.status_code == 302, started.text
    page = person.get(started.headers["location"])
    assert page.status_code == 200, page.text
    posted = person.post(
        "/u/login",
        data={**hidden_fields(page.text), "username": email, "password": password},
        headers={"Origin": str(person.base_url).rstrip("/")},
    )
    assert posted.status_code == 303, posted.text
    return str(posted.headers["location"])


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
