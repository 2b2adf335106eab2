"""Points applications declare through the management API, and invoke: declared,
changed and deleted over HTTP; hooks in Python and JavaScript, in both
conventions, on them; invoked by an application whose token may do nothing
else; events checked against the schema, refusals, on_error, idempotent
retries, and durable async delivery across a SIGKILL."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, run_server, serve_again, unique
from tests.users.helpers import wait_for

QUOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sku", "quantity"],
    "properties": {
        "sku": {"type": "string", "examples": ["SKU-1"]},
        "quantity": {"type": "integer", "minimum": 1},
        "customer": {
            "type": "object",
            "properties": {"tier": {"enum": ["free", "pro"]}},
        },
    },
}
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "price": {"type": "number", "minimum": 0},
        "discount": {"type": "number"},
        "currency": {"type": "string"},
    },
    "additionalProperties": False,
}

PRICE_PY = """
def {function}(event, context):
    # Hooks style: the returned dict is merged into the result.
    return {{"price": 10 * event["quantity"], "currency": "EUR"}}
"""
DISCOUNT_JS = """
exports.onExecute = async (event, api) => {
  // Actions style, with the result so far.
  if (event.customer && event.customer.tier === 'pro') {
    api.result.set('discount', event.result.price * 0.1);
  }
  if (event.quantity > 1000) api.access.deny('too many at once');
};
"""


def declare(server: Server, **fields: Any) -> dict[str, Any]:
    spec = {
        "id": unique("quote"),
        "description": "Price a quote",
        "blocking": True,
        "event_schema": QUOTE_SCHEMA,
        "result_schema": RESULT_SCHEMA,
        **fields,
    }
    with server.api() as api:
        response = api.post("/points", json=spec)
    assert response.status_code == 201, response.text
    return dict(response.json())


def add_hook(server: Server, point: str, script: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("hook"),
                "triggerId": point,
                "script": script,
                "enabled": True,
                **fields,
            },
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


def application(server: Server, scope: str) -> httpx.Client:
    """A client of the management API granted ``scope`` alone, as an application is."""
    with server.api() as api:
        client = api.post("/clients", json={"name": unique("app")}).json()
        grant = api.post(
            "/client-grants",
            json={
                "client_id": client["client_id"],
                "audience": server.management_audience,
                "scope": [scope],
            },
        )
        assert grant.status_code == 201, grant.text
    token = server.token(
        client["client_id"], client["client_secret"], audience=server.management_audience
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == scope
    return httpx.Client(
        base_url=server.url + "/api/v2",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=30,
    )


def python_function(point_id: str) -> str:
    return point_id.replace("-", "_")


def test_a_declared_point_is_listed_marked_and_its_scope_exists(server: Server) -> None:
    point = declare(server)
    assert (point["built_in"], point["source"], point["blocking"]) == (False, "api", True)
    assert point["sample_event"] == {"sku": "SKU-1", "quantity": 1}
    assert point["result_schema"] == RESULT_SCHEMA
    assert point["conventions"]["actions"]["api"] == {"result": ["set"], "access": ["deny"]}
    with server.api("read:points") as api:
        listed = {found["id"]: found for found in api.get("/points").json()}
        scopes = None
    assert listed[point["id"]]["source"] == "api"
    assert listed["credentials-exchange"]["built_in"] is True
    assert listed["credentials-exchange"]["source"] == "server"
    with server.api() as api:
        system = [rs for rs in api.get("/resource-servers").json() if rs.get("is_system")]
        scopes = {scope["value"] for scope in system[0]["scopes"]}
    assert {"invoke:points", f"invoke:points:{point['id']}", "create:points"} <= scopes


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"id": "credentials-exchange"}, 409, "built in"),
        ({"id": "Price Quote"}, 400, "lower-case words"),
        (
            {"event_schema": {"type": "object", "properties": {"a": {"type": "nope"}}}},
            400,
            "not a valid JSON Schema",
        ),
        ({"event_schema": {"type": "object", "x": "y" * 70_000}}, 400, "bytes as JSON"),
        ({"blocking": False}, 400, "result_schema is for blocking points"),
        ({"timeout_ms": 50}, 400, "timeout_ms must be a whole number from 100"),
        (
            {"event_schema": {"$ref": "https://example.com/s.json", "type": "object"}},
            400,
            "does not resolve within the schema",
        ),
        ({"unknown": 1}, 400, "unknown"),
    ],
)
def test_a_bad_declaration_is_a_clear_400_and_nothing_is_stored(
    server: Server, change: dict[str, Any], status: int, message: str
) -> None:
    spec = {
        "id": unique("bad"),
        "description": "x",
        "blocking": True,
        "event_schema": QUOTE_SCHEMA,
        "result_schema": RESULT_SCHEMA,
        **change,
    }
    with server.api() as api:
        response = api.post("/points", json=spec)
        assert response.status_code == status, response.text
        assert message in response.json()["message"]
        assert api.get(f"/points/{spec['id']}").status_code in (404, 200)
        if spec["id"] != "credentials-exchange":
            assert api.get(f"/points/{spec['id']}").status_code == 404


def test_an_existing_id_is_409(server: Server) -> None:
    point = declare(server)
    with server.api() as api:
        again = api.post(
            "/points",
            json={
                "id": point["id"],
                "description": "x",
                "blocking": False,
                "event_schema": {"type": "object"},
            },
        )
    assert again.status_code == 409
    assert "exists" in again.json()["message"]


def test_an_application_invokes_a_flow_of_python_and_javascript_hooks(server: Server) -> None:
    point = declare(server)
    add_hook(server, point["id"], PRICE_PY.format(function=python_function(point["id"])), order=1)
    add_hook(server, point["id"], DISCOUNT_JS, order=2)
    with application(server, f"invoke:points:{point['id']}") as app:
        response = app.post(
            f"/points/{point['id']}/invoke",
            json={"event": {"sku": "A", "quantity": 3, "customer": {"tier": "pro"}}},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"result": {"price": 30, "currency": "EUR", "discount": 3}}

        denied = app.post(
            f"/points/{point['id']}/invoke", json={"event": {"sku": "A", "quantity": 5000}}
        )
        assert denied.status_code == 403
        assert denied.json() == {"error": "access_denied", "error_description": "too many at once"}

        # The event is checked before any hook runs, every place named.
        bad = app.post(
            f"/points/{point['id']}/invoke",
            json={"event": {"sku": 7, "quantity": 0, "customer": {"tier": "gold"}}},
        )
        assert bad.status_code == 400
        assert bad.json()["errorCode"] == "invalid_event"
        pointers = {error["pointer"] for error in bad.json()["errors"]}
        assert pointers == {"/sku", "/quantity", "/customer/tier"}

        # The token invokes this point, and does nothing else.
        assert app.get("/hooks").status_code == 403
        assert app.get("/points").status_code == 403
        other = declare(server)
        refused = app.post(
            f"/points/{other['id']}/invoke", json={"event": {"sku": "A", "quantity": 1}}
        )
        assert refused.status_code == 403
        assert refused.json()["errorCode"] == "insufficient_scope"


def test_invoking_what_is_not_a_declared_point(server: Server) -> None:
    with application(server, "invoke:points") as app:
        built_in = app.post("/points/credentials-exchange/invoke", json={"event": {}})
        assert built_in.status_code == 400
        assert "built in" in built_in.json()["message"]
        missing = app.post("/points/no-such-point/invoke", json={"event": {}})
        assert missing.status_code == 404
        point = declare(server)
        not_object = app.post(f"/points/{point['id']}/invoke", json={"event": [1]})
        assert not_object.status_code == 400
        no_event = app.post(f"/points/{point['id']}/invoke", json={})
        assert no_event.status_code == 400
        # No hooks yet: the empty result.
        empty = app.post(
            f"/points/{point['id']}/invoke", json={"event": {"sku": "A", "quantity": 1}}
        )
        assert (empty.status_code, empty.json()) == (200, {"result": {}})


def test_a_result_outside_its_schema_fails_its_hook_and_on_error_decides(server: Server) -> None:
    point = declare(server)
    function = python_function(point["id"])
    bad = f"def {function}(event, context):\n    return {{'price': -1}}\n"
    good = PRICE_PY.format(function=function)
    first = add_hook(server, point["id"], bad, order=1, on_error="continue")
    add_hook(server, point["id"], good, order=2)
    with application(server, "invoke:points") as app:
        event = {"event": {"sku": "A", "quantity": 2}}
        forgiven = app.post(f"/points/{point['id']}/invoke", json=event)
        assert (forgiven.status_code, forgiven.json()) == (
            200,
            {"result": {"price": 20, "currency": "EUR"}},
        )
        with server.api() as api:
            api.patch(f"/hooks/{first['id']}", json={"on_error": "fail"})
        failed = app.post(f"/points/{point['id']}/invoke", json=event)
        assert failed.status_code == 500
        assert failed.json()["error"] == "server_error"
        assert first["name"] in failed.json()["error_description"]


def test_an_idempotency_key_answers_a_retry_without_running_again(server: Server) -> None:
    point = declare(server, result_schema=None)
    function = python_function(point["id"])
    add_hook(
        server,
        point["id"],
        f"import uuid\ndef {function}(event, context):\n    return {{'run': str(uuid.uuid4())}}\n",
    )
    key = str(uuid.uuid4())
    event = {"event": {"sku": "A", "quantity": 1}}
    with application(server, "invoke:points") as app:
        url = f"/points/{point['id']}/invoke"
        first = app.post(url, json=event, headers={"Idempotency-Key": key})
        again = app.post(url, json=event, headers={"Idempotency-Key": key})
        fresh = app.post(url, json=event, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert first.status_code == again.status_code == fresh.status_code == 200
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert fresh.json() != first.json()
        reused = app.post(
            url, json={"event": {"sku": "B", "quantity": 1}}, headers={"Idempotency-Key": key}
        )
        assert reused.status_code == 422
        assert reused.json()["errorCode"] == "idempotency_key_reused"
        bad_key = app.post(url, json=event, headers={"Idempotency-Key": "k" * 300})
        assert bad_key.status_code == 400


def test_max_hooks_and_timeout_bound_the_point(server: Server) -> None:
    point = declare(server, max_hooks=1, timeout_ms=500)
    function = python_function(point["id"])
    slow = f"import time\ndef {function}(event, context):\n    time.sleep(3)\n"
    add_hook(server, point["id"], slow, timeout_ms=10_000)
    with server.api() as api:
        second = api.post(
            "/hooks",
            json={"name": unique("hook"), "triggerId": point["id"], "script": slow},
        )
    assert second.status_code == 409
    assert "max_hooks" in second.json()["message"]
    with application(server, "invoke:points") as app:
        timed_out = app.post(
            f"/points/{point['id']}/invoke", json={"event": {"sku": "A", "quantity": 1}}
        )
    assert timed_out.status_code == 500
    assert "timeout" in timed_out.json()["error_description"]


def test_a_schema_change_reports_captured_events_it_refuses(server: Server) -> None:
    point = declare(server, result_schema=None)
    hook = add_hook(
        server,
        point["id"],
        PRICE_PY.format(function=python_function(point["id"])),
        capture_events=True,
    )
    with application(server, "invoke:points") as app:
        app.post(f"/points/{point['id']}/invoke", json={"event": {"sku": "A", "quantity": 1}})
    with server.api() as api:  # records are written in batches, after the answer
        wait_for(lambda: api.get(f"/hooks/{hook['id']}/logs").json())
    stricter = {**QUOTE_SCHEMA, "required": ["sku", "quantity", "customer"]}
    with server.api() as api:
        changed = api.patch(
            f"/points/{point['id']}",
            json={
                "event_schema": stricter,
                "sample_event": {"sku": "A", "quantity": 1, "customer": {}},
            },
        )
        assert changed.status_code == 200, changed.text
        mismatched = changed.json()["mismatched_captures"]
        assert [found["hook_id"] for found in mismatched] == [hook["id"]]
        assert "'customer' is a required property" in mismatched[0]["error"]
        assert api.get(f"/points/{point['id']}").json()["event_schema"] == stricter
        # Whether a point blocks, and its id, do not change.
        assert api.patch(f"/points/{point['id']}", json={"blocking": False}).status_code == 400
        assert (
            api.patch("/points/credentials-exchange", json={"description": "x"}).status_code == 400
        )


def test_deleting_a_point_with_hooks_needs_force(server: Server) -> None:
    point = declare(server)
    hook = add_hook(server, point["id"], PRICE_PY.format(function=python_function(point["id"])))
    with server.api() as api:
        refused = api.delete(f"/points/{point['id']}")
        assert refused.status_code == 409
        assert "force" in refused.json()["message"]
        assert api.get(f"/hooks/{hook['id']}").status_code == 200
        assert api.delete(f"/points/{point['id']}", params={"force": "true"}).status_code == 204
        assert api.get(f"/hooks/{hook['id']}").status_code == 404
        assert api.get(f"/points/{point['id']}").status_code == 404
        system = [rs for rs in api.get("/resource-servers").json() if rs.get("is_system")]
        assert f"invoke:points:{point['id']}" not in {s["value"] for s in system[0]["scopes"]}


SLOW_FIRST_DELIVERY = """
import time

