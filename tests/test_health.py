"""Liveness, readiness and discovery."""

from __future__ import annotations

import httpx

from tests.conftest import Server


def test_healthz_and_readyz(server: Server) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


def test_discovery_documents(server: Server) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        document = httpx.get(server.url + path).json()
        assert document["issuer"] == server.issuer
        assert document["token_endpoint"] == server.issuer + "oauth/token"
        assert document["jwks_uri"] == server.issuer + ".well-known/jwks.json"
        assert document["grant_types_supported"] == [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "http://auth0.com/oauth/grant-type/password-realm",
        ]
        assert document["authorization_endpoint"] == server.issuer + "authorize"
        assert document["userinfo_endpoint"] == server.issuer + "userinfo"
        assert document["end_session_endpoint"] == server.issuer + "oidc/logout"
        assert document["revocation_endpoint"] == server.issuer + "oauth/revoke"
        assert document["response_types_supported"] == ["code"]
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert document["authorization_response_iss_parameter_supported"] is True
        assert document["token_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ]
