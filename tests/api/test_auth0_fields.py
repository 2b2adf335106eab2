"""Auth0's fields that mean nothing here are accepted and answered back as sent
(docs/management-api.md, "Accepted, no effect"); read-only fields sent back
unchanged are fine, changed they are a 400; fields that would set a secret are
refused; anything else unknown is still an error."""

from __future__ import annotations

import pytest

from authhooks.api.auth0_fields import CLIENT_NO_EFFECT, RESOURCE_SERVER_NO_EFFECT
from tests.api.helpers import assert_api_error, create_client
from tests.conftest import Server, unique

SENT = {"auth0": True, "nested": {"kept": ["as", "sent"]}}
SCRIPT = "def credentials_exchange(client, scope, audience, context):\n    return {}\n"


@pytest.mark.parametrize("field", sorted(CLIENT_NO_EFFECT))
def test_a_clients_auth0_field_is_stored_and_returned(server: Server, field: str) -> None:
    with server.api() as api:
        created = create_client(api, **{field: SENT})
        assert created[field] == SENT
        changed = api.patch(f"/clients/{created['client_id']}", json={field: {"second": 2}})
        assert changed.status_code == 200, changed.text
        assert api.get(f"/clients/{created['client_id']}").json()[field] == {"second": 2}


@pytest.mark.parametrize("field", sorted(RESOURCE_SERVER_NO_EFFECT))
def test_an_apis_auth0_field_is_stored_and_returned(server: Server, field: str) -> None:
    with server.api() as api:
        created = api.post(
            "/resource-servers",
            json={"name": unique("api"), "identifier": f"https://{unique('a')}/", field: SENT},
        )
        assert created.status_code == 201, created.text
        assert api.get(f"/resource-servers/{created.json()['id']}").json()[field] == SENT


def test_read_only_fields_sent_back_unchanged_are_fine(server: Server) -> None:
    with server.api() as api:
        created = create_client(api, oidc_conformant=True)
        read = api.get(f"/clients/{created['client_id']}").json()
        assert api.patch(f"/clients/{created['client_id']}", json=read).status_code == 200
        # Timestamps are the server's to keep: sent back from an older read, they are
        # ignored; the id is not.
        older = api.patch(
            f"/clients/{created['client_id']}", json={"created_at": "2001-01-01T00:00:00Z"}
        )
        assert older.status_code == 200, older.text
        assert older.json()["created_at"] == read["created_at"]
        moved = api.patch(f"/clients/{created['client_id']}", json={"client_id": "another"})
        assert_api_error(moved, 400, "client_id: read-only")
        secret = api.patch(f"/clients/{created['client_id']}", json={"client_secret": "x"})
        assert_api_error(secret, 400, "rotate-secret")
        unknown = api.patch(f"/clients/{created['client_id']}", json={"no_such_field": 1})
        assert_api_error(unknown, 400, "no_such_field")
        # The system API (the management API) takes back what it answers, unchanged.
        system = next(
            each
            for each in api.get("/resource-servers", params={"per_page": 100}).json()
            if each["is_system"]
        )
        same = api.patch(f"/resource-servers/{system['id']}", json=system)
        assert same.status_code == 200, same.text
        renamed = api.patch(f"/resource-servers/{system['id']}", json={"name": "mine"})
        assert_api_error(renamed, 400, "system resource server")
        hook = api.post(
            "/hooks",
            json={
                "name": unique("hook"),
                "triggerId": "credentials-exchange",
                "script": "def credentials_exchange(client, scope, audience, context):\n"
                "    return {}\n",
            },
        ).json()
        assert api.patch(f"/hooks/{hook['id']}", json=hook).status_code == 200
        moved_hook = api.patch(f"/hooks/{hook['id']}", json={"triggerId": "post-login"})
        assert_api_error(moved_hook, 400, "triggerId: read-only")


def test_unsupported_search_is_refused_not_answered_empty(server: Server) -> None:
    with server.api() as api:
        refused = api.get("/users", params={"q": "last_ip:203.0.113.1", "search_engine": "v3"})
        assert_api_error(refused, 400, "cannot search by 'last_ip'")
        old_engine = api.get("/users", params={"q": "email:a@example.com", "search_engine": "v2"})
        assert_api_error(old_engine, 400, "use v3")
        assert api.get("/users", params={"q": "example.com"}).status_code == 200


