"""Deployments in order and held while they run: an older push delivered last is
superseded, a lease is renewed while its process works and taken over when that
process dies, and old records are pruned."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import Server, run_server, serve_again, unique
from tests.gitsync.http_backend import Gate, git_http_server
from tests.gitsync.repos import (
    Repo,
    create_source,
    deliver,
    deployments,
    finished,
    git,
    hook_named,
    push_body,
    signed_headers,
)


def _webhook(source: dict[str, Any], sha: str) -> str:
    body = push_body(sha)
    answer = deliver(
        source["webhook_url"], body, signed_headers("github", source["webhook_secret"], body)
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued", answer.text
    return str(answer.json()["deployment_id"])


def _row(server: Server, deployment_id: str) -> models.GitDeployment:
    database = Database(server.database_url)
    try:
        with database.session() as session:
            row = session.get(models.GitDeployment, deployment_id)
            assert row is not None
            session.expunge(row)
            return row
    finally:
        database.dispose()


def _utc(when: datetime | None) -> datetime:
    assert when is not None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _wait(what: str, check: Any, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"waited in vain for {what}"
        time.sleep(0.2)
    return found


def test_an_older_push_delivered_last_is_superseded_and_a_branch_moved_back_deploys(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("order")
    repo.hook(name, "one", enabled=False)
    first = repo.push("one")
    repo.hook(name, "two", enabled=False)
    second = repo.push("two")
    source = create_source(git_server, repo.url)

    # The host delivers the second push before the first.
    newer = finished(git_server, source["id"], _webhook(source, second))
    assert newer["status"] == "succeeded", newer
    older = finished(git_server, source["id"], _webhook(source, first))
    assert older["status"] == "superseded", older
    assert f"older than {second[:12]}" in older["error"], older["error"]
    assert older["changes"] == []
    hook = hook_named(git_server, name)
    assert hook is not None
    assert '"two"' in hook["script"]
    assert hook["version"] == 1

    # A deployment queued before one that succeeded (its process died, say) is
    # skipped by that order alone, without a fetch.
    database = Database(git_server.database_url)
    try:
        with database.session() as session:
            deployed = session.get(models.GitDeployment, newer["id"])
            assert deployed is not None
            stale = models.GitDeployment(
                id="gd_" + secrets.token_hex(14),
                source_id=source["id"],
                ref="refs/heads/main",
                trigger="sync",
                status="queued",
                changes=[],
                created_at=deployed.created_at - timedelta(seconds=1),
            )
            session.add(stale)
            stale_id = stale.id
    finally:
        database.dispose()
    skipped = finished(git_server, source["id"], stale_id)
    assert skipped["status"] == "superseded", skipped
    assert "queued after this one" in skipped["error"], skipped["error"]
    assert skipped["commit"] is None  # never fetched

    # The branch moved back to the first commit on purpose: a sync deploys it.
    git(repo.work, "push", "-q", "--force", "origin", f"{first}:refs/heads/main")
    with git_server.api() as api:
        queued = api.post(f"/git-sources/{source['id']}/sync").json()
    back = finished(git_server, source["id"], queued["id"])
    assert back["status"] == "succeeded", back
    assert back["commit"] == first
    hook = hook_named(git_server, name)
    assert hook is not None
    assert '"one"' in hook["script"]


def test_a_source_keeps_its_newest_deployments_and_the_live_one(
    tmp_path: Path, backend: str
) -> None:
    repo = Repo(tmp_path / "repo")
    name = unique("kept")
    with run_server(
        tmp_path, backend, git_allow_local_repositories="true", git_keep_deployments="2"
    ) as server:
        source = create_source(server, repo.url)
        ids = []
        for n, marker in enumerate(("one", "two", "broken", "broken again")):
            repo.hook(name, marker.replace(" ", "-"), enabled=False)
            if marker.startswith("broken"):
                repo.write(f"hooks/{name}.py", f"def credentials_exchange(  # {n}\n")
            ids.append(_webhook(source, repo.push(marker)))
            assert finished(server, source["id"], ids[-1])["status"] in ("succeeded", "failed")

        # The two newest stay, and the one the live hooks came from.
        def pruned() -> list[dict[str, Any]] | None:
            found = deployments(server, source["id"])
            return found if len(found) == 3 else None

        kept = _wait("old deployments to be pruned", pruned)
        assert [d["id"] for d in kept] == [ids[3], ids[2], ids[1]]
        assert [d["status"] for d in kept] == ["failed", "failed", "succeeded"]


def test_a_deployment_is_held_while_its_process_lives_and_taken_over_when_it_dies(
    tmp_path: Path, backend: str
) -> None:
    token = "tok-" + secrets.token_hex(16)
    repo = Repo(tmp_path / "served")
    name = unique("leased")
    repo.hook(name, "leased", enabled=False)
    repo.push("leased")
    gate = Gate()
    with (
        git_http_server(tmp_path / "served", token, gate) as base,
        run_server(
            tmp_path, backend, git_allow_local_repositories="true", git_deployment_lease="10"
        ) as owner,
    ):
        source = create_source(owner, f"{base}/origin.git", credentials={"token": token})
        with owner.api() as api:
            first = api.post(f"/git-sources/{source['id']}/sync").json()["id"]
        _wait("the owner to fetch", lambda: gate.fetches == 1)
        claimed = _row(owner, first)
        assert claimed.status == "running"
        with serve_again(owner, tmp_path) as other:
            # Alive and working, past its first lease: the owner renewed it, and the
            # other process never took the deployment nor fetched.
            _wait(
                "the first lease to lapse and be renewed",
                lambda: (
                    datetime.now(UTC) > _utc(claimed.lease_until) + timedelta(seconds=2)
                    and _utc(_row(owner, first).lease_until) > _utc(claimed.lease_until)
                ),
                seconds=60,
            )
            held = _row(owner, first)
            assert (held.status, held.claim) == ("running", claimed.claim)
            assert gate.fetches == 1
            gate.open.set()
            assert finished(other, source["id"], first)["status"] == "succeeded"
            assert hook_named(other, name) is not None

            # The owner dies mid-deployment: the other process takes it up once
            # its lease lapses, and deploys it.
            gate.open.clear()
            fetched = gate.fetches
            with owner.api() as api:
                second = api.post(f"/git-sources/{source['id']}/sync").json()["id"]
            _wait("the owner to fetch again", lambda: gate.fetches == fetched + 1)
            dead = _row(owner, second)
            assert owner.process is not None
            owner.process.kill()
            owner.process.wait()
            _wait("the other process to fetch", lambda: gate.fetches == fetched + 2, 120)
            taken = _row(other, second)
            assert taken.status == "running"
            assert taken.claim != dead.claim
            gate.open.set()
            result = finished(other, source["id"], second)
            assert result["status"] == "succeeded", result
            assert result["trigger"] == "sync"
