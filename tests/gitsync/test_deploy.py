"""A push deploys: a signed webhook, a real repository, a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, Server, create_machine, run_server, unique
from tests.gitsync.repos import (
    Repo,
    create_source,
    deployments,
    hook_named,
    push_and_deliver,
)


@pytest.fixture(scope="module", params=BACKENDS)
def git_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("git"), request.param, git_allow_local_repositories="true"
    ) as running:
        yield running


def test_a_push_deploys_its_hooks_and_each_version_names_its_commit(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("gh")
    repo.hook(name, "first")
    source = create_source(git_server, repo.url)
    assert source["webhook_url"].endswith(f"/git/webhooks/{source['id']}")
    assert len(source["webhook_secret"]) >= 32

    result = push_and_deliver(git_server, repo, source, "add a hook")

    assert result["status"] == "succeeded", result
    assert result["author"] == "Ada Pusher <ada@example.com>"
    assert result["changes"][0]["hook"] == name
    assert result["changes"][0]["action"] == "created"
    hook = hook_named(git_server, name)
    assert hook is not None
    assert hook["enabled"] is True
    assert hook["source_id"] == source["id"]
    with git_server.api() as api:
        versions = api.get(f"/hooks/{hook['id']}/versions").json()
    assert versions[0]["commit"] == result["commit"]
    assert versions[0]["source_id"] == source["id"]
    # Live: a token carries the claim the pushed code adds.
    machine = create_machine(git_server)
    token = git_server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert token.status_code == 200, token.text
    import jwt

    claims = jwt.decode(token.json()["access_token"], options={"verify_signature": False})
    assert claims["https://example.com/from"] == "first"
    assert len(deployments(git_server, source["id"])) == 1
