"""The settings of clients people sign in to by browser (Auth0's fields): redirect
and logout URIs matched exactly, origins, the token endpoint's authentication
method, first party, and refresh-token rotation and lifetimes."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_api_error, create_client
from tests.conftest import Server, unique


def test_defaults_follow_the_app_type(server: Server) -> None:
    with server.api() as api:
        spa = create_client(api, app_type="spa")
        web = create_client(api, app_type="regular_web")
        machine = create_client(api)
    assert spa["token_endpoint_auth_method"] == "none"
    assert web["token_endpoint_auth_method"] == "client_secret_post"
    assert web["grant_types"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert machine["grant_types"] == ["client_credentials"]
    for client in (spa, web, machine):
        assert client["callbacks"] == client["allowed_logout_urls"] == []
        assert client["web_origins"] == client["allowed_origins"] == []
        assert client["is_first_party"] is True
        assert client["refresh_token"] == {
            "rotation_type": "rotating",
            "expiration_type": "expiring",
            "leeway": 0,
            "token_lifetime": 2592000,
            "idle_token_lifetime": 1296000,
            "infinite_token_lifetime": False,
            "infinite_idle_token_lifetime": False,
        }


def test_settings_are_stored_and_a_partial_refresh_token_keeps_the_rest(server: Server) -> None:
    settings = {
        "callbacks": ["https://app.example.com/callback", "com.example.app:/oauth2redirect"],
        "allowed_logout_urls": ["https://app.example.com/"],
        "web_origins": ["https://app.example.com"],
        "allowed_origins": ["http://localhost:3000/"],
        "is_first_party": False,
        "refresh_token": {"idle_token_lifetime": 3600},
    }
    with server.api() as api:
        created = create_client(api, app_type="regular_web", **settings)
        assert created["callbacks"] == settings["callbacks"]
        assert created["allowed_origins"] == ["http://localhost:3000"]  # an origin, no slash
        assert created["is_first_party"] is False
        assert created["refresh_token"]["idle_token_lifetime"] == 3600
        patched = api.patch(
            f"/clients/{created['client_id']}",
            json={"refresh_token": {"rotation_type": "non-rotating"}, "callbacks": []},
        )
        assert patched.status_code == 200, patched.text
        fetched = api.get(f"/clients/{created['client_id']}").json()
    assert fetched["refresh_token"]["rotation_type"] == "non-rotating"
    assert fetched["refresh_token"]["idle_token_lifetime"] == 3600
    assert fetched["callbacks"] == []
    assert fetched["allowed_logout_urls"] == settings["allowed_logout_urls"]


@pytest.mark.parametrize(
    ("field", "value", "mentions"),
    [
        ("callbacks", ["https://app.example.com/cb#frag"], "fragment"),
        ("callbacks", ["https://*.example.com/cb"], "wildcards"),
        ("callbacks", ["/relative/callback"], "absolute"),
        ("callbacks", ["https:///no-host"], "no host"),
        ("allowed_logout_urls", ["not a uri"], "absolute"),
        ("web_origins", ["https://app.example.com/path"], "origin"),
        ("allowed_origins", ["ftp://app.example.com"], "origin"),
        ("token_endpoint_auth_method", "private_key_jwt", "token_endpoint_auth_method"),
        ("refresh_token", {"rotation_type": "sometimes"}, "rotation_type"),
        ("refresh_token", {"token_lifetime": 1}, "token_lifetime"),
        ("refresh_token", {"unknown": 1}, "unknown"),
    ],
)
def test_bad_settings_are_refused(server: Server, field: str, value: object, mentions: str) -> None:
    with server.api() as api:
        response = api.post(
            "/clients", json={"name": unique("bad"), "app_type": "regular_web", field: value}
        )
    assert_api_error(response, 400, mentions)


def test_public_clients_keep_no_secret_and_rotate(server: Server) -> None:
    with server.api() as api:
        refused = api.post(
            "/clients",
            json={
                "name": unique("spa"),
                "app_type": "spa",
                "token_endpoint_auth_method": "client_secret_post",
            },
        )
        assert_api_error(refused, 400, "must be none")
        spa = create_client(api, app_type="spa")
        fixed = api.patch(
            f"/clients/{spa['client_id']}",
            json={"refresh_token": {"rotation_type": "non-rotating"}},
        )
        assert_api_error(fixed, 400, "must rotate")
        # A spa that becomes a regular web app gets a secret's method back, and back.
        web = api.patch(f"/clients/{spa['client_id']}", json={"app_type": "regular_web"})
        assert web.json()["token_endpoint_auth_method"] == "client_secret_post"
        again = api.patch(f"/clients/{spa['client_id']}", json={"app_type": "native"})
        assert again.json()["token_endpoint_auth_method"] == "none"
        unchanged = api.get(f"/clients/{spa['client_id']}").json()
    assert unchanged["refresh_token"]["rotation_type"] == "rotating"
