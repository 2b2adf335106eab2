"""A person in a real Chromium signs up and signs in through the hosted pages: to a
single-page app that uses oidc-client-ts (authorization code with PKCE from the
browser, CORS, userinfo, refresh tokens, RP-initiated logout), and to a
server-side app that uses Authlib, through the same session (single sign-on)."""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from tests.conftest import Server
from tests.dashboard.browser import chromium, wait
from tests.signin.helpers import pkce
from tests.users.helpers import PASSWORD, new_email

SPA = Path(__file__).parent / "spa"


class _SpaFiles(SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        name = urlsplit(path).path.lstrip("/")
        if name == "oidc-client-ts.min.js":
            return str(SPA / "node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js")
        return str(SPA / name) if name in ("index.html", "app.js") else str(SPA / "missing")

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def spa_origin() -> Iterator[str]:
    with ThreadingHTTPServer(("127.0.0.1", 0), _SpaFiles) as files:
        threading.Thread(target=files.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{files.server_address[1]}"
        finally:
            files.shutdown()


def status(browser: Chrome, expected: str) -> None:
    wait(browser, lambda b: b.find_element(By.ID, "status").text == expected)


def profile(browser: Chrome) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(browser.find_element(By.ID, "profile").text)
    return shown


def fill(browser: Chrome, fields: dict[str, str], button: str) -> None:
    for name, value in fields.items():
        field = wait(browser, lambda b, name=name: b.find_element(By.NAME, name))  # type: ignore[misc]
        field.clear()
        field.send_keys(value)
    browser.find_element(By.XPATH, f"//button[text()='{button}']").click()


def test_a_person_signs_up_and_in_to_a_spa_and_a_web_app(server: Server, spa_origin: str) -> None:
    with server.api() as api:
        spa = api.post(
            "/clients",
            json={
                "name": "Notes SPA",
                "app_type": "spa",
                "callbacks": [f"{spa_origin}/index.html"],
                "allowed_logout_urls": [f"{spa_origin}/index.html?signed_out=1"],
                "web_origins": [spa_origin],
            },
        ).json()
    email = new_email()
    with chromium() as browser, _web_app(server) as web:
        browser.get(
            f"{spa_origin}/index.html?authority={server.issuer}&client_id={spa['client_id']}"
        )
        status(browser, "anonymous")
        browser.find_element(By.ID, "signup").click()
        wait(browser, lambda b: "/u/signup" in b.current_url)
        assert "Notes SPA" in browser.page_source
        fill(browser, {"email": email, "password": "weak"}, "Sign up")
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "ul.rules .failed"))
        fill(browser, {"email": email, "password": PASSWORD}, "Sign up")
        status(browser, "signed in")
        first = profile(browser)
        assert first["profile"]["email"] == email  # from the ID token and userinfo
        assert first["refresh_token"]

        browser.find_element(By.ID, "refresh").click()
        status(browser, "refreshed")
        assert profile(browser)["refresh_token"] != first["refresh_token"]  # rotated

        # The web app signs the same person in through the session: no page.
        browser.get(web.url + "/login")
        wait(browser, lambda b: "signed in as" in b.page_source)
        assert html.escape(email) in browser.page_source

        browser.get(f"{spa_origin}/index.html")
        status(browser, "signed in")
        browser.find_element(By.ID, "logout").click()
        status(browser, "signed out")

        # Signed out everywhere: the web app gets the sign-in page, and signs in.
        browser.get(web.url + "/login")
        wait(browser, lambda b: "/u/login" in b.current_url)
        fill(browser, {"username": email, "password": PASSWORD}, "Continue")
        wait(browser, lambda b: "signed in as" in b.page_source)
        assert web.signed_in == [email, email]


class _WebApp:
    """A server-side app on Authlib: /login redirects to /authorize, /callback
    exchanges the code with its secret and PKCE, and greets the person."""

    def __init__(self, server: Server, client: dict[str, Any], url: str) -> None:
        self.server = server
        self.client = client
        self.url = url
        self.pending: dict[str, str] = {}
        self.signed_in: list[str] = []

    def oauth(self) -> OAuth2Client:
        return OAuth2Client(
            self.client["client_id"],
            self.client["client_secret"],
            scope="openid email",
            redirect_uri=self.url + "/callback",
            code_challenge_method="S256",
        )

    def handle(self, path: str) -> tuple[int, dict[str, str], str]:
        if path == "/login":
            verifier, _ = pkce()
            with self.oauth() as oauth:
                location, state = oauth.create_authorization_url(
                    self.server.url + "/authorize", code_verifier=verifier
                )
            self.pending[state] = verifier
            return 302, {"Location": location}, ""
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        verifier = self.pending.pop(query.get("state", ""), "")
        with self.oauth() as oauth:
            token = oauth.fetch_token(
                self.server.url + "/oauth/token",
                authorization_response=self.url + path,
                code_verifier=verifier,
            )
        info = httpx.get(
            self.server.url + "/userinfo",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        ).json()
        self.signed_in.append(info["email"])
        return (
            200,
            {"Content-Type": "text/html"},
            f"<p>signed in as {html.escape(info['email'])}</p>",
        )


class _WebAppHandler(BaseHTTPRequestHandler):
    def __init__(self, app: _WebApp, *args: Any) -> None:
        self.app = app
        super().__init__(*args)

    def do_GET(self) -> None:
        status_code, headers, body = self.app.handle(self.path)
        self.send_response(status_code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _web_app(server: Server) -> Iterator[_WebApp]:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as http:
        url = f"http://127.0.0.1:{http.server_address[1]}"
        with server.api() as api:
            client = api.post(
                "/clients",
                json={
                    "name": "Notes web",
                    "app_type": "regular_web",
                    "callbacks": [url + "/callback"],
                },
            ).json()
        app = _WebApp(server, client, url)
        http.RequestHandlerClass = partial(_WebAppHandler, app)  # type: ignore[assignment]
        threading.Thread(target=http.serve_forever, daemon=True).start()
        try:
            yield app
        finally:
            http.shutdown()
