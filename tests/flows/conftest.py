"""A server for a module's flows, and hooks enabled on it for one test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from tests.conftest import BACKENDS, Server, run_server, unique

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
