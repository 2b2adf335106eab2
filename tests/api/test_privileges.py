"""What a management token may do follows its client's current grant, and no caller can
hand out, or take over, management power it does not hold."""

from __future__ import annotations

import time

import httpx

from tests.api.helpers import assert_api_error, create_client
from tests.conftest import CACHE_TTL, Server, unique


def management_client(server: Server, scopes: list[str]) -> tuple[str, str, str]:
    """(client_id, secret, grant_id) of a new client with a management grant of ``scopes``."""
    with server.api() as api:
        client = create_client(api)
        grant = api.post(
            "/client-grants",
            json={
                "client_id": client["client_id"],
                "audience": server.management_audience,
                "scope": scopes,
            },
        )
        assert grant.status_code == 201, grant.text
    return client["client_id"], client["client_secret"], grant.json()["id"]


def token_for(server: Server, client_id: str, secret: str) -> httpx.Client:
    response = server.token(client_id, secret, audience=server.management_audience)
    assert response.status_code == 200, response.text
    return httpx.Client(
        base_url=server.url + "/api/v2",
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
    )


def test_narrowing_the_grant_narrows_existing_tokens(server: Server) -> None:
    client_id, secret, grant_id = management_client(server, ["read:clients", "read:client_grants"])
    with token_for(server, client_id, secret) as limited:
        assert limited.get("/clients").status_code == 200
        with server.api() as api:
            patched = api.patch(
                f"/client-grants/{grant_id}", json={"scope": ["read:client_grants"]}
            )
            assert patched.status_code == 200, patched.text
        time.sleep(CACHE_TTL * 3)
        assert_api_error(limited.get("/clients"), 403, "read:clients", "insufficient_scope")
        assert limited.get("/client-grants").status_code == 200


def test_revoking_the_grant_stops_existing_tokens(server: Server) -> None:
    client_id, secret, grant_id = management_client(server, ["read:clients"])
    with token_for(server, client_id, secret) as limited:
        with server.api() as api:
            assert api.delete(f"/client-grants/{grant_id}").status_code == 204
        time.sleep(CACHE_TTL * 3)
        assert_api_error(limited.get("/clients"), 401, "revoked", "invalid_token")


def test_a_caller_cannot_grant_itself_more(server: Server) -> None:
    client_id, secret, grant_id = management_client(
        server, ["update:client_grants", "create:client_grants", "read:clients"]
    )
    with token_for(server, client_id, secret) as limited:
        wider = limited.patch(
            f"/client-grants/{grant_id}", json={"scope": ["update:client_grants", "delete:clients"]}
        )
        assert_api_error(wider, 403, "delete:clients", "insufficient_scope")
        with server.api() as api:
            other = create_client(api)
        handout = limited.post(
            "/client-grants",
            json={
                "client_id": other["client_id"],
                "audience": server.management_audience,
                "scope": ["create:clients"],
            },
        )
        assert_api_error(handout, 403, "create:clients", "insufficient_scope")
        within = limited.post(
            "/client-grants",
            json={
                "client_id": other["client_id"],
                "audience": server.management_audience,
                "scope": ["read:clients"],
            },
        )
        assert within.status_code == 201, within.text


def test_a_caller_cannot_take_over_a_stronger_client(server: Server) -> None:
    client_id, secret, _ = management_client(server, ["update:client_keys"])
    with token_for(server, client_id, secret) as limited:
        takeover = limited.post(f"/clients/{server.admin_id}/rotate-secret")
        assert_api_error(takeover, 403, "rotate", "insufficient_scope")
        with server.api() as api:
            plain = create_client(api)
        assert limited.post(f"/clients/{plain['client_id']}/rotate-secret").status_code == 200
    # The admin's secret still works: nothing was rotated.
    assert (
        server.token(
            server.admin_id, server.admin_secret, audience=server.management_audience
        ).status_code
        == 200
    )


def test_anonymous_large_body_is_refused_before_it_is_read(server: Server) -> None:
    def chunks() -> object:
        for _ in range(64):
            yield b"x" * 65536

    response = httpx.post(
        server.url + "/api/v2/clients",
        content=chunks(),  # type: ignore[arg-type]
        headers={"Content-Type": "application/json"},
    )
    assert_api_error(response, 401, "Missing authentication")


def test_authenticated_chunked_body_over_the_cap_is_413(server: Server) -> None:
    def chunks() -> object:
        for _ in range(8):
            yield b"x" * 65536

    with server.api() as api:
        response = api.post(
            "/clients",
            content=chunks(),  # type: ignore[arg-type]
            headers={"Content-Type": "application/json"},
        )
    assert_api_error(response, 413, "larger than", "too_large")


def test_removing_a_scope_from_an_api_removes_it_from_grants(server: Server) -> None:
    identifier = f"https://{unique('api')}.example.com/"
    with server.api() as api:
        created = api.post(
            "/resource-servers",
            json={
                "name": unique("api"),
                "identifier": identifier,
                "scopes": [{"value": "a"}, {"value": "b"}],
            },
        )
        assert created.status_code == 201
        client = create_client(api)
        grant = api.post(
            "/client-grants",
            json={"client_id": client["client_id"], "audience": identifier, "scope": ["a", "b"]},
        )
        api_id, grant_id = created.json()["id"], grant.json()["id"]
        assert (
            api.patch(f"/resource-servers/{api_id}", json={"scopes": [{"value": "a"}]}).status_code
            == 200
        )
        assert api.get(f"/client-grants/{grant_id}").json()["scope"] == ["a"]
        assert (
            api.patch(
                f"/resource-servers/{api_id}", json={"scopes": [{"value": "a"}, {"value": "b"}]}
            ).status_code
            == 200
        )
        assert api.get(f"/client-grants/{grant_id}").json()["scope"] == ["a"]


def test_an_identifier_may_not_look_like_an_id(server: Server) -> None:
    with server.api() as api:
        response = api.post(
            "/resource-servers",
            json={"name": unique("api"), "identifier": "0123456789abcdef01234567"},
        )
    assert_api_error(response, 400, "identifier", "invalid_body")


def test_public_clients_get_no_client_credentials(server: Server) -> None:
    with server.api() as api:
        spa = create_client(api, app_type="spa")
        assert spa["grant_types"] == ["authorization_code", "refresh_token"]
        assert spa["token_endpoint_auth_method"] == "none"
        refused = api.post(
            "/clients",
            json={
                "name": unique("spa"),
                "app_type": "native",
                "grant_types": ["client_credentials"],
            },
        )
        assert_api_error(refused, 400, "client_credentials", "invalid_body")
        machine = create_client(api)
        moved = api.patch(f"/clients/{machine['client_id']}", json={"app_type": "spa"})
        assert_api_error(moved, 400, "client_credentials", "invalid_body")
