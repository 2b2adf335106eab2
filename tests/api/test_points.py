"""GET /api/v2/points: what a hook author needs to write a hook for each point."""

from __future__ import annotations

from authhooks.points.registry import POINTS
from tests.api.helpers import assert_api_error
from tests.conftest import Server


def test_every_point_with_its_signature_sample_and_template(server: Server) -> None:
    with server.api("read:hooks") as api:
        listed = api.get("/points").json()
        one = api.get("/points/credentials-exchange")
        missing = api.get("/points/credential-exchange")
    assert [point["name"] for point in listed] == list(POINTS)
    assert one.status_code == 200
    body = one.json()
    assert body["function"] == "credentials_exchange"
    assert body["params"] == ["client", "scope", "audience", "context"]
    assert body["blocking"] is True
    assert body["sample_event"]["client"]["id"]
    assert body["template"] == POINTS["credentials-exchange"].template
    assert_api_error(missing, 404, "credentials-exchange", "inexistent_point")


def test_points_need_read_hooks(server: Server) -> None:
    with server.api("read:logs") as api:
        assert api.get("/points").status_code == 403
