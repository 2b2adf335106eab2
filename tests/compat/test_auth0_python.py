"""auth0-python 4.13 (Auth0's Python SDK, the last 4.x) against authhooks behind
TLS, as a team's scripts call it: tokens by client credentials and by the
password-realm grant (JSON bodies), clients, APIs and hooks created with Auth0's
own fields, read back and sent back unchanged, signups, users by email, client
grants, the connection; refusals arrive as Auth0Error with their code and text."""

from __future__ import annotations

from tests.compat.conftest import Tls
from tests.compat.python_sdk import run_calls
from tests.conftest import Server


def test_a_teams_scripts_work_unchanged(tls_server: Server, tls: Tls) -> None:
    results = run_calls(".auth0-python-4", "auth0_python_calls.py", tls_server, tls)
    for name in ("token", "create_api", "create_client", "update_client_as_read",
                 "create_hook", "update_hook_as_read", "signup", "login", "users_by_email",
                 "grants", "connections"):  # fmt: skip
        assert "ok" in results[name], (name, results[name])
    api = results["create_api"]["ok"]
    assert api["signing_alg"] == "RS256"  # accepted, no effect: stored and answered back
    assert api["token_dialect"] == "access_token"
    client = results["update_client_as_read"]["ok"]
    assert client["oidc_conformant"] is True
    assert client["jwt_configuration"] == {"alg": "RS256", "lifetime_in_seconds": 36000}
    assert results["login"]["ok"]["token_type"] == "Bearer"
    assert [user["email"] for user in results["users_by_email"]["ok"]] == [
        results["signup"]["ok"]["email"]
    ]
    assert results["connections"]["ok"][0]["name"] == "Username-Password-Authentication"
    # Refusals carry Auth0's shape, so the SDK shows their code and text.
    read_only = results["update_client_read_only"]
    assert read_only["status"] == 400
    assert "client_id: read-only" in read_only["message"]
    assert "rotate-secret" in results["set_secret"]["message"]
    assert results["bad_client"]["status"] == 400
    assert "name" in results["bad_client"]["message"]
