"""Dashboard sign-in sessions: cookie, CSRF, the management token they give, and
how they end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from authhooks.dashboard import sessions
from authhooks.dashboard.sessions import SessionLimits
from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import CACHE_TTL, Server, create_machine, unique


def sign_in(server: Server, client_id: str, secret: str, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url + "/dashboard/session",
        json={"client_id": client_id, "client_secret": secret},
        headers=headers,
    )


def reader_admin(server: Server, api: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new client granted read:hooks on the management API, and its grant."""
    created: dict[str, Any] = api.post("/clients", json={"name": unique("admin")}).json()
    grant = api.post(
        "/client-grants",
        json={
            "client_id": created["client_id"],
            "audience": server.management_audience,
            "scope": ["read:hooks"],
        },
    )
    assert grant.status_code == 201, grant.text
    granted: dict[str, Any] = grant.json()
    return created, granted


def test_a_session_gives_the_clients_own_management_token(server: Server) -> None:
    signed = sign_in(server, server.admin_id, server.admin_secret, Origin=server.url)
    assert signed.status_code == 200, signed.text
    cookie = signed.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # the test server's issuer is http
    body = signed.json()
    assert body["client_id"] == server.admin_id
    assert "read:hooks" in body["scopes"]
    with httpx.Client(base_url=server.url, cookies=signed.cookies) as browser:
        again = browser.get("/dashboard/session")
        assert again.status_code == 200
        assert again.json()["csrf_token"] == body["csrf_token"]

        assert browser.post("/dashboard/session/token").status_code == 403
        forged = browser.post("/dashboard/session/token", headers={"X-CSRF-Token": "guess"})
        assert forged.status_code == 403
        csrf = {"X-CSRF-Token": body["csrf_token"]}
        minted = browser.post("/dashboard/session/token", headers=csrf)
        assert minted.status_code == 200, minted.text
        assert 0 < minted.json()["expires_in"] <= 600
        token = minted.json()["access_token"]
        listed = httpx.get(
            server.url + "/api/v2/hooks", headers={"Authorization": f"Bearer {token}"}
        )
        assert listed.status_code == 200

        assert browser.delete("/dashboard/session").status_code == 403  # no CSRF token
        out = browser.delete("/dashboard/session", headers=csrf)
        assert out.status_code == 204
        assert browser.get("/dashboard/session").status_code == 401
        assert browser.post("/dashboard/session/token", headers=csrf).status_code == 401


def test_refused_sign_ins(server: Server) -> None:
    wrong = sign_in(server, server.admin_id, "wrong-secret")
    assert wrong.status_code == 401
    assert wrong.json()["message"] == "wrong client id or secret"
    assert sign_in(server, "no-such-client", "x").status_code == 401
    machine = create_machine(server)  # a client with no grant for the management API
    refused = sign_in(server, machine.client_id, machine.client_secret)
    assert refused.status_code == 403
    assert "management API" in refused.json()["message"]
    elsewhere = sign_in(
        server, server.admin_id, server.admin_secret, Origin="https://attacker.example"
    )
    assert elsewhere.status_code == 403
    assert "set-cookie" not in elsewhere.headers
    missing = httpx.post(server.url + "/dashboard/session", json={"client_id": "x"})
    assert missing.status_code == 400
    assert "client_secret" in missing.json()["message"]
    assert httpx.get(server.url + "/dashboard/session").status_code == 401
    bogus = httpx.get(server.url + "/dashboard/session", cookies={"authhooks_dashboard": "x"})
    assert bogus.status_code == 401


def test_a_revoked_grant_or_a_deleted_client_stops_the_session(server: Server) -> None:
    with server.api() as api:
        created, grant = reader_admin(server, api)
    signed = sign_in(server, created["client_id"], created["client_secret"])
    assert signed.json()["scopes"] == ["read:hooks"]
    csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
    mint = server.url + "/dashboard/session/token"
    assert httpx.post(mint, cookies=signed.cookies, headers=csrf).status_code == 200
    with server.api() as api:
        assert api.delete(f"/client-grants/{grant['id']}").status_code == 204
    time.sleep(CACHE_TTL * 2)  # the grant cache's bound
    revoked = httpx.post(mint, cookies=signed.cookies, headers=csrf)
    assert revoked.status_code == 403
    with server.api() as api:
        assert api.delete(f"/clients/{created['client_id']}").status_code == 204
    gone = httpx.get(server.url + "/dashboard/session", cookies=signed.cookies)
    assert gone.status_code == 401


def test_sessions_end_when_idle_or_old(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'sessions.db'}")
    database.migrate()
    with database.session() as session:
        session.add(
            models.Client(
                client_id="admin-1",
                name="admin",
                app_type="non_interactive",
                secret_hash=b"-",
                grant_types=["client_credentials"],
                client_metadata={},
            )
        )
    idle = SessionLimits(idle=1, lifetime=60)
    with database.session() as session:
        token, _ = sessions.start(session, idle, client_id="admin-1")
    with database.session() as session:
        assert sessions.resume(session, token, idle) is not None
    time.sleep(1.2)
    with database.session() as session:
        assert sessions.resume(session, token, idle) is None
    short = SessionLimits(idle=60, lifetime=1)
    with database.session() as session:
        token, _ = sessions.start(session, short, client_id="admin-1")
    time.sleep(1.2)
    with database.session() as session:
        assert sessions.resume(session, token, short) is None
        sessions.prune(session, short)
    database.dispose()


def test_only_clients_that_may_get_client_credentials_tokens_sign_in(server: Server) -> None:
    with server.api() as api:
        created, _ = reader_admin(server, api)
        signed = sign_in(server, created["client_id"], created["client_secret"])
        assert signed.status_code == 200
        csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
        mint = server.url + "/dashboard/session/token"
        minted = httpx.post(mint, cookies=signed.cookies, headers=csrf)
        assert minted.headers["cache-control"] == "no-store"

        # Without the client credentials grant type: no sign-in, no more tokens.
        patched = api.patch(f"/clients/{created['client_id']}", json={"grant_types": []})
        assert patched.status_code == 200, patched.text
        time.sleep(CACHE_TTL * 2)
        refused = sign_in(server, created["client_id"], created["client_secret"])
        assert refused.status_code == 403
        assert httpx.post(mint, cookies=signed.cookies, headers=csrf).status_code == 403

        # A rotated secret signs out whoever signed in with the old one.
        api.patch(f"/clients/{created['client_id']}", json={"grant_types": ["client_credentials"]})
        time.sleep(CACHE_TTL * 2)
        again = sign_in(server, created["client_id"], created["client_secret"])
        assert again.status_code == 200
        rotated = api.post(f"/clients/{created['client_id']}/rotate-secret")
        assert rotated.status_code == 200
        assert (
            httpx.get(server.url + "/dashboard/session", cookies=again.cookies).status_code == 401
        )


def test_a_sign_in_from_the_servers_own_origin_in_another_spelling(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    spelled = f"HTTP://{host.upper()}:{port}"
    assert sign_in(server, server.admin_id, server.admin_secret, Origin=spelled).status_code == 200
