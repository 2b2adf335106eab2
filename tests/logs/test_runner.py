"""POST /api/v2/hooks/{id}/test: drafts, versions, events, secrets, replay."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, create_machine, run_server
from tests.logs.test_stream import create_hook, token

CLAIMS = """
def credentials_exchange(client, scope, audience, context):
    print("tier", context["secrets"]["TIER"], "for", client["id"])
    return {"scope": scope, "https://example.com/tier": context["secrets"]["TIER"]}
"""


def run(server: Server, hook_id: str, **body: Any) -> Any:
    with server.api() as api:
        return api.post(f"/hooks/{hook_id}/test", json=body)


def stored(server: Server, hook_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with server.api() as api:
        return api.get(f"/hooks/{hook_id}").json(), api.get(f"/hooks/{hook_id}/versions").json()


def test_unsaved_code_with_override_secrets_leaves_the_hook_alone(server: Server) -> None:
    hook = create_hook(server, CLAIMS, enabled=False)
    with server.api() as api:
        api.post(f"/hooks/{hook['id']}/secrets", json={"TIER": "gold-secret"})
    before = stored(server, hook["id"])
    draft = CLAIMS.replace('"scope": scope', '"scope": scope + ["delete:invoices", "mint:money"]')
    response = run(server, hook["id"], script=draft, secrets={"TIER": "test-tier"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["outcome"] == "ok"
    assert report["version"] is None
    assert report["duration_ms"] > 0
    sample = ["read:invoices", "write:invoices"]
    # Only scopes the API defines can be added (the sample's api_scopes), as in production.
    assert report["result"]["scope"] == [*sample, "delete:invoices"]
    claims = report["result"]["claims"]
    assert claims["https://example.com/tier"] == "***"  # the override is a secret too
    assert claims["sub"] == "6qL3rOvcuBsYrvDvyIZgHYd3ZKbv3B0O@clients"
    assert claims["gty"] == "client-credentials"
    assert claims["scope"] == "read:invoices write:invoices delete:invoices"
    assert claims["iss"] == server.issuer
    assert [line["text"] for line in report["console"] if line["stream"] == "stdout"] == [
        "tier *** for 6qL3rOvcuBsYrvDvyIZgHYd3ZKbv3B0O"
    ]
    assert stored(server, hook["id"]) == before
    with server.api() as api:
        record = api.get(f"/logs/{report['invocation_id']}").json()
    assert record["test"] is True
    assert "test-tier" not in str(record)


def test_claims_preview_follows_the_reserved_claim_rules(server: Server) -> None:
    script = (
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'sub': 'me', 'https://x.example/a': 1, 'plain': 2}\n"
    )
    hook = create_hook(server, script, enabled=False)
    report = run(server, hook["id"]).json()
    claims = report["result"]["claims"]
    assert claims["sub"].endswith("@clients")
    assert claims["https://x.example/a"] == 1
    assert "plain" not in claims
    notes = [line["text"] for line in report["console"] if line["stream"] == "authhooks"]
    assert any("'sub' is set by the server" in note for note in notes)


def test_a_stored_version_and_a_given_event(server: Server) -> None:
    hook = create_hook(server, CLAIMS.replace("TIER", "T"), enabled=False)
    with server.api() as api:
        api.patch(f"/hooks/{hook['id']}", json={"script": CLAIMS.replace("TIER", "T2")})
    event = {"client": {"id": "abc", "name": "n"}, "scope": [], "audience": "https://a/"}
    old = run(server, hook["id"], version=1, event=event, secrets={"T": "one"}).json()
    assert old["version"] == 1
    assert old["result"]["claims"]["aud"] == "https://a/"
    new = run(server, hook["id"], event=event, secrets={"T2": "two"}).json()
    assert new["version"] == 2


def test_errors_point_at_the_hooks_own_lines(server: Server) -> None:
    script = "def credentials_exchange(client, scope, audience, context):\n    return 1 / 0\n"
    hook = create_hook(server, script, enabled=False)
    report = run(server, hook["id"]).json()
    assert report["outcome"] == "raised"
    error = report["error"]
    assert error["type"] == "ZeroDivisionError"
    assert any('File "hook.py", line 2' in line for line in error["traceback"])
    assert "/work" not in str(error)
    assert "site-packages" not in str(error)
    broken = run(server, hook["id"], script="def credentials_exchange(:\n").json()
    assert broken["outcome"] == "load_failed"
    assert broken["error"]["line"] == 1


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"event": {"client": {"id": "x", "name": "y"}, "scope": "read"}}, 400, "event.scope"),
        (
            {"event": {"client": {"id": "x"}, "scope": [], "audience": "a"}},
            400,
            "event.client.name",
        ),
        ({"event": {"clients": {}}}, 400, "event.client"),
        ({"version": 99}, 404, "version"),
        ({"version": 1, "script": "x"}, 400, "not both"),
        ({"replay": "inv_nothing"}, 404, "inv_nothing"),
        ({"secrets": {"1BAD": "x"}}, 400, "1BAD"),
        ({"script": "x" * 200_000}, 400, "script"),
    ],
)
def test_bad_requests(server: Server, body: dict[str, Any], status: int, says: str) -> None:
    hook = create_hook(server, CLAIMS, enabled=False)
    response = run(server, hook["id"], **body)
    assert response.status_code == status, response.text
    assert says in response.json()["message"]


def test_unknown_hook_and_scope(server: Server) -> None:
    assert run(server, "nothing").status_code == 404
    hook = create_hook(server, CLAIMS, enabled=False)
    with server.api("read:hooks") as api:
        assert api.post(f"/hooks/{hook['id']}/test", json={}).status_code == 403


def test_replay_of_a_captured_event(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend) as solo:
        machine = create_machine(solo)
        hook = create_hook(solo, CLAIMS, capture_events=True)
        with solo.api() as api:
            api.post(f"/hooks/{hook['id']}/secrets", json={"TIER": "gold"})
        time.sleep(0.3)
        assert token(solo, machine).status_code == 200
        time.sleep(0.3)
        with solo.api() as api:
            record = api.get("/logs", params={"hook_id": hook["id"]}).json()["logs"][0]
            assert "captured_event" not in record
            replayed = api.post(f"/hooks/{hook['id']}/test", json={"replay": record["id"]}).json()
        assert replayed["outcome"] == "ok"
        assert replayed["result"]["claims"]["aud"] == machine.audience
        assert replayed["result"]["claims"]["client_id"] == machine.client_id
        assert [line["text"] for line in replayed["console"] if line["stream"] == "stdout"] == [
            line["text"] for line in record["console"] if line["stream"] == "stdout"
        ]

        # Off by default: nothing to replay. And another point's hook cannot replay it.
        plain = create_hook(solo, CLAIMS.replace("TIER", "T"), order=1)
        other = create_hook(
            solo,
            "def pre_user_registration(user, context):\n    pass\n",
            triggerId="pre-user-registration",
        )
        time.sleep(0.3)
        assert token(solo, machine).status_code in (200, 500)
        time.sleep(0.3)
        with solo.api() as api:
            plain_record = api.get("/logs", params={"hook_id": plain["id"]}).json()["logs"][0]
            refused = api.post(f"/hooks/{plain['id']}/test", json={"replay": plain_record["id"]})
            assert refused.status_code == 400
            assert "no captured event" in refused.json()["message"]
            wrong_point = api.post(f"/hooks/{other['id']}/test", json={"replay": record["id"]})
            assert wrong_point.status_code == 400
            assert "another hook's" in wrong_point.json()["message"]


def test_an_expired_capture_cannot_be_replayed(backend: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from authhooks.storage import models
    from authhooks.storage.database import Database

    with run_server(tmp_path, backend) as solo:
        machine = create_machine(solo)
        hook = create_hook(solo, CLAIMS, capture_events=True)
        with solo.api() as api:
            api.post(f"/hooks/{hook['id']}/secrets", json={"TIER": "gold"})
        time.sleep(0.3)
        assert token(solo, machine).status_code == 200
        time.sleep(0.3)
        with solo.api() as api:
            record = api.get("/logs", params={"hook_id": hook["id"]}).json()["logs"][0]
        url = solo.database_url
        database = Database(url)
        with database.session() as session:
            raw = session.get(models.HookInvocation, record["id"])
            assert raw is not None
            assert raw.captured_event is not None
            assert b"gold" not in raw.captured_event  # sealed, and never the secrets
            assert machine.client_id.encode() not in raw.captured_event
            session.execute(
                update(models.HookInvocation)
                .where(models.HookInvocation.id == record["id"])
                .values(capture_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        database.dispose()
        response = run(solo, hook["id"], replay=record["id"])
        assert response.status_code == 400
        assert "expired" in response.json()["message"]


def test_a_body_over_the_cap_is_413(server: Server) -> None:
    hook = create_hook(server, CLAIMS, enabled=False)
    event = {"client": {"id": "x", "name": "y"}, "scope": ["s"] * 100_000, "audience": "a"}
    response = run(server, hook["id"], event=event)
    assert response.status_code == 413


def test_parallel_runs_of_one_draft_do_not_disturb_each_other(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    hook = create_hook(server, CLAIMS, enabled=False)
    slow = (
        "import time\n"
        "def credentials_exchange(client, scope, audience, context):\n"
        "    time.sleep(0.5)\n"
    )
    with ThreadPoolExecutor(3) as pool:
        reports = list(pool.map(lambda _: run(server, hook["id"], script=slow).json(), range(3)))
    assert [report["outcome"] for report in reports] == ["ok"] * 3
    notes = [line["text"] for line in reports[0]["console"]]
    assert any(note.startswith("test run of unsaved code, sha256 ") for note in notes)
