"""GET /api/v2/logs/stream: live console lines, lossless resume, several processes,
redaction, bounded subscribers, and an end when the subscriber's access is taken away."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    CACHE_TTL,
    Machine,
    Server,
    create_machine,
    run_server,
    serve_again,
    unique,
)
from tests.dashboard.test_admins import admin_token, new_admin, sign_in
from tests.logs.sse import Subscriber

SLOW_PRINTER = """
import time

def credentials_exchange(client, scope, audience, context):
    print("started with", context["secrets"]["API_KEY"])
    time.sleep(1.5)
    return {"https://example.com/done": True}
"""

QUICK = """
def credentials_exchange(client, scope, audience, context):
    print("call", client["id"])
"""


def create_hook(server: Server, script: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("hook"),
                "script": script,
                "triggerId": "credentials-exchange",
                "enabled": True,
                **fields,
            },
        )
    assert response.status_code == 201, response.text
    hook: dict[str, Any] = response.json()
    return hook


def subscribe(server: Server, **params: str) -> Subscriber:
    subscriber = Subscriber(
        server.url + "/api/v2/logs/stream", server.management_token("read:logs"), **params
    )
    assert subscriber.status == 200
    return subscriber


def token(server: Server, machine: Machine) -> httpx.Response:
    return server.token(machine.client_id, machine.client_secret, audience=machine.audience)


@pytest.fixture
def solo(backend: str, tmp_path: Path) -> Any:
    with run_server(tmp_path, backend, log_stream_heartbeat=0.5) as running:
        yield running


def test_a_console_line_arrives_before_the_hook_returns(solo: Server) -> None:
    machine = create_machine(solo)
    hook = create_hook(solo, SLOW_PRINTER)
    with solo.api() as api:
        assert api.post(f"/hooks/{hook['id']}/secrets", json={"API_KEY": "k-93c1f0"}).is_success
    time.sleep(0.3)
    with subscribe(solo, hook_id=hook["id"]) as stream:
        answered: list[float] = []
        caller = threading.Thread(
            target=lambda: (token(solo, machine), answered.append(time.monotonic()))
        )
        caller.start()
        line = stream.next("console")
        assert not answered, "the line should arrive while the hook still sleeps"
        assert line.data["text"] == "started with ***"
        assert line.data["hook_id"] == hook["id"]
        assert line.id is None
        record = stream.next("invocation")
        caller.join()
        assert record.data["outcome"] == "ok"
        assert record.data["id"] == line.data["invocation_id"]
        assert record.id == str(record.data["seq"])
        assert "k-93c1f0" not in str(record.data)
        assert answered[0] - line.received_at > 1.0


def test_resume_by_last_event_id_loses_nothing(solo: Server) -> None:
    machine = create_machine(solo)
    hook = create_hook(solo, QUICK)
    time.sleep(0.3)
    seen: list[int] = []
    with subscribe(solo, hook_id=hook["id"]) as stream:
        for _ in range(3):
            assert token(solo, machine).status_code == 200
        seen += [int(stream.next("invocation").id or 0) for _ in range(3)]
    for _ in range(5):  # while nobody listens
        assert token(solo, machine).status_code == 200
    with subscribe(solo, hook_id=hook["id"], last_event_id=str(seen[-1])) as stream:
        assert token(solo, machine).status_code == 200
        seen += [int(stream.next("invocation").id or 0) for _ in range(6)]
    assert seen == list(range(seen[0], seen[0] + 9))
    with solo.api("read:logs") as api:
        stored = api.get("/logs", params={"hook_id": hook["id"]}).json()["logs"]
    assert sorted(record["seq"] for record in stored) == seen


def test_filters_and_heartbeats(solo: Server) -> None:
    machine = create_machine(solo)
    failing = create_hook(
        solo, "def credentials_exchange(client, scope, audience, context):\n    raise KeyError(1)\n"
    )
    time.sleep(0.3)
    with (
        subscribe(solo, outcome="raised") as raised,
        subscribe(solo, point="password-exchange") as other,
    ):
        assert token(solo, machine).status_code == 500
        record = raised.next("invocation")
        assert record.data["hook_id"] == failing["id"]
        time.sleep(1.2)
        assert other.events.empty()
        assert other.comments >= 1  # heartbeats
        assert raised.events.empty()  # lines are not sent to outcome-filtered streams


def test_two_processes_share_one_stream(backend: str, tmp_path: Path) -> None:
    with (
        run_server(tmp_path, backend, log_stream_heartbeat=0.5) as first,
        serve_again(first, tmp_path) as second,
    ):
        machine = create_machine(first)
        hook = create_hook(first, SLOW_PRINTER)
        with first.api() as api:
            api.post(f"/hooks/{hook['id']}/secrets", json={"API_KEY": "k-51aa"})
        time.sleep(0.5)
        with subscribe(second, hook_id=hook["id"]) as stream:
            assert token(first, machine).status_code == 200
            if backend == "postgresql":  # LISTEN/NOTIFY carries the live lines too
                assert stream.next("console").data["text"] == "started with ***"
            record = stream.next("invocation", timeout=10)
            assert record.data["hook_id"] == hook["id"]


def test_the_stream_needs_read_logs(solo: Server) -> None:
    response = httpx.get(
        solo.url + "/api/v2/logs/stream",
        headers={"Authorization": f"Bearer {solo.management_token('read:hooks')}"},
    )
    assert response.status_code == 403
    bad = httpx.get(
        solo.url + "/api/v2/logs/stream",
        headers={
            "Authorization": f"Bearer {solo.management_token('read:logs')}",
            "Last-Event-ID": "yesterday",
        },
    )
    assert bad.status_code == 400


def test_record_numbers_are_never_reused(solo: Server) -> None:
    machine = create_machine(solo)
    first = create_hook(solo, QUICK)
    time.sleep(0.3)
    with subscribe(solo) as stream:
        assert token(solo, machine).status_code == 200
        old = int(stream.next("invocation").id or 0)
        with solo.api() as api:
            assert api.delete(f"/hooks/{first['id']}").status_code == 204
        create_hook(solo, QUICK)
        time.sleep(0.3)
        assert token(solo, machine).status_code == 200
        assert int(stream.next("invocation").id or 0) > old


def test_heartbeats_keep_coming_while_other_hooks_are_busy(solo: Server) -> None:
    machine = create_machine(solo)
    create_hook(solo, QUICK)
    time.sleep(0.3)
    with subscribe(solo, hook_id="hk_quiet") as quiet:
        began = quiet.comments
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # steady traffic on another hook
            token(solo, machine)
        assert quiet.comments - began >= 3  # heartbeat every 0.5 s


def test_open_streams_do_not_hold_up_a_stopping_server(backend: str, tmp_path: Path) -> None:
    """uvicorn waits for open responses before it stops: streams must end on the signal."""
    with run_server(tmp_path, backend) as server, subscribe(server) as stream:
        assert server.process is not None
        began = time.monotonic()
        server.process.terminate()
        server.process.wait(timeout=10)
        assert time.monotonic() - began < 5
        assert stream.ended.wait(5)


def management_client(server: Server, scopes: list[str]) -> tuple[str, str, str]:
    """A client granted ``scopes`` of the management API: its id, its grant's id, a token."""
    with server.api() as api:
        client = api.post("/clients", json={"name": unique("reader")}).json()
        grant = api.post(
            "/client-grants",
            json={
                "client_id": client["client_id"],
                "audience": server.management_audience,
                "scope": scopes,
            },
        )
        assert grant.status_code == 201, grant.text
    issued = server.token(
        client["client_id"], client["client_secret"], audience=server.management_audience
    )
    assert issued.status_code == 200, issued.text
    return client["client_id"], grant.json()["id"], issued.json()["access_token"]


