"""GET /api/v2/points: what a hook author needs to write a hook for each point."""

from __future__ import annotations

from authhooks.points.registry import POINTS
from tests.api.helpers import assert_api_error
from tests.conftest import Server, unique


def test_every_point_with_its_signature_sample_and_template(server: Server) -> None:
    with server.api("read:hooks") as api:
        listed = api.get("/points").json()
        one = api.get("/points/credentials-exchange")
        missing = api.get("/points/credential-exchange")
    assert [point["id"] for point in listed] == list(POINTS)
    assert [point["name"] for point in listed] == list(POINTS)
    assert one.status_code == 200
    body = one.json()
    assert body["blocking"] is True
    assert body["sample_event"]["client"]["id"]
    assert body["event_schema"]["properties"]["client"]
    hooks, actions = body["conventions"]["hooks"], body["conventions"]["actions"]
    assert hooks["signature"] == "def credentials_exchange(client, scope, audience, context)"
    assert hooks["template"] == POINTS["credentials-exchange"].templates["hooks"]
    assert actions["signature"] == "def on_execute_credentials_exchange(event, api)"
    assert actions["template"] == POINTS["credentials-exchange"].templates["actions"]
    assert actions["api"] == {
        "access_token": ["set_custom_claim", "add_scope", "remove_scope"],
        "access": ["deny"],
    }
    # What an editor completes is what a hook really receives.
    hook_paths = {hint["path"]: hint["type"] for hint in hooks["hints"]}
    assert hook_paths["client.metadata"] == "object"
    assert hook_paths["scope"] == "array"
    assert hook_paths["context.secrets"] == "object"
    action_paths = {hint["path"]: hint["type"] for hint in actions["hints"]}
    assert action_paths["event.client.client_id"] == "string"
    assert action_paths["api.access.deny"] == "function"
    # The Hooks convention's fields, as older clients read them.
    assert body["function"] == "credentials_exchange"
    assert body["params"] == ["client", "scope", "audience", "context"]
    assert body["template"] == hooks["template"]
    assert_api_error(missing, 404, "credentials-exchange", "inexistent_point")


def test_points_need_read_hooks(server: Server) -> None:
    with server.api("read:logs") as api:
        assert api.get("/points").status_code == 403


def test_points_and_admins_page_as_every_list_does(server: Server) -> None:
    with server.api() as api:
        for _ in range(2):
            admin = {"email": f"{unique('adm')}@example.com", "password": "Correct-Horse-42"}
            assert api.post("/admins", json={**admin, "scopes": []}).status_code == 201
        for path, key in (("/points", "points"), ("/admins", "admins")):
            every = api.get(path, params={"include_totals": "true", "per_page": 100}).json()
            assert every["total"] == len(every[key]) >= 1
            pages = [
                api.get(path, params={"page": number, "per_page": 1}).json()
                for number in range(every["total"] + 1)
            ]
            assert [item for page in pages for item in page] == every[key]
            assert pages[-1] == []