def {function}(event, context):
    if event["delivery"]["attempt"] == 1:
        time.sleep(30)
    print("delivered", event["event_id"], event["order_id"])
"""


def test_an_async_point_delivers_at_least_once_across_a_sigkill(
    backend: str, tmp_path: Path
) -> None:
    with run_server(tmp_path, backend, delivery_lease=2) as first:
        point_id = unique("order-placed")
        with first.api() as api:
            created = api.post(
                "/points",
                json={
                    "id": point_id,
                    "description": "An order was placed",
                    "blocking": False,
                    "event_schema": {
                        "type": "object",
                        "required": ["order_id"],
                        "properties": {"order_id": {"type": "string"}},
                        "additionalProperties": False,
                    },
                },
            )
            assert created.status_code == 201, created.text
        script = SLOW_FIRST_DELIVERY.format(function=python_function(point_id))
        hook = add_hook(first, point_id, script, timeout_ms=20_000)
        with application(first, "invoke:points") as app:
            queued = app.post(f"/points/{point_id}/invoke", json={"event": {"order_id": "o-1"}})
        assert queued.status_code == 202, queued.text
        event_id = queued.json()["event_id"]

        def deliveries(server: Server) -> list[dict[str, Any]]:
            with server.api() as api:
                found = api.get(f"/hooks/{hook['id']}/deliveries").json()
            return list(found if isinstance(found, list) else found["deliveries"])

        wait_for(lambda: (found := deliveries(first)) and found[0]["attempts"] == 1)
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        with serve_again(first, tmp_path) as second:
            delivered = wait_for(
                lambda: (
                    (found := deliveries(second)) and found[0]["status"] == "delivered" and found[0]
                )
            )
            assert delivered["event_id"] == event_id
            assert delivered["attempts"] == 2


def test_a_point_declared_in_one_process_serves_in_another_and_survives_restarts(
    backend: str, tmp_path: Path
) -> None:
    with run_server(tmp_path, backend) as first, serve_again(first, tmp_path) as second:
        point = declare(first)
        add_hook(first, point["id"], PRICE_PY.format(function=python_function(point["id"])))
        event = {"event": {"sku": "A", "quantity": 2}}
        with application(first, f"invoke:points:{point['id']}") as app:
            there = httpx.post(
                f"{second.url}/api/v2/points/{point['id']}/invoke",
                json=event,
                headers={"Authorization": app.headers["Authorization"]},
                timeout=30,
            )
            assert there.status_code == 200, there.text
            assert there.json() == {"result": {"price": 20, "currency": "EUR"}}
        with first.api() as api:
            api.patch(f"/points/{point['id']}", json={"description": "Price a quote again"})
        with second.api() as api:
            wait_for(
                lambda: (
                    api.get(f"/points/{point['id']}").json()["description"] == "Price a quote again"
                )
            )
    # Each start brings the management API's scopes up to date: the point's own stays.
    with serve_again(first, tmp_path) as again, again.api() as api:
        system = [rs for rs in api.get("/resource-servers").json() if rs.get("is_system")]
        assert f"invoke:points:{point['id']}" in {s["value"] for s in system[0]["scopes"]}
        assert api.get(f"/points/{point['id']}").json()["source"] == "api"