def test_connections_filter_by_any_of_the_strategies_named(server: Server) -> None:
    with server.api() as api:
        both = api.get("/connections", params={"strategy": ["auth0", "google-oauth2"]})
        reversed_ = api.get("/connections", params={"strategy": ["google-oauth2", "auth0"]})
        other = api.get("/connections", params={"strategy": "google-oauth2"})
        named = api.get("/connections", params={"name": "Username-Password-Authentication"})
    assert [each["name"] for each in both.json()] == ["Username-Password-Authentication"]
    assert reversed_.json() == both.json() == named.json()
    assert other.json() == []


def test_settings_the_servers_configuration_holds_take_only_what_they_answer(
    server: Server,
) -> None:
    with server.api() as api:
        settings = api.get("/tenants/settings").json()
        assert api.patch("/tenants/settings", json=settings).status_code == 200
        changed = api.patch("/tenants/settings", json={"friendly_name": "mine"})
        assert_api_error(changed, 400, "friendly_name")
        connection = api.get("/connections/con_default").json()
        assert api.patch(
            "/connections/con_default", json={"options": connection["options"]}
        ).is_success
        refused = api.patch("/connections/con_default", json={"options": {"disable_signup": True}})
        assert_api_error(refused, 400, "disable_signup")
        assert api.put("/guardian/policies", json=[]).json() == []
        mfa = api.put("/guardian/policies", json=["all-applications"])
        assert_api_error(mfa, 403, "multi-factor")


def test_users_phone_verified_is_stored_and_returned(server: Server) -> None:
    with server.api() as api:
        created = api.post(
            "/users",
            json={
                "email": f"{unique('pv')}@example.com",
                "password": "Correct-Horse-42",
                "phone_number": "+14155550100",
                "phone_verified": True,
            },
        )
        assert created.status_code == 201, created.text
        user_path = "/users/" + created.json()["user_id"].replace("|", "%7C")
        assert api.get(user_path).json()["phone_verified"] is True
        # Request flags of no effect here are accepted with the rest of a change.
        changed = api.patch(
            user_path,
            json={
                "phone_verified": False,
                "verify_phone_number": True,
                "verify_password": False,
                "client_id": "any",
            },
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["phone_verified"] is False


@pytest.mark.parametrize(
    ("path", "items"),
    [("/clients", "clients"), ("/hooks", "hooks"), ("/connections", "connections")],
)
def test_fields_select_what_lists_show(server: Server, path: str, items: str) -> None:
    with server.api() as api:
        create_client(api)
        hook = {"name": unique("fields"), "triggerId": "credentials-exchange", "script": SCRIPT}
        assert api.post("/hooks", json=hook).status_code == 201
        every = api.get(path, params={"include_totals": "true"}).json()
        assert every[items]
        chosen = api.get(path, params={"fields": "name", "include_totals": "true"}).json()
        left_out = api.get(path, params={"fields": "name", "include_fields": "false"}).json()
    assert every["total"] == chosen["total"]
    assert chosen[items] == [{"name": item["name"]} for item in every[items]]
    assert left_out == [{k: v for k, v in item.items() if k != "name"} for item in every[items]]


def test_fields_select_what_one_resource_shows(server: Server) -> None:
    with server.api() as api:
        client = create_client(api)
        one = api.get(
            f"/clients/{client['client_id']}", params={"fields": "client_id,name,no_such_field"}
        )
        assert one.json() == {"client_id": client["client_id"], "name": client["name"]}
        settings = api.get("/tenants/settings", params={"fields": "friendly_name"}).json()
        assert settings == {"friendly_name": "authhooks"}
        connection = api.get(
            "/connections/con_default", params={"fields": "options", "include_fields": "false"}
        ).json()
        assert "options" not in connection
        assert connection["name"] == "Username-Password-Authentication"
        assert_api_error(api.get("/clients", params={"fields": ","}), 400, "comma-separated")


def test_clients_search_by_organization_grant_finds_none(server: Server) -> None:
    with server.api() as api:
        create_client(api)
        for q in (
            "client_grant.organization_id:org_123",
            "client_grant.allow_any_organization:true",
        ):
            found = api.get("/clients", params={"q": q, "include_totals": "true"})
            assert found.status_code == 200, found.text
            assert (found.json()["clients"], found.json()["total"]) == ([], 0)
        assert_api_error(api.get("/clients", params={"q": "name:web*"}), 400, "no organizations")
