"""/api/v2/client-grants end to end: which client may get which scopes for which API."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.api.helpers import JSON, assert_api_error, create_client, moment
from tests.conftest import Server, unique

SCOPES = ["read:things", "write:things", "delete:things"]


def new_audience(api: httpx.Client) -> str:
    """A new API defining SCOPES; returns its identifier."""
    identifier = f"https://{unique('api')}.example.com/"
    response = api.post(
        "/resource-servers",
        json={
            "name": unique("api"),
            "identifier": identifier,
            "scopes": [{"value": value} for value in SCOPES],
        },
    )
    assert response.status_code == 201, response.text
    return identifier


def grant(api: httpx.Client, client_id: str, audience: str, scope: list[str]) -> dict[str, Any]:
    response = api.post(
        "/client-grants", json={"client_id": client_id, "audience": audience, "scope": scope}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def grant_total(api: httpx.Client) -> int:
    response = api.get("/client-grants", params={"include_totals": "true", "per_page": 1})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def grants_for(api: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    response = api.get("/client-grants", params={**filters, "per_page": 100})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


# --- create ------------------------------------------------------------------


def test_create_returns_201_with_the_grant(server: Server) -> None:
    with server.api() as api:
        client_id, audience = create_client(api)["client_id"], new_audience(api)
        response = api.post(
            "/client-grants",
            json={"client_id": client_id, "audience": audience, "scope": ["read:things"]},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("cgr_")
    assert body["client_id"] == client_id
    assert body["audience"] == audience
    assert body["scope"] == ["read:things"]
    assert body["created_at"] == body["updated_at"]


def test_created_grant_can_be_fetched(server: Server) -> None:
    with server.api() as api:
        created = grant(api, create_client(api)["client_id"], new_audience(api), SCOPES)
        response = api.get(f"/client-grants/{created['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == created


def test_created_grant_lets_the_client_get_a_token(server: Server) -> None:
    with server.api() as api:
        client, audience = create_client(api), new_audience(api)
        grant(api, client["client_id"], audience, ["write:things"])
    response = server.token(client["client_id"], client["client_secret"], audience=audience)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "write:things"


def test_create_removes_repeated_scopes(server: Server) -> None:
    with server.api() as api:
        created = grant(
            api,
            create_client(api)["client_id"],
            new_audience(api),
            ["write:things", "read:things", "write:things"],
        )
    assert created["scope"] == ["write:things", "read:things"]


def test_create_with_no_scopes_is_allowed(server: Server) -> None:
    with server.api() as api:
        created = grant(api, create_client(api)["client_id"], new_audience(api), [])
    assert created["scope"] == []


def test_unknown_client_is_404_and_stores_nothing(server: Server) -> None:
    with server.api() as api:
        audience = new_audience(api)
        before = grant_total(api)
        response = api.post(
            "/client-grants",
            json={"client_id": "doesnotexist", "audience": audience, "scope": []},
        )
        assert_api_error(response, 404, "doesnotexist", "inexistent_resource")
        assert grant_total(api) == before


def test_unknown_audience_is_404_and_stores_nothing(server: Server) -> None:
    audience = f"https://{unique('nowhere')}.example.com/"
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        before = grant_total(api)
        response = api.post(
            "/client-grants", json={"client_id": client_id, "audience": audience, "scope": []}
        )
        assert_api_error(response, 404, audience, "inexistent_resource")
        assert grant_total(api) == before


def test_scope_not_defined_by_the_api_is_400_naming_it(server: Server) -> None:
    with server.api() as api:
        client_id, audience = create_client(api)["client_id"], new_audience(api)
        before = grant_total(api)
        response = api.post(
            "/client-grants",
            json={"client_id": client_id, "audience": audience, "scope": ["read:things", "fly"]},
        )
        body = assert_api_error(response, 400, "fly", "invalid_body")
        assert "read:things" not in body["message"]
        assert grant_total(api) == before


def test_duplicate_grant_for_the_same_client_and_api_is_409(server: Server) -> None:
    with server.api() as api:
        client_id, audience = create_client(api)["client_id"], new_audience(api)
        first = grant(api, client_id, audience, ["read:things"])
        before = grant_total(api)
        response = api.post(
            "/client-grants",
            json={"client_id": client_id, "audience": audience, "scope": ["write:things"]},
        )
        assert_api_error(response, 409, client_id, "conflict")
        assert grant_total(api) == before
        assert grants_for(api, client_id=client_id) == [first]


def test_concurrent_duplicate_grants_give_one_201_and_409s(server: Server) -> None:
    with server.api() as api:
        headers = dict(api.headers)
        pairs = [(create_client(api)["client_id"], new_audience(api)) for _ in range(2)]
    rounds: list[list[int]] = []
    for client_id, audience in pairs:

        def create(_: int, client_id: str = client_id, audience: str = audience) -> int:
            return httpx.post(
                server.url + "/api/v2/client-grants",
                headers=headers,
                json={"client_id": client_id, "audience": audience, "scope": ["read:things"]},
            ).status_code

        with ThreadPoolExecutor(16) as pool:
            rounds.append(sorted(pool.map(create, range(16))))
    # Exactly one wins each round; the others are told why, not that the database is down.
    assert rounds == [[201] + [409] * 15] * 2


def test_one_client_may_have_grants_for_several_apis(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        first = grant(api, client_id, new_audience(api), ["read:things"])
        second = grant(api, client_id, new_audience(api), ["write:things"])
    assert first["id"] != second["id"]


# --- list --------------------------------------------------------------------


def test_list_filtered_by_client_id(server: Server) -> None:
    with server.api() as api:
        client_id, other = create_client(api)["client_id"], create_client(api)["client_id"]
        audiences = [new_audience(api), new_audience(api)]
        mine = [grant(api, client_id, audience, ["read:things"]) for audience in audiences]
        grant(api, other, audiences[0], ["read:things"])
        found = grants_for(api, client_id=client_id)
    assert sorted(found, key=lambda g: g["id"]) == sorted(mine, key=lambda g: g["id"])


def test_list_filtered_by_audience(server: Server) -> None:
    with server.api() as api:
        audience, other = new_audience(api), new_audience(api)
        clients = [create_client(api)["client_id"], create_client(api)["client_id"]]
        for_audience = [grant(api, client_id, audience, []) for client_id in clients]
        grant(api, clients[0], other, [])
        found = grants_for(api, audience=audience)
    assert sorted(found, key=lambda g: g["id"]) == sorted(for_audience, key=lambda g: g["id"])


def test_list_filtered_by_client_id_and_audience(server: Server) -> None:
    with server.api() as api:
        client_id, other = create_client(api)["client_id"], create_client(api)["client_id"]
        audience, other_audience = new_audience(api), new_audience(api)
        wanted = grant(api, client_id, audience, [])
        grant(api, client_id, other_audience, [])
        grant(api, other, audience, [])
        found = grants_for(api, client_id=client_id, audience=audience)
    assert found == [wanted]


def test_list_filter_matching_nothing_is_empty(server: Server) -> None:
    with server.api() as api:
        assert grants_for(api, client_id=unique("nobody")) == []
        assert grants_for(api, audience=f"https://{unique('nothing')}/") == []


def test_auth0_filters_on_what_authhooks_lacks_match_no_grant(server: Server) -> None:
    # Every grant here is a client's, for no organization, and none is a default.
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        made = grant(api, client_id, new_audience(api), [])
        assert grants_for(api, client_id=client_id, subject_type="client") == [made]
        assert grants_for(api, client_id=client_id, allow_any_organization="false") == [made]
        for params in (
            {"subject_type": "user"},
            {"allow_any_organization": "true"},
            {"default_for": "third_party_clients"},
        ):
            assert grants_for(api, client_id=client_id, **params) == []
            totals = api.get("/client-grants", params={**params, "include_totals": "true"})
            assert totals.json() == {"client_grants": [], "start": 0, "limit": 50, "total": 0}
            checkpoint = api.get("/client-grants", params={**params, "take": 10})
            assert checkpoint.json() == {"client_grants": []}
        bad = api.get("/client-grants", params={"subject_type": "robot"})
    assert_api_error(bad, 400, "subject_type", "invalid_query_string")


def test_list_filter_with_a_nul_character_is_400(server: Server) -> None:
    # PostgreSQL cannot compare text with NUL: the filter must not reach it as an error.
    with server.api() as api:
        response = api.get("/client-grants", params={"audience": "https://a\x00b/"})
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["message"]


def test_list_with_totals_has_auth0_shape(server: Server) -> None:
    with server.api() as api:
        client_id, audience = create_client(api)["client_id"], new_audience(api)
        grant(api, client_id, audience, [])
        response = api.get(
            "/client-grants", params={"client_id": client_id, "include_totals": "true"}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"client_grants", "start", "limit", "total"}
    assert (body["start"], body["limit"], body["total"]) == (0, 50, 1)
    assert len(body["client_grants"]) == 1


def test_filtered_list_pages_and_counts(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        made = [grant(api, client_id, new_audience(api), []) for _ in range(3)]
        pages = [
            api.get(
                "/client-grants",
                params={"client_id": client_id, "per_page": 2, "page": page, "include_totals": 1},
            ).json()
            for page in (0, 1)
        ]
    assert [page["total"] for page in pages] == [3, 3]
    assert [page["start"] for page in pages] == [0, 2]
    listed = pages[0]["client_grants"] + pages[1]["client_grants"]
    assert sorted(g["id"] for g in listed) == sorted(g["id"] for g in made)


@pytest.mark.parametrize("params", [{"per_page": 0}, {"per_page": 101}, {"page": -1}])
def test_bad_pagination_is_400(server: Server, params: dict[str, int]) -> None:
    with server.api() as api:
        response = api.get("/client-grants", params=params)
    assert_api_error(response, 400, next(iter(params)), "invalid_query_string")


# --- get, patch, delete ------------------------------------------------------


def test_patch_replaces_the_scope(server: Server) -> None:
    with server.api() as api:
        created = grant(api, create_client(api)["client_id"], new_audience(api), ["read:things"])
        response = api.patch(
            f"/client-grants/{created['id']}", json={"scope": ["write:things", "delete:things"]}
        )
        fetched = api.get(f"/client-grants/{created['id']}").json()
    assert response.status_code == 200, response.text
    assert response.json() == fetched
    assert fetched["scope"] == ["write:things", "delete:things"]
    for key in ("id", "client_id", "audience", "created_at"):
        assert fetched[key] == created[key]
    assert moment(fetched["updated_at"]) > moment(created["updated_at"])


def test_patched_scope_applies_to_new_tokens(server: Server) -> None:
    with server.api() as api:
        client, audience = create_client(api), new_audience(api)
        created = grant(api, client["client_id"], audience, ["read:things"])
        patched = api.patch(f"/client-grants/{created['id']}", json={"scope": ["write:things"]})
        assert patched.status_code == 200, patched.text
    response = server.token(client["client_id"], client["client_secret"], audience=audience)
    assert response.json()["scope"] == "write:things"


def test_patch_with_a_scope_not_defined_is_400_and_changes_nothing(server: Server) -> None:
    with server.api() as api:
        created = grant(api, create_client(api)["client_id"], new_audience(api), ["read:things"])
        response = api.patch(f"/client-grants/{created['id']}", json={"scope": ["fly"]})
        fetched = api.get(f"/client-grants/{created['id']}").json()
    assert_api_error(response, 400, "fly", "invalid_body")
    assert fetched == created


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"audience": "https://elsewhere/"}, "audience"),
        ({"client_id": "someone"}, "client_id"),
        ({"scope": None}, "scope"),
        ({"scope": "read:things"}, "scope"),
        ({}, "scope"),
    ],
    ids=["audience", "client_id", "null_scope", "scope_string", "empty"],
)
def test_patch_with_a_bad_body_is_400_and_changes_nothing(
    server: Server, changes: dict[str, Any], mentions: str
) -> None:
    with server.api() as api:
        created = grant(api, create_client(api)["client_id"], new_audience(api), ["read:things"])
        response = api.patch(f"/client-grants/{created['id']}", json=changes)
        fetched = api.get(f"/client-grants/{created['id']}").json()
    assert_api_error(response, 400, mentions, "invalid_body")
    assert fetched == created


def test_delete_returns_204_then_the_grant_is_gone(server: Server) -> None:
    with server.api() as api:
        client_id = create_client(api)["client_id"]
        created = grant(api, client_id, new_audience(api), [])
        response = api.delete(f"/client-grants/{created['id']}")
        after = api.get(f"/client-grants/{created['id']}")
        listed = grants_for(api, client_id=client_id)
        client = api.get(f"/clients/{client_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert_api_error(after, 404, created["id"], "inexistent_resource")
    assert listed == []
    assert client.status_code == 200  # the client stays


def test_a_deleted_grant_can_be_created_again(server: Server) -> None:
    with server.api() as api:
        client_id, audience = create_client(api)["client_id"], new_audience(api)
        first = grant(api, client_id, audience, [])
        assert api.delete(f"/client-grants/{first['id']}").status_code == 204
        second = grant(api, client_id, audience, ["read:things"])
    assert second["id"] != first["id"]


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("PATCH", {"scope": []}), ("DELETE", None)],
    ids=["get", "patch", "delete"],
)
def test_unknown_grant_id_is_404(server: Server, method: str, body: dict[str, Any] | None) -> None:
    with server.api() as api:
        response = api.request(method, "/client-grants/cgr_doesnotexist", json=body)
    assert_api_error(response, 404, "cgr_doesnotexist", "inexistent_resource")


# --- bad input: a rejected create stores nothing -----------------------------


BAD_CREATES = [
    pytest.param({"audience": None}, 400, "audience", id="audience_null"),
    pytest.param({"client_id": 42}, 400, "client_id", id="client_id_not_a_string"),
    pytest.param({"client_id": ""}, 400, "client_id", id="client_id_empty"),
    pytest.param({"scope": "read:things"}, 400, "scope", id="scope_not_a_list"),
    pytest.param({"scope": [1]}, 400, "scope", id="scope_item_not_a_string"),
    pytest.param({"scope": ["read:things write:things"]}, 400, "scope", id="scope_with_space"),
    pytest.param({"scope": ['"read:things"']}, 400, "scope", id="scope_with_quotes"),
    pytest.param({"scope": [""]}, 400, "scope", id="scope_empty_string"),
    pytest.param({"colour": "red"}, 400, "colour", id="unknown_field"),
    pytest.param({"scope": None}, 400, "scope", id="scope_null"),
]


@pytest.mark.parametrize(("changes", "status", "mentions"), BAD_CREATES)
def test_rejected_create_is_a_json_4xx_and_stores_nothing(
    server: Server, changes: dict[str, Any], status: int, mentions: str
) -> None:
    with server.api() as api:
        client_id, audience = create_client(api)["client_id"], new_audience(api)
        body = {"client_id": client_id, "audience": audience, "scope": ["read:things"], **changes}
        before = grant_total(api)
        response = api.post("/client-grants", json=body)
        assert_api_error(response, status, mentions)
        assert grant_total(api) == before


@pytest.mark.parametrize("missing", ["client_id", "audience", "scope"])
def test_create_without_a_required_field_is_400_naming_it(server: Server, missing: str) -> None:
    with server.api() as api:
        body = {
            "client_id": create_client(api)["client_id"],
            "audience": new_audience(api),
            "scope": [],
        }
        del body[missing]
        before = grant_total(api)
        response = api.post("/client-grants", json=body)
        assert_api_error(response, 400, missing, "invalid_body")
        assert grant_total(api) == before


@pytest.mark.parametrize(
    ("request_args", "status", "mentions"),
    [
        ({"content": b'{"client_id": "a", "client_id": "b"}', "headers": JSON}, 400, "'client_id'"),
        ({"content": b'{"client_id": ', "headers": JSON}, 400, "invalid JSON"),
        ({"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 415, "application/json"),
        ({"headers": JSON}, 400, "body is required"),
        ({"json": {"scope": ["a" * 200] * 1400}}, 413, "larger"),
    ],
    ids=["repeated_key", "invalid_json", "text_plain", "no_body", "over_256_kib"],
)
def test_malformed_request_is_a_json_4xx_and_stores_nothing(
    server: Server, request_args: dict[str, Any], status: int, mentions: str
) -> None:
    with server.api() as api:
        before = grant_total(api)
        response = api.post("/client-grants", **request_args)
        assert_api_error(response, status, mentions)
        assert grant_total(api) == before


def test_checkpoint_pagination_covers_every_grant(server: Server) -> None:
    """Auth0's from/take with next (what the Deploy CLI and SDKs page with), past
    the 50 a page holds by default: every grant once, none left out."""
    with server.api() as api:
        audience = new_audience(api)
        made = {grant(api, create_client(api)["client_id"], audience, [])["id"] for _ in range(55)}
        seen: list[str] = []
        params: dict[str, str] = {"audience": audience, "take": "20"}
        while True:
            answer = api.get("/client-grants", params=params)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            seen += [item["id"] for item in body["client_grants"]]
            if "next" not in body:
                break
            params["from"] = body["next"]
        assert sorted(seen) == sorted(made)
        assert len(seen) == len(set(seen)) == 55
        # The default page holds 50; include_totals says there are more.
        totals = api.get("/client-grants", params={"audience": audience, "include_totals": "true"})
        assert totals.json()["total"] == 55
        assert len(totals.json()["client_grants"]) == 50
        # With both kinds, from/take decide (Auth0's SDKs send page with every list).
        mixed = api.get("/client-grants", params={"audience": audience, "take": "5", "page": "1"})
        assert len(mixed.json()["client_grants"]) == 5
        assert "next" in mixed.json()
