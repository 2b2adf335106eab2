"""/api/v2/clients end to end: create, list, get, patch, delete, rotate-secret, bad input."""

from __future__ import annotations

import string
from typing import Any

import httpx
import pytest

from tests.api.helpers import JSON, MAX_BODY, assert_api_error, create_client, moment
from tests.conftest import Server, create_machine, unique


def client_total(api: httpx.Client) -> int:
    response = api.get("/clients", params={"include_totals": "true", "per_page": 1})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def all_clients(api: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 0
    while True:
        response = api.get("/clients", params={"page": page, "per_page": 100})
        assert response.status_code == 200, response.text
        items += response.json()
        if len(response.json()) < 100:
            return items
        page += 1


# --- create ------------------------------------------------------------------


def test_create_returns_201_with_a_secret(server: Server) -> None:
    name = unique("client")
    with server.api() as api:
        response = api.post("/clients", json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == name
    assert len(body["client_id"]) == 32
    assert set(body["client_id"]) <= set(string.ascii_letters + string.digits)
    assert len(body["client_secret"]) >= 32
    assert body["created_at"] == body["updated_at"]


def test_create_applies_defaults(server: Server) -> None:
    with server.api() as api:
        body = create_client(api)
    assert body["app_type"] == "non_interactive"
    assert body["grant_types"] == ["client_credentials"]
    assert body["description"] == ""
    assert body["client_metadata"] == {}


def test_create_stores_every_given_field(server: Server) -> None:
    fields = {
        "name": unique("web app"),
        "description": "Handles orders",
        "app_type": "regular_web",
        "grant_types": ["client_credentials"],
        "client_metadata": {"team": "billing", "tier": "gold"},
    }
    with server.api() as api:
        created = create_client(api, **fields)
        fetched = api.get(f"/clients/{created['client_id']}").json()
    for key, value in fields.items():
        assert created[key] == value
        assert fetched[key] == value


def test_create_removes_repeated_grant_types(server: Server) -> None:
    with server.api() as api:
        body = create_client(api, grant_types=["client_credentials", "client_credentials"])
    assert body["grant_types"] == ["client_credentials"]


def test_each_client_gets_its_own_id_and_secret(server: Server) -> None:
    with server.api() as api:
        first, second = create_client(api), create_client(api)
    assert first["client_id"] != second["client_id"]
    assert first["client_secret"] != second["client_secret"]


def test_created_secret_authenticates_at_the_token_endpoint(server: Server) -> None:
    machine = create_machine(server)
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 200, response.text


def test_name_of_255_characters_is_accepted(server: Server) -> None:
    name = unique("n").ljust(255, "x")
    with server.api() as api:
        assert create_client(api, name=name)["name"] == name


# --- the secret is shown once ------------------------------------------------


def test_get_does_not_return_the_secret(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        body = api.get(f"/clients/{client_id}").json()
    assert body["client_id"] == client_id
    assert "client_secret" not in body


def test_list_does_not_return_secrets(server: Server) -> None:
    with server.api() as api:
        created = create_client(api)
        listed = all_clients(api)
    assert any(client["client_id"] == created["client_id"] for client in listed)
    assert all("client_secret" not in client for client in listed)
    assert created["client_secret"] not in str(listed)


def test_patch_does_not_return_the_secret(server: Server) -> None:
    with server.api() as api:
        created = create_client(api)
        response = api.patch(f"/clients/{created['client_id']}", json={"description": "x"})
    assert response.status_code == 200, response.text
    assert "client_secret" not in response.json()
    assert created["client_secret"] not in response.text


# --- list --------------------------------------------------------------------


def test_list_is_a_bare_array(server: Server) -> None:
    with server.api() as api:
        create_client(api)
        response = api.get("/clients")
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)
    assert 1 <= len(response.json()) <= 50


def test_list_with_totals_has_auth0_shape(server: Server) -> None:
    with server.api() as api:
        create_client(api)
        response = api.get("/clients", params={"include_totals": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"clients", "start", "limit", "total"}
    assert body["start"] == 0
    assert body["limit"] == 50
    assert body["total"] >= len(body["clients"]) >= 1


def test_list_includes_a_new_client_with_its_fields(server: Server) -> None:
    with server.api() as api:
        created = create_client(api, description="listed")
        listed = {client["client_id"]: client for client in all_clients(api)}
    expected = {key: value for key, value in created.items() if key != "client_secret"}
    assert listed[created["client_id"]] == expected


def test_pages_split_the_list_without_overlap(server: Server) -> None:
    with server.api() as api:
        for _ in range(4):
            create_client(api)
        four = api.get("/clients", params={"per_page": 4}).json()
        first = api.get("/clients", params={"per_page": 2, "page": 0}).json()
        second = api.get("/clients", params={"per_page": 2, "page": 1}).json()
    assert len(four) == 4
    assert first + second == four


def test_totals_report_start_and_limit_of_the_page(server: Server) -> None:
    with server.api() as api:
        for _ in range(3):
            create_client(api)
        body = api.get(
            "/clients", params={"per_page": 2, "page": 1, "include_totals": "true"}
        ).json()
    assert body["start"] == 2
    assert body["limit"] == 2
    assert len(body["clients"]) == 2
    assert body["total"] >= 4


def test_page_past_the_end_is_empty(server: Server) -> None:
    with server.api() as api:
        total = client_total(api)
        response = api.get("/clients", params={"per_page": 100, "page": total // 100 + 1})
    assert response.status_code == 200
    assert response.json() == []


def filtered(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 0
    while True:
        response = api.get("/clients", params={**params, "page": page, "per_page": 100})
        assert response.status_code == 200, response.text
        items += response.json()
        if len(response.json()) < 100:
            return items
        page += 1


def test_list_filters_by_app_type_and_first_party_as_auth0_does(server: Server) -> None:
    with server.api() as api:
        spa = create_client(api, app_type="spa")
        native = create_client(api, app_type="native", is_first_party=False)
        machine = create_client(api)
        spas = filtered(api, app_type="spa")
        browser_apps = filtered(api, app_type="spa,native")
        third_party = filtered(api, is_first_party="false")
        none = filtered(api, app_type="sso_integration")
        natives = filtered(api, app_type="native")
        counted = api.get("/clients", params={"app_type": "native", "include_totals": "true"})
    assert {client["app_type"] for client in spas} == {"spa"}
    assert spa["client_id"] in [client["client_id"] for client in spas]
    ids = [client["client_id"] for client in browser_apps]
    assert spa["client_id"] in ids
    assert native["client_id"] in ids
    assert machine["client_id"] not in ids
    assert [client["client_id"] for client in third_party if not client["is_first_party"]] == [
        client["client_id"] for client in third_party
    ]
    assert native["client_id"] in [client["client_id"] for client in third_party]
    assert none == []
    assert counted.json()["total"] == len(natives)  # the total counts the filtered clients


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"per_page": "ten"}, "per_page"),
        ({"page": -1}, "page"),
        ({"include_totals": "maybe"}, "include_totals"),
        ({"is_first_party": "maybe"}, "is_first_party"),
    ],
    ids=[
        "per_page_0",
        "per_page_101",
        "per_page_text",
        "page_negative",
        "include_totals_text",
        "is_first_party_text",
    ],
)
def test_bad_pagination_is_400(server: Server, params: dict[str, Any], names: str) -> None:
    with server.api() as api:
        response = api.get("/clients", params=params)
    assert_api_error(response, 400, names, "invalid_query_string")


# --- get ---------------------------------------------------------------------


def test_get_returns_the_client(server: Server) -> None:
    with server.api() as api:
        created = create_client(api, description="fetch me")
        response = api.get(f"/clients/{created['client_id']}")
    assert response.status_code == 200, response.text
    assert response.json() == {k: v for k, v in created.items() if k != "client_secret"}


def test_get_unknown_client_is_404(server: Server) -> None:
    with server.api() as api:
        response = api.get("/clients/doesnotexist")
    assert_api_error(response, 404, "doesnotexist", "inexistent_resource")


def test_get_with_a_nul_character_in_the_id_is_400(server: Server) -> None:
    # PostgreSQL cannot compare text with NUL: the lookup must not reach it as an error.
    with server.api() as api:
        response = api.get("/clients/a%00b")
    assert_api_error(response, 400, "NUL", error_code="invalid_request")


# --- patch -------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(server: Server) -> None:
    with server.api() as api:
        created = create_client(
            api, description="before", app_type="spa", client_metadata={"k": "v"}
        )
        response = api.patch(f"/clients/{created['client_id']}", json={"name": "renamed"})
        fetched = api.get(f"/clients/{created['client_id']}").json()
    assert response.status_code == 200, response.text
    assert response.json() == fetched
    assert fetched["name"] == "renamed"
    for key in ("client_id", "description", "app_type", "grant_types", "client_metadata"):
        assert fetched[key] == created[key]


def test_patch_sets_every_updatable_field(server: Server) -> None:
    changes = {
        "name": unique("new"),
        "description": "after",
        "app_type": "native",
        "grant_types": [],
        "client_metadata": {"a": "1"},
    }
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        assert api.patch(f"/clients/{client_id}", json=changes).status_code == 200
        fetched = api.get(f"/clients/{client_id}").json()
    for key, value in changes.items():
        assert fetched[key] == value


def test_patch_moves_updated_at_but_not_created_at(server: Server) -> None:
    with server.api() as api:
        created = create_client(api)
        patched = api.patch(f"/clients/{created['client_id']}", json={"description": "x"}).json()
    assert patched["created_at"] == created["created_at"]
    assert moment(patched["updated_at"]) > moment(created["updated_at"])


def test_empty_patch_changes_nothing_but_updated_at(server: Server) -> None:
    with server.api() as api:
        created = create_client(api)
        response = api.patch(f"/clients/{created['client_id']}", json={})
    assert response.status_code == 200, response.text
    for key in ("name", "description", "app_type", "grant_types", "client_metadata"):
        assert response.json()[key] == created[key]


@pytest.mark.parametrize(
    "field", ["name", "description", "app_type", "grant_types", "client_metadata"]
)
def test_patch_with_null_for_a_non_nullable_field_is_400(server: Server, field: str) -> None:
    with server.api() as api:
        created = create_client(api)
        response = api.patch(f"/clients/{created['client_id']}", json={field: None})
        fetched = api.get(f"/clients/{created['client_id']}").json()
    assert_api_error(response, 400, field, "invalid_body")
    assert fetched["updated_at"] == created["updated_at"]
    assert fetched[field] == created[field]


# (created_at sent back from an older read is ignored: test_auth0_fields.py.)
@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_patch_of_a_read_only_field_is_400_naming_it(server: Server, field: str) -> None:
    with server.api() as api:
        created = create_client(api)
        response = api.patch(f"/clients/{created['client_id']}", json={field: "x"})
        fetched = api.get(f"/clients/{created['client_id']}").json()
    assert_api_error(response, 400, field, "invalid_body")
    assert fetched["updated_at"] == created["updated_at"]


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"name": "<script>"}, "name: Value error, may not contain < or >"),
        ({"name": "x" * 256}, "name"),
        ({"name": ""}, "name"),
        ({"app_type": "robot"}, "app_type"),
        ({"grant_types": ["implicit"]}, "implicit"),
        ({"description": "x" * 141}, "description"),
    ],
    ids=["angle_brackets", "name_too_long", "name_empty", "app_type", "grant_type", "description"],
)
def test_patch_with_an_invalid_value_is_400_and_changes_nothing(
    server: Server, changes: dict[str, Any], mentions: str
) -> None:
    with server.api() as api:
        created = create_client(api)
        response = api.patch(f"/clients/{created['client_id']}", json=changes)
        fetched = api.get(f"/clients/{created['client_id']}").json()
    assert_api_error(response, 400, mentions, "invalid_body")
    assert fetched == {k: v for k, v in created.items() if k != "client_secret"}