def admin_reader(server: Server) -> tuple[str, str]:
    """An admin user allowed ``read:logs``, signed in to the dashboard: its id, a token."""
    admin = new_admin(server, ["read:logs"])
    signed = sign_in(server, admin["email"])
    assert signed.status_code == 200, signed.text
    return admin["id"], admin_token(server, signed)


@pytest.mark.parametrize(
    ("taken_away", "reason"),
    [
        ("client", "client_deleted"),
        ("grant", "grant_revoked"),
        ("scope", "insufficient_scope"),
        ("admin", "admin_deleted"),
        ("key", "key_revoked"),
    ],
)
def test_a_stream_ends_when_its_access_is_taken_away(
    server: Server, taken_away: str, reason: str, tmp_path: Path
) -> None:
    """Within the cache bound, as a request with the same token would be refused."""
    with contextlib.ExitStack() as own:
        if taken_away == "key":
            # Revoking the signing key refuses every token signed with it: not on the
            # server the other tests share.
            server = own.enter_context(run_server(tmp_path, server.backend))
        _stream_ends_when_access_is_taken_away(server, taken_away, reason)


def _stream_ends_when_access_is_taken_away(server: Server, taken_away: str, reason: str) -> None:
    machine = create_machine(server)
    create_hook(server, QUICK)
    revoke: tuple[str, str, dict[str, Any] | None] | None = None
    if taken_away == "admin":
        admin_id, reader_token = admin_reader(server)
        revoke = ("DELETE", f"/admins/{admin_id}", None)
    else:
        client_id, grant_id, reader_token = management_client(server, ["read:logs", "read:hooks"])
        if taken_away != "key":
            revoke = {
                "client": ("DELETE", f"/clients/{client_id}", None),
                "grant": ("DELETE", f"/client-grants/{grant_id}", None),
                "scope": ("PATCH", f"/client-grants/{grant_id}", {"scope": ["read:hooks"]}),
            }[taken_away]
    time.sleep(CACHE_TTL * 2)
    with Subscriber(server.url + "/api/v2/logs/stream", reader_token) as stream:
        assert stream.status == 200
        assert token(server, machine).status_code == 200
        stream.next("console")  # it streams while access lasts
        if revoke is None:
            rotated = server.cli("keys", "rotate", "--revoke-previous")
            assert rotated.returncode == 0, rotated.stderr
        else:
            method, path, body = revoke
            with server.api() as api:
                assert api.request(method, path, json=body).is_success
        taken_at = time.monotonic()
        end = stream.next("end", timeout=10)
        assert end.data["reason"] == reason
        assert end.data["message"]
        assert end.received_at - taken_at < 5 * CACHE_TTL
        assert stream.ended.wait(5)
    refused = httpx.get(
        server.url + "/api/v2/logs/stream", headers={"Authorization": f"Bearer {reader_token}"}
    )
    assert refused.status_code == (403 if taken_away == "scope" else 401)
