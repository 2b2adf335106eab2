"""A server for a module's flows, and hooks enabled on it for one test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from tests.conftest import BACKENDS, Server, run_server, unique
from tests.users.helpers import create_app, find_user, new_email, signup, wait_for

AddHook = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of the module's own: its hooks run for every request of their point."""
    with run_server(tmp_path_factory.mktemp("flows"), request.param) as running:
        yield running


@pytest.fixture
def add_hook(server: Server) -> Iterator[AddHook]:
    """Enable hooks for one test, and delete them after it."""
    created: list[str] = []

    def add(point: str, script: str, **fields: Any) -> dict[str, Any]:
        with server.api() as api:
            response = api.post(
                "/hooks",
                json={
                    "name": unique("flow"),
                    "triggerId": point,
                    "script": script,
                    "enabled": True,
                    **fields,
                },
            )
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
        hook: dict[str, Any] = response.json()
        return hook

    yield add
    with server.api() as api:
        for hook_id in created:
            api.delete(f"/hooks/{hook_id}")


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def delivered_console(server: Server, hook_id: str, point: str) -> tuple[str, str]:
    """Reach an asynchronous point: a signup, and for post-change-password a new
    password too; then wait for the hook's one delivered run. (The new user's
    email, the console text of that run.)"""
    email = new_email()
    assert signup(server, create_app(server)["client_id"], email).status_code == 200
    if point == "post-change-password":
        user = find_user(server, email)
        with server.api() as api:
            changed = api.patch(f"/users/{user['user_id']}", json={"password": "New-Horse-77"})
        assert changed.status_code == 200, changed.text

    def delivered() -> list[dict[str, Any]]:
        with server.api() as api:
            logs = api.get(f"/hooks/{hook_id}/logs").json()
        return [log for log in logs if log["outcome"] == "ok"]

    (log,) = wait_for(delivered)
    return email, " ".join(line["text"] for line in log["console"])