def test_patch_unknown_client_is_404(server: Server) -> None:
    with server.api() as api:
        response = api.patch("/clients/doesnotexist", json={"name": "x"})
    assert_api_error(response, 404, "doesnotexist", "inexistent_resource")


def test_patch_without_a_body_is_400(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        response = api.patch(f"/clients/{client_id}", headers=JSON)
    assert_api_error(response, 400, "body", "invalid_body")


# --- delete ------------------------------------------------------------------


def test_delete_returns_204_then_the_client_is_gone(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        response = api.delete(f"/clients/{client_id}")
        after = api.get(f"/clients/{client_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert_api_error(after, 404, client_id, "inexistent_resource")


def test_delete_unknown_client_is_404(server: Server) -> None:
    with server.api() as api:
        response = api.delete("/clients/doesnotexist")
    assert_api_error(response, 404, "doesnotexist", "inexistent_resource")


def test_delete_lowers_the_total(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        before = client_total(api)
        assert api.delete(f"/clients/{client_id}").status_code == 204
        assert client_total(api) == before - 1


def test_deleting_a_client_deletes_its_grants(server: Server) -> None:
    machine = create_machine(server)
    with server.api() as api:
        assert api.delete(f"/clients/{machine.client_id}").status_code == 204
        listed = api.get("/client-grants", params={"client_id": machine.client_id})
        grant = api.get(f"/client-grants/{machine.grant_id}")
    assert listed.status_code == 200
    assert listed.json() == []
    assert_api_error(grant, 404, error_code="inexistent_resource")


def test_deleted_client_cannot_get_tokens(server: Server) -> None:
    machine = create_machine(server)
    with server.api() as api:
        assert api.delete(f"/clients/{machine.client_id}").status_code == 204
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# --- rotate-secret -----------------------------------------------------------


def test_rotate_secret_returns_a_new_secret_that_works(server: Server) -> None:
    machine = create_machine(server)
    with server.api() as api:
        response = api.post(f"/clients/{machine.client_id}/rotate-secret")
    assert response.status_code == 200, response.text
    secret = response.json()["client_secret"]
    assert secret != machine.client_secret
    token = server.token(machine.client_id, secret, audience=machine.audience)
    assert token.status_code == 200, token.text


def test_rotate_secret_makes_the_old_secret_invalid_client(server: Server) -> None:
    machine = create_machine(server)
    with server.api() as api:
        assert api.post(f"/clients/{machine.client_id}/rotate-secret").status_code == 200
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_rotate_secret_keeps_the_other_fields_and_moves_updated_at(server: Server) -> None:
    with server.api() as api:
        created = create_client(api, description="keep me")
        rotated = api.post(f"/clients/{created['client_id']}/rotate-secret").json()
        fetched = api.get(f"/clients/{created['client_id']}").json()
    for key in ("client_id", "name", "description", "app_type", "grant_types", "created_at"):
        assert rotated[key] == created[key]
    assert moment(rotated["updated_at"]) > moment(created["updated_at"])
    assert "client_secret" not in fetched


def test_rotate_secret_needs_update_client_keys_scope(server: Server) -> None:
    machine = create_machine(server)
    with server.api("update:clients") as api:
        response = api.post(f"/clients/{machine.client_id}/rotate-secret")
    assert_api_error(response, 403, "update:client_keys", "insufficient_scope")
    still = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert still.status_code == 200, still.text


def test_rotate_secret_with_update_client_keys_scope_alone_works(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
    with server.api("update:client_keys") as api:
        response = api.post(f"/clients/{client_id}/rotate-secret")
    assert response.status_code == 200, response.text


def test_rotate_secret_of_unknown_client_is_404(server: Server) -> None:
    with server.api() as api:
        response = api.post("/clients/doesnotexist/rotate-secret")
    assert_api_error(response, 404, "doesnotexist", "inexistent_resource")


# --- bad input: a rejected create stores nothing -----------------------------


BAD_CREATES = [
    pytest.param({"json": {"name": "a", "colour": "red"}}, 400, "colour", id="unknown_field"),
    pytest.param({"json": {}}, 400, "name", id="missing_name"),
    pytest.param({"json": {"name": 123}}, 400, "name", id="name_not_a_string"),
    pytest.param({"json": {"name": None}}, 400, "name", id="name_null"),
    pytest.param({"json": {"name": ""}}, 400, "name", id="name_empty"),
    pytest.param({"json": {"name": "x" * 256}}, 400, "name", id="name_256_chars"),
    pytest.param({"json": {"name": "a<b"}}, 400, "name", id="name_with_lt"),
    pytest.param({"json": {"name": "a>b"}}, 400, "name", id="name_with_gt"),
    pytest.param({"json": {"name": "a", "description": "x" * 141}}, 400, "description", id="desc"),
    pytest.param({"json": {"name": "a", "app_type": "robot"}}, 400, "app_type", id="app_type"),
    pytest.param(
        {"json": {"name": "a", "grant_types": "client_credentials"}},
        400,
        "grant_types",
        id="grant_types_not_a_list",
    ),
    pytest.param(
        {"json": {"name": "a", "grant_types": ["implicit"]}}, 400, "implicit", id="grant_type"
    ),
    pytest.param(
        {"json": {"name": "a", "client_metadata": {"k": 1}}},
        400,
        "client_metadata",
        id="metadata_value_not_a_string",
    ),
    pytest.param(
        {"json": {"name": "a", "client_metadata": {f"k{i}": "v" for i in range(11)}}},
        400,
        "client_metadata",
        id="metadata_11_keys",
    ),
    pytest.param(
        {"json": {"name": "a", "client_metadata": {"": "v"}}},
        400,
        "client_metadata",
        id="metadata_empty_key",
    ),
    pytest.param(
        {"json": {"name": "a", "client_metadata": {"k": "v" * 256}}},
        400,
        "client_metadata",
        id="metadata_value_too_long",
    ),
    pytest.param({"json": ["name"]}, 400, "", id="array_body"),
    pytest.param({"json": "name"}, 400, "", id="string_body"),
    pytest.param({"content": b'{"name": "a",}', "headers": JSON}, 400, "invalid JSON", id="json"),
    pytest.param(
        {"content": b'{"name": "a", "name": "b"}', "headers": JSON},
        400,
        "'name' is repeated",
        id="repeated_key",
    ),
    pytest.param(
        {"content": b'{"name": "a", "x": NaN}', "headers": JSON}, 400, "NaN", id="nan_constant"
    ),
    pytest.param(
        {"content": b'{"name": "\xff"}', "headers": JSON}, 400, "invalid JSON", id="not_utf8"
    ),
    pytest.param(
        {"content": b'{"name": "a"}', "headers": {"Content-Type": "text/plain"}},
        415,
        "application/json",
        id="text_plain",
    ),
    pytest.param(
        {"content": b"name=a", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "application/json",
        id="form_encoded",
    ),
    pytest.param({"content": b'{"name": "a"}'}, 415, "application/json", id="no_content_type"),
    pytest.param({"headers": JSON}, 400, "body is required", id="no_body"),
    pytest.param(
        {"json": {"name": "a", "description": "x" * MAX_BODY}}, 413, "larger", id="over_256_kib"
    ),
]


@pytest.mark.parametrize(("request_args", "status", "mentions"), BAD_CREATES)
def test_rejected_create_is_a_json_4xx_and_stores_nothing(
    server: Server, request_args: dict[str, Any], status: int, mentions: str
) -> None:
    with server.api() as api:
        before = client_total(api)
        response = api.post("/clients", **request_args)
        assert_api_error(response, status, mentions)
        assert client_total(api) == before


def test_body_of_exactly_256_kib_is_not_too_large(server: Server) -> None:
    # The limit is inclusive: padding with spaces keeps the JSON valid.
    body = b'{"name": "%s"}' % unique("edge").encode()
    with server.api() as api:
        response = api.post("/clients", content=body.ljust(MAX_BODY, b" "), headers=JSON)
    assert response.status_code == 201, response.text


def test_deeply_nested_json_is_400_not_500(server: Server) -> None:
    body = b'{"name": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with server.api() as api:
        before = client_total(api)
    with server.api() as api:
        response = api.post("/clients", content=body, headers=JSON)
    assert_api_error(response, 400, "invalid JSON", "invalid_body")
    with server.api() as api:
        assert client_total(api) == before


def test_name_with_a_nul_character_is_400_on_every_database(server: Server) -> None:
    with server.api() as api:
        response = api.post("/clients", json={"name": unique("nul") + "\x00"})
        metadata = api.post(
            "/clients", json={"name": unique("nul"), "client_metadata": {"k": "a\x00"}}
        )
    assert_api_error(response, 400, "name holds a NUL", "invalid_body")
    assert_api_error(metadata, 400, "client_metadata.k holds a NUL", "invalid_body")
