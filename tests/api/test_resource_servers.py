"""/api/v2/resource-servers end to end: the APIs tokens are issued for."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.helpers import JSON, MAX_BODY, assert_api_error, moment
from tests.conftest import Server, create_machine, unique


def new_identifier() -> str:
    return f"https://{unique('api')}.example.com/v1/"


def create_api(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post(
        "/resource-servers",
        json={"name": unique("api"), "identifier": new_identifier(), **fields},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def api_total(api: httpx.Client) -> int:
    response = api.get("/resource-servers", params={"include_totals": "true", "per_page": 1})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def all_apis(api: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 0
    while True:
        response = api.get("/resource-servers", params={"page": page, "per_page": 100})
        assert response.status_code == 200, response.text
        items += response.json()
        if len(response.json()) < 100:
            return items
        page += 1


def system_api(api: httpx.Client) -> dict[str, Any]:
    [found] = [server for server in all_apis(api) if server["is_system"]]
    return found


def id_of(api: httpx.Client, identifier: str) -> str:
    """The id of the API with ``identifier``, found by listing (not by the identifier route)."""
    [found] = [server for server in all_apis(api) if server["identifier"] == identifier]
    return str(found["id"])


def encoded(identifier: str) -> str:
    return quote(identifier, safe="")


# --- create ------------------------------------------------------------------


def test_create_returns_201_with_scopes(server: Server) -> None:
    name, identifier = unique("Orders API"), new_identifier()
    scopes = [
        {"value": "read:orders", "description": "Read orders"},
        {"value": "write:orders", "description": "Write orders"},
    ]
    with server.api() as api:
        response = api.post(
            "/resource-servers",
            json={"name": name, "identifier": identifier, "scopes": scopes, "token_lifetime": 600},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == name
    assert body["identifier"] == identifier
    assert body["scopes"] == scopes
    assert body["token_lifetime"] == 600
    assert body["is_system"] is False
    assert body["id"]
    assert body["created_at"] == body["updated_at"]


def test_create_applies_defaults(server: Server) -> None:
    with server.api() as api:
        body = create_api(api, scopes=[{"value": "read:x"}])
    assert body["scopes"] == [{"value": "read:x", "description": ""}]
    assert body["token_lifetime"] is None
    assert body["is_system"] is False


def test_create_without_scopes_has_an_empty_list(server: Server) -> None:
    with server.api() as api:
        assert create_api(api)["scopes"] == []


def test_is_system_cannot_be_set_on_create(server: Server) -> None:
    with server.api() as api:
        before = api_total(api)
        response = api.post(
            "/resource-servers",
            json={"name": unique("api"), "identifier": new_identifier(), "is_system": True},
        )
        assert_api_error(response, 400, "is_system", "invalid_body")
        assert api_total(api) == before


def test_duplicate_identifier_is_409_and_stores_nothing(server: Server) -> None:
    with server.api() as api:
        identifier = create_api(api)["identifier"]
        before = api_total(api)
        response = api.post(
            "/resource-servers", json={"name": unique("again"), "identifier": identifier}
        )
        assert_api_error(response, 409, identifier, "conflict")
        assert api_total(api) == before


def test_identifier_of_the_management_api_is_reserved(server: Server) -> None:
    with server.api() as api:
        response = api.post(
            "/resource-servers",
            json={"name": unique("api"), "identifier": server.management_audience},
        )
    assert_api_error(response, 400, "reserved", "invalid_body")


@pytest.mark.parametrize(
    "identifier",
    [
        # What the management audience would become if the issuer moved on this host.
        "https://127.0.0.1/api/v2/",
        "http://127.0.0.1:1/auth/api/v2/",
        "HTTP://127.0.0.1/x/api/v2/",
        "https://user@127.0.0.1:8443/api/v2/",
    ],
)
def test_management_audiences_of_this_host_are_reserved(server: Server, identifier: str) -> None:
    with server.api() as api:
        before = api_total(api)
        response = api.post(
            "/resource-servers", json={"name": unique("api"), "identifier": identifier}
        )
        assert_api_error(response, 400, "reserved for this server's management API")
        assert api_total(api) == before


@pytest.mark.parametrize(
    "identifier",
    [
        "http://127.0.0.1/api/v2",  # no issuer ends without "/", so no audience does
        "http://127.0.0.1/api/v2/things/",
        "https://{host}.example.com/api/v2/",  # another host: its own business
        "urn:{host}:api/v2/",
    ],
)
def test_other_identifiers_like_the_management_api_are_allowed(
    server: Server, identifier: str
) -> None:
    with server.api() as api:
        response = api.post(
            "/resource-servers",
            json={"name": unique("api"), "identifier": identifier.format(host=unique("h"))},
        )
        assert response.status_code == 201, response.text
        api.delete(f"/resource-servers/{response.json()['id']}")


def test_concurrent_creates_with_one_identifier_give_one_201_and_409s(server: Server) -> None:
    with server.api() as api:
        headers = dict(api.headers)
    rounds: list[list[int]] = []
    for _ in range(2):
        identifier = new_identifier()

        def create(_: int, identifier: str = identifier) -> int:
            return httpx.post(
                server.url + "/api/v2/resource-servers",
                headers=headers,
                json={"name": unique("race"), "identifier": identifier},
            ).status_code

        with ThreadPoolExecutor(16) as pool:
            rounds.append(sorted(pool.map(create, range(16))))
    # Exactly one wins each round; the others are told why, not that the database is down.
    assert rounds == [[201] + [409] * 15] * 2


@pytest.mark.parametrize(
    "identifier",
    ["https://a b.example.com/", "https://x.example.com/\t", " https://x.example.com/", "a\nb"],
    ids=["space", "tab", "leading_space", "newline"],
)
def test_identifier_with_whitespace_is_400(server: Server, identifier: str) -> None:
    with server.api() as api:
        before = api_total(api)
        response = api.post(
            "/resource-servers", json={"name": unique("api"), "identifier": identifier}
        )
        assert_api_error(response, 400, "identifier", "invalid_body")
        assert api_total(api) == before


def test_duplicate_scope_values_are_400_naming_the_scope(server: Server) -> None:
    scopes = [{"value": "read:x"}, {"value": "write:x"}, {"value": "read:x", "description": "2"}]
    with server.api() as api:
        before = api_total(api)
        response = api.post(
            "/resource-servers",
            json={"name": unique("api"), "identifier": new_identifier(), "scopes": scopes},
        )
        assert_api_error(response, 400, "read:x", "invalid_body")
        assert api_total(api) == before


@pytest.mark.parametrize(
    "value",
    ['read:"things"', "read:x admin", "back\\slash", "", "tab\there", "caf\u00e9"],
    ids=["double_quote", "space", "backslash", "empty", "control", "non_ascii"],
)
def test_malformed_scope_value_is_400(server: Server, value: str) -> None:
    # RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). A value with a
    # space would be read back from a token's "scope" claim as several scopes.
    with server.api() as api:
        before = api_total(api)
        response = api.post(
            "/resource-servers",
            json={
                "name": unique("api"),
                "identifier": new_identifier(),
                "scopes": [{"value": value}],
            },
        )
        assert_api_error(response, 400, "scopes", "invalid_body")
        assert api_total(api) == before


def test_every_printable_scope_character_is_accepted(server: Server) -> None:
    value = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
    with server.api() as api:
        assert create_api(api, scopes=[{"value": value}])["scopes"][0]["value"] == value


@pytest.mark.parametrize("lifetime", [59, 2_592_001, 0, -60], ids=["59", "2592001", "0", "neg"])
def test_token_lifetime_out_of_bounds_is_400(server: Server, lifetime: int) -> None:
    with server.api() as api:
        before = api_total(api)
        response = api.post(
            "/resource-servers",
            json={
                "name": unique("api"),
                "identifier": new_identifier(),
                "token_lifetime": lifetime,
            },
        )
        assert_api_error(response, 400, "token_lifetime", "invalid_body")
        assert api_total(api) == before


@pytest.mark.parametrize("lifetime", [60, 2_592_000])
def test_token_lifetime_bounds_are_inclusive(server: Server, lifetime: int) -> None:
    with server.api() as api:
        assert create_api(api, token_lifetime=lifetime)["token_lifetime"] == lifetime


def test_token_lifetime_sets_expires_in_at_the_token_endpoint(server: Server) -> None:
    machine = create_machine(server, token_lifetime=120)
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 120


# --- list and get ------------------------------------------------------------


def test_list_is_a_bare_array_with_totals_on_request(server: Server) -> None:
    with server.api() as api:
        create_api(api)
        bare = api.get("/resource-servers")
        totals = api.get("/resource-servers", params={"include_totals": "true", "per_page": 5})
    assert isinstance(bare.json(), list)
    body = totals.json()
    assert set(body) == {"resource_servers", "start", "limit", "total"}
    assert (body["start"], body["limit"]) == (0, 5)
    assert body["total"] >= 2  # the management API and the one just made


def test_list_includes_a_new_api(server: Server) -> None:
    with server.api() as api:
        created = create_api(api, scopes=[{"value": "a"}])
        listed = {found["id"]: found for found in all_apis(api)}
    assert listed[created["id"]] == created


def test_list_filters_by_identifiers_as_auth0_does(server: Server) -> None:
    with server.api() as api:
        first, second, _ = create_api(api), create_api(api), create_api(api)
        asked = [first["identifier"], second["identifier"], "https://none.example.com/"]
        both = api.get("/resource-servers", params={"identifiers": asked, "include_totals": "true"})
        one = api.get("/resource-servers", params={"identifiers": first["identifier"]})
        none = api.get("/resource-servers", params={"identifiers": "https://none.example.com/"})
        eleven = api.get("/resource-servers", params={"identifiers": [new_identifier()] * 11})
    assert both.status_code == 200, both.text
    assert both.json()["resource_servers"] == [first, second]
    assert both.json()["total"] == 2
    assert one.json() == [first]
    assert none.json() == []
    assert_api_error(eleven, 400, "identifiers", "invalid_query_string")


def test_get_by_id(server: Server) -> None:
    with server.api() as api:
        created = create_api(api, scopes=[{"value": "a", "description": "A"}])
        response = api.get(f"/resource-servers/{created['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == created


def test_get_by_url_encoded_identifier(server: Server) -> None:
    with server.api() as api:
        created = create_api(api)
        response = api.get(f"/resource-servers/{encoded(created['identifier'])}")
    assert response.status_code == 200, response.text
    assert response.json() == created


def test_get_by_identifier_without_slashes(server: Server) -> None:
    identifier = f"urn:{unique('api')}"
    with server.api() as api:
        created = create_api(api, identifier=identifier)
        response = api.get(f"/resource-servers/{encoded(identifier)}")
    assert response.status_code == 200, response.text
    assert response.json() == created


def test_get_unknown_is_404(server: Server) -> None:
    with server.api() as api:
        response = api.get("/resource-servers/doesnotexist")
    assert_api_error(response, 404, "doesnotexist", "inexistent_resource")


# --- patch -------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(server: Server) -> None:
    with server.api() as api:
        created = create_api(api, scopes=[{"value": "a"}], token_lifetime=600)
        response = api.patch(f"/resource-servers/{created['id']}", json={"name": "renamed"})
        fetched = api.get(f"/resource-servers/{created['id']}").json()
    assert response.status_code == 200, response.text
    assert response.json() == fetched
    assert fetched["name"] == "renamed"
    for key in ("id", "identifier", "scopes", "token_lifetime", "is_system", "created_at"):
        assert fetched[key] == created[key]
    assert moment(fetched["updated_at"]) > moment(created["updated_at"])


def test_patch_replaces_the_scopes(server: Server) -> None:
    with server.api() as api:
        created = create_api(api, scopes=[{"value": "a"}, {"value": "b"}])
        response = api.patch(
            f"/resource-servers/{created['id']}",
            json={"scopes": [{"value": "c", "description": "C"}]},
        )
    assert response.status_code == 200, response.text
    assert response.json()["scopes"] == [{"value": "c", "description": "C"}]


def test_patch_with_duplicate_scopes_is_400(server: Server) -> None:
    with server.api() as api:
        created = create_api(api, scopes=[{"value": "a"}])
        response = api.patch(
            f"/resource-servers/{created['id']}",
            json={"scopes": [{"value": "b"}, {"value": "b"}]},
        )
        fetched = api.get(f"/resource-servers/{created['id']}").json()
    assert_api_error(response, 400, "'b'", "invalid_body")
    assert fetched == created


def test_patch_cannot_change_the_identifier(server: Server) -> None:
    with server.api() as api:
        created = create_api(api)
        response = api.patch(
            f"/resource-servers/{created['id']}", json={"identifier": new_identifier()}
        )
        fetched = api.get(f"/resource-servers/{created['id']}").json()
    assert_api_error(response, 400, "identifier", "invalid_body")
    assert fetched == created


def test_patch_can_set_token_lifetime_to_null(server: Server) -> None:
    with server.api() as api:
        created = create_api(api, token_lifetime=600)
        response = api.patch(f"/resource-servers/{created['id']}", json={"token_lifetime": None})
        fetched = api.get(f"/resource-servers/{created['id']}").json()
    assert response.status_code == 200, response.text
    assert fetched["token_lifetime"] is None


def test_patch_can_set_token_lifetime(server: Server) -> None:
    with server.api() as api:
        created = create_api(api)
        response = api.patch(f"/resource-servers/{created['id']}", json={"token_lifetime": 3600})
    assert response.status_code == 200, response.text
    assert response.json()["token_lifetime"] == 3600


@pytest.mark.parametrize("field", ["name", "scopes"])
def test_patch_with_null_for_a_non_nullable_field_is_400(server: Server, field: str) -> None:
    with server.api() as api:
        created = create_api(api, scopes=[{"value": "a"}])
        response = api.patch(f"/resource-servers/{created['id']}", json={field: None})
        fetched = api.get(f"/resource-servers/{created['id']}").json()
    assert_api_error(response, 400, field, "invalid_body")
    assert fetched == created


@pytest.mark.parametrize("lifetime", [59, 2_592_001])
def test_patch_token_lifetime_out_of_bounds_is_400(server: Server, lifetime: int) -> None:
    with server.api() as api:
        created = create_api(api, token_lifetime=600)
        response = api.patch(
            f"/resource-servers/{created['id']}", json={"token_lifetime": lifetime}
        )
        fetched = api.get(f"/resource-servers/{created['id']}").json()
    assert_api_error(response, 400, "token_lifetime", "invalid_body")
    assert fetched["token_lifetime"] == 600


def test_patch_unknown_is_404(server: Server) -> None:
    with server.api() as api:
        response = api.patch("/resource-servers/doesnotexist", json={"name": "x"})
    assert_api_error(response, 404, "doesnotexist", "inexistent_resource")


def test_patched_token_lifetime_applies_to_new_tokens(server: Server) -> None:
    machine = create_machine(server, token_lifetime=600)
    with server.api() as api:
        api_id = id_of(api, machine.audience)
        response = api.patch(f"/resource-servers/{api_id}", json={"token_lifetime": 300})
    assert response.status_code == 200, response.text
    token = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert token.json()["expires_in"] == 300


# --- delete ------------------------------------------------------------------


def test_delete_returns_204_then_the_api_is_gone(server: Server) -> None:
    with server.api() as api:
        created = create_api(api)
        before = api_total(api)
        response = api.delete(f"/resource-servers/{created['id']}")
        after = api.get(f"/resource-servers/{created['id']}")
        assert api_total(api) == before - 1
    assert response.status_code == 204
    assert response.content == b""
    assert_api_error(after, 404, error_code="inexistent_resource")


def test_delete_unknown_is_404(server: Server) -> None:
    with server.api() as api:
        response = api.delete("/resource-servers/doesnotexist")
    assert_api_error(response, 404, "doesnotexist", "inexistent_resource")


def test_deleting_an_api_deletes_its_client_grants(server: Server) -> None:
    machine = create_machine(server)
    with server.api() as api:
        api_id = id_of(api, machine.audience)
        assert api.delete(f"/resource-servers/{api_id}").status_code == 204
        listed = api.get("/client-grants", params={"audience": machine.audience})
        grant = api.get(f"/client-grants/{machine.grant_id}")
        client = api.get(f"/clients/{machine.client_id}")
    assert listed.status_code == 200
    assert listed.json() == []
    assert_api_error(grant, 404, error_code="inexistent_resource")
    assert client.status_code == 200  # the client itself stays


def test_a_recreated_api_does_not_revive_old_grants(server: Server) -> None:
    machine = create_machine(server, scopes=["a"])
    with server.api() as api:
        api_id = id_of(api, machine.audience)
        assert api.delete(f"/resource-servers/{api_id}").status_code == 204
        again = api.post(
            "/resource-servers",
            json={
                "name": unique("api"),
                "identifier": machine.audience,
                "scopes": [{"value": "a"}],
            },
        )
        assert again.status_code == 201, again.text
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


# --- the system management API -----------------------------------------------


def test_the_management_api_is_a_system_api(server: Server) -> None:
    with server.api() as api:
        found = system_api(api)
    assert found["identifier"] == server.management_audience
    values = {scope["value"] for scope in found["scopes"]}
    assert {"read:clients", "update:client_keys", "create:client_grants"} <= values


def test_the_management_api_cannot_be_patched(server: Server) -> None:
    with server.api() as api:
        found = system_api(api)
        response = api.patch(f"/resource-servers/{found['id']}", json={"name": "mine now"})
        after = api.get(f"/resource-servers/{found['id']}").json()
    assert_api_error(response, 400, "system", "operation_not_supported")
    assert after == found


def test_the_management_api_cannot_be_deleted(server: Server) -> None:
    with server.api() as api:
        found = system_api(api)
        response = api.delete(f"/resource-servers/{found['id']}")
        after = api.get(f"/resource-servers/{found['id']}")
    assert_api_error(response, 400, "system", "operation_not_supported")
    assert after.status_code == 200
    assert after.json() == found


# --- bad input: a rejected create stores nothing -----------------------------


def _body(**fields: Any) -> dict[str, Any]:
    return {"name": "api", "identifier": new_identifier(), **fields}


def _raw(text: str) -> dict[str, Any]:
    """A hand-written JSON body (for what a JSON encoder would never produce)."""
    return {"content": text.replace("IDENTIFIER", new_identifier()).encode(), "headers": JSON}


BAD_CREATES = [
    pytest.param({"json": _body(colour="red")}, 400, "colour", id="unknown_field"),
    pytest.param({"json": {"name": "api"}}, 400, "identifier", id="missing_identifier"),
    pytest.param({"json": {"identifier": "https://x/"}}, 400, "name", id="missing_name"),
    pytest.param({"json": _body(name="x" * 256)}, 400, "name", id="name_256_chars"),
    pytest.param(
        {"json": _body(name="<b>API</b>")}, 400, "may not contain < or >", id="name_with_angles"
    ),
    pytest.param({"json": _body(name=7)}, 400, "name", id="name_not_a_string"),
    pytest.param({"json": _body(identifier="")}, 400, "identifier", id="identifier_empty"),
    pytest.param(
        {"json": _body(identifier="https://x/" + "a" * 600)}, 400, "identifier", id="ident_601"
    ),
    pytest.param({"json": _body(scopes="read:x")}, 400, "scopes", id="scopes_not_a_list"),
    pytest.param({"json": _body(scopes=["read:x"])}, 400, "scopes.0", id="scope_not_an_object"),
    pytest.param({"json": _body(scopes=[{}])}, 400, "value", id="scope_without_value"),
    pytest.param(
        {"json": _body(scopes=[{"value": "a", "extra": 1}])}, 400, "extra", id="scope_extra"
    ),
    pytest.param(
        {"json": _body(scopes=[{"value": "a", "description": "d" * 501}])},
        400,
        "description",
        id="scope_description_501",
    ),
    pytest.param(
        {"json": _body(scopes=[{"value": "a" * 281}])}, 400, "value", id="scope_value_281"
    ),
    pytest.param(
        {"json": _body(scopes=[{"value": f"s{i}"} for i in range(1001)])},
        400,
        "scopes",
        id="1001_scopes",
    ),
    pytest.param({"json": _body(token_lifetime="600s")}, 400, "token_lifetime", id="lifetime_str"),
    pytest.param({"json": _body(token_lifetime=600.5)}, 400, "token_lifetime", id="lifetime_frac"),
    pytest.param(_raw('{"name": "a", "identifier": }'), 400, "invalid JSON", id="bad_json"),
    pytest.param(
        _raw('{"name": "a", "identifier": "IDENTIFIER", "identifier": "urn:other"}'),
        400,
        "'identifier' is repeated",
        id="repeated_key",
    ),
    pytest.param(
        _raw('{"name": "a", "identifier": "IDENTIFIER", "scopes": [{"value": "a", "value": "b"}]}'),
        400,
        "'value' is repeated",
        id="repeated_nested_key",
    ),
    pytest.param(
        _raw('{"name": "a", "identifier": "IDENTIFIER", "token_lifetime": 1e999}'),
        400,
        "token_lifetime",
        id="lifetime_infinite",
    ),
    pytest.param(
        {"content": b'{"name": "a", "identifier": "x"}', "headers": {"Content-Type": "text/plain"}},
        415,
        "application/json",
        id="text_plain",
    ),
    pytest.param({"headers": JSON}, 400, "body is required", id="no_body"),
    pytest.param(
        {"json": _body(scopes=[{"value": "a", "description": "d" * MAX_BODY}])},
        413,
        "larger",
        id="over_256_kib",
    ),
]


@pytest.mark.parametrize(("request_args", "status", "mentions"), BAD_CREATES)
def test_rejected_create_is_a_json_4xx_and_stores_nothing(
    server: Server, request_args: dict[str, Any], status: int, mentions: str
) -> None:
    with server.api() as api:
        before = api_total(api)
        response = api.post("/resource-servers", **request_args)
        assert_api_error(response, status, mentions)
        assert api_total(api) == before
