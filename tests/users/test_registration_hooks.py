"""pre- and post-user-registration through a real signup: refusals, metadata,
and durable at-least-once delivery, including across a SIGKILL of the server."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import Server, run_server, serve_again, unique
from tests.users.helpers import create_app, find_user, new_email, signup, wait_for

DENY_EXAMPLE_ORG = """
from authhooks.hook import PreUserRegistrationError

def pre_user_registration(user, context):
    if user["email"].endswith("@example.org"):
        raise PreUserRegistrationError(
            "blocked domain " + user["email"], "Sign-ups from this domain are closed"
        )
    return {"user": {"app_metadata": {"plan": "free", "via": context["connection"]["name"]},
                     "user_metadata": {"checked": True}}}
"""

WELCOME = """
def post_user_registration(user, context):
    print("welcome", user["email"], context["event_id"], context["delivery"]["attempt"])
"""


def create_hook(server: Server, point: str, script: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={"name": unique("hook"), "script": script, "triggerId": point, **fields},
        )
        assert response.status_code == 201, response.text
        hook: dict[str, Any] = response.json()
        enabled = api.patch(f"/hooks/{hook['id']}", json={"enabled": True})
        assert enabled.status_code == 200, enabled.text
    return hook


def deliveries(server: Server, hook_id: str) -> list[dict[str, Any]]:
    with server.api() as api:
        response = api.get(f"/hooks/{hook_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def logs(server: Server, hook_id: str) -> list[dict[str, Any]]:
    with server.api() as api:
        response = api.get(f"/hooks/{hook_id}/logs")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def console_text(records: list[dict[str, Any]]) -> str:
    return "\n".join(line["text"] for record in records for line in record["console"])


@pytest.fixture
def solo(backend: str, tmp_path: Path) -> Any:
    """A server of its own: the tests below enable hooks for whole points."""
    with run_server(tmp_path, backend) as running:
        yield running


def test_pre_registration_refuses_and_sets_metadata(solo: Server) -> None:
    create_hook(solo, "pre-user-registration", DENY_EXAMPLE_ORG)
    welcome = create_hook(solo, "post-user-registration", WELCOME)
    app = create_app(solo)

    refused_email = new_email("example.org")
    refused = signup(solo, app["client_id"], refused_email)
    assert refused.status_code == 400, refused.text
    assert refused.json() == {
        "name": "BadRequestError",
        "code": "extensibility_error",
        "description": "Sign-ups from this domain are closed",
        "statusCode": 400,
        "error": "extensibility_error",
        "error_description": "Sign-ups from this domain are closed",
    }
    with solo.api() as api:
        assert api.get("/users", params={"email": refused_email}).json() == []
    assert deliveries(solo, welcome["id"]) == []

    email = new_email()
    accepted = signup(solo, app["client_id"], email, user_metadata={"referrer": "ad"})
    assert accepted.status_code == 200, accepted.text
    user = find_user(solo, email)
    assert user["app_metadata"] == {"plan": "free", "via": "Username-Password-Authentication"}
    assert user["user_metadata"] == {"referrer": "ad", "checked": True}


def test_refusal_log_gets_the_log_message_only(solo: Server) -> None:
    hook = create_hook(solo, "pre-user-registration", DENY_EXAMPLE_ORG)
    app = create_app(solo)
    email = new_email("example.org")
    assert signup(solo, app["client_id"], email).status_code == 400
    records = wait_for(lambda: logs(solo, hook["id"]))
    assert records[0]["outcome"] == "raised"
    assert "blocked domain " + email in records[0]["error"]


@pytest.mark.parametrize(
    "returned",
    [
        '{"user": {"app_metadata": "gold"}}',
        '{"user": {"app_metadata": {"a.b": 1}}}',
        '{"user": {"password": "x"}}',
        '"yes"',
    ],
)
def test_bad_hook_output_refuses_the_signup(solo: Server, returned: str) -> None:
    script = f"def pre_user_registration(user, context):\n    return {returned}\n"
    create_hook(solo, "pre-user-registration", script)
    welcome = create_hook(solo, "post-user-registration", WELCOME)
    app = create_app(solo)
    email = new_email()
    response = signup(solo, app["client_id"], email)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "extensibility_error"
    assert response.json()["description"] == "the signup was refused"
    with solo.api() as api:
        assert api.get("/users", params={"email": email}).json() == []
    assert deliveries(solo, welcome["id"]) == []


def test_crashing_hook_is_skipped_under_on_error_continue(solo: Server) -> None:
    crash = "def pre_user_registration(user, context):\n    raise KeyError('oops')\n"
    create_hook(solo, "pre-user-registration", crash, on_error="continue")
    app = create_app(solo)
    email = new_email()
    assert signup(solo, app["client_id"], email).status_code == 200
    assert find_user(solo, email)["app_metadata"] == {}


def test_hooks_never_see_the_password(solo: Server) -> None:
    spy = (
        "import json\n"
        "def pre_user_registration(user, context):\n"
        "    print(json.dumps([user, context]))\n"
    )
    hook = create_hook(solo, "pre-user-registration", spy)
    app = create_app(solo)
    from tests.users.helpers import PASSWORD

    assert signup(solo, app["client_id"], new_email()).status_code == 200
    records = wait_for(lambda: logs(solo, hook["id"]))
    assert PASSWORD not in console_text(records)
    assert '"connection"' in console_text(records)


def test_post_registration_runs_once_per_signup(solo: Server) -> None:
    welcome = create_hook(solo, "post-user-registration", WELCOME)
    app = create_app(solo)
    emails = [new_email() for _ in range(3)]
    for email in emails:
        assert signup(solo, app["client_id"], email).status_code == 200

    def all_delivered() -> list[dict[str, Any]] | None:
        found = deliveries(solo, welcome["id"])
        done = len(found) == 3 and all(item["status"] == "delivered" for item in found)
        return found if done else None

    delivered = wait_for(all_delivered)
    assert all(item["attempts"] == 1 for item in delivered)
    assert len({item["event_id"] for item in delivered}) == 3
    records = wait_for(lambda: (found := logs(solo, welcome["id"])) and len(found) == 3 and found)
    text = console_text(records)
    for email in emails:
        assert text.count("welcome " + email) == 1
    for item in delivered:
        assert f"event {item['event_id']}, delivery {item['id']}, attempt 1 of" in text


def test_failing_delivery_is_retried_then_marked_failed(backend: str, tmp_path: Path) -> None:
    flaky = (
        "def post_user_registration(user, context):\n"
        "    if context['delivery']['attempt'] < 2:\n"
        "        raise RuntimeError('CRM is down')\n"
        "    print('stored in CRM')\n"
    )
    broken = "def post_user_registration(user, context):\n    raise RuntimeError('always')\n"
    with run_server(tmp_path, backend, delivery_max_attempts=3) as server:
        retried = create_hook(server, "post-user-registration", flaky)
        failing = create_hook(server, "post-user-registration", broken)
        app = create_app(server)
        assert signup(server, app["client_id"], new_email()).status_code == 200

        def finished(hook_id: str) -> dict[str, Any] | None:
            found = deliveries(server, hook_id)
            return found[0] if found and found[0]["status"] != "pending" else None

        assert wait_for(lambda: finished(retried["id"]))["attempts"] == 2
        gave_up = wait_for(lambda: finished(failing["id"]))
        assert gave_up["status"] == "failed"
        assert gave_up["attempts"] == 3
        assert "always" in gave_up["last_error"]
        records = wait_for(
            lambda: (found := logs(server, failing["id"])) and len(found) == 3 and found
        )
        assert "no attempts left: the delivery is marked failed" in console_text(records)
        assert [record["outcome"] for record in records] == ["raised"] * 3


def test_delivery_survives_sigkill_of_the_server(backend: str, tmp_path: Path) -> None:
    # The first attempt hangs, so the server is killed while it holds the delivery.
    slow_first = (
        "import time\n"
        "def post_user_registration(user, context):\n"
        "    if context['delivery']['attempt'] == 1:\n"
        "        time.sleep(30)\n"
        "    print('delivered', context['event_id'])\n"
    )
    with run_server(tmp_path, backend, delivery_lease=2) as first:
        hook = create_hook(first, "post-user-registration", slow_first, timeout_ms=20000)
        app = create_app(first)
        email = new_email()
        assert signup(first, app["client_id"], email).status_code == 200
        wait_for(lambda: (found := deliveries(first, hook["id"])) and found[0]["attempts"] == 1)
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()

        with serve_again(first, tmp_path) as second:
            delivered = wait_for(
                lambda: (
                    (found := deliveries(second, hook["id"]))
                    and found[0]["status"] == "delivered"
                    and found[0]
                )
            )
            assert delivered["attempts"] == 2
            text = console_text(wait_for(lambda: logs(second, hook["id"])))
            assert text.count("delivered " + delivered["event_id"]) == 1
            assert len(find_user(second, email)["user_id"]) > 0


def test_sigkill_right_after_commit_still_delivers(backend: str, tmp_path: Path) -> None:
    # A short lease: the kill may catch a delivery claimed but not finished, which
    # the next server may take over only once its lease ran out.
    with run_server(tmp_path, backend, delivery_lease=2) as first:
        hook = create_hook(first, "post-user-registration", WELCOME)
        app = create_app(first)
        emails = [new_email() for _ in range(5)]
        for email in emails:
            assert signup(first, app["client_id"], email).status_code == 200
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        url = first.database_url
        database = Database(url)
        with database.session() as session:
            queued = session.scalars(
                select(models.HookDelivery).where(models.HookDelivery.hook_id == hook["id"])
            ).all()
            assert len(queued) == 5
        database.dispose()

        with serve_again(first, tmp_path) as second:
            done = wait_for(
                lambda: (
                    (found := deliveries(second, hook["id"]))
                    and all(item["status"] == "delivered" for item in found)
                    and found
                )
            )
            assert len(done) == 5
            assert len({item["event_id"] for item in done}) == 5


def test_a_long_delivery_keeps_its_claim(backend: str, tmp_path: Path) -> None:
    # The hook outlives the lease several times over: the lease is renewed while it
    # runs, so no other attempt starts beside it.
    slow = (
        "import time\n"
        "def post_user_registration(user, context):\n"
        "    time.sleep(4)\n"
        "    print('done', context['delivery']['attempt'])\n"
    )
    with run_server(tmp_path, backend, delivery_lease=1, workers=2) as server:
        hook = create_hook(server, "post-user-registration", slow, timeout_ms=10000)
        time.sleep(0.5)  # the other server process sees the new hook within cache_ttl
        app = create_app(server)
        assert signup(server, app["client_id"], new_email()).status_code == 200
        done = wait_for(
            lambda: (
                (found := deliveries(server, hook["id"]))
                and found[0]["status"] == "delivered"
                and found[0]
            )
        )
        assert done["attempts"] == 1
        time.sleep(1.5)  # any second run would have been recorded by now
        records = logs(server, hook["id"])
        assert len(records) == 1
        assert "done 1" in console_text(records)


def test_sigterm_hands_a_running_delivery_back_at_once(backend: str, tmp_path: Path) -> None:
    # A long lease: only the hand-back on a graceful stop lets the next server
    # take the delivery before a minute has passed.
    slow = (
        "import time\n"
        "def post_user_registration(user, context):\n"
        "    time.sleep(4)\n"
        "    print('delivered', context['event_id'], context['delivery']['attempt'])\n"
    )
    with run_server(tmp_path, backend, delivery_lease=60) as first:
        hook = create_hook(first, "post-user-registration", slow, timeout_ms=10000)
        app = create_app(first)
        assert signup(first, app["client_id"], new_email()).status_code == 200
        wait_for(lambda: (found := deliveries(first, hook["id"])) and found[0]["attempts"] == 1)
        assert first.process is not None
        first.process.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal: the exit says SIGTERM.
        assert first.process.wait(timeout=20) == -signal.SIGTERM

        began = time.monotonic()
        with serve_again(first, tmp_path) as second:
            delivered = wait_for(
                lambda: (
                    (found := deliveries(second, hook["id"]))
                    and found[0]["status"] == "delivered"
                    and found[0]
                ),
                timeout=30,
            )
        # Well inside the 60 s lease; and the interrupted run is not counted as an
        # attempt: the delivery that finished is attempt 1.
        assert time.monotonic() - began < 45
        assert delivered["attempts"] == 1, delivered
