"""The webhook: forged, duplicate, other-branch, oversized and unknown deliveries,
and two server processes on one PostgreSQL database deploying a push once."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, run_server, serve_again, unique
from tests.gitsync.repos import (
    Repo,
    create_source,
    deliver,
    deployments,
    finished,
    hook_named,
    push_body,
    signed_headers,
)


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_a_forged_or_unsigned_delivery_is_401_and_nothing_is_queued(
    git_server: Server, tmp_path: Path, kind: str
) -> None:
    repo = Repo(tmp_path)
    repo.hook(unique("forged"), "f", enabled=False)
    sha = repo.push("first")
    source = create_source(git_server, repo.url)
    body = push_body(sha)
    forged = deliver(
        source["webhook_url"], body, signed_headers(kind, "not-the-secret-at-all", body)
    )
    assert forged.status_code == 401, forged.text
    assert forged.json()["error"] == "bad_signature"
    # Signed, then changed on the way: the signature no longer matches.
    headers = signed_headers(kind, source["webhook_secret"], body)
    if kind != "gitlab":
        tampered = deliver(source["webhook_url"], body.replace(b"main", b"mair"), headers)
        assert tampered.status_code == 401, tampered.text
    unsigned = deliver(source["webhook_url"], body, {"X-GitHub-Event": "push"})
    assert unsigned.status_code == 401, unsigned.text
    assert deployments(git_server, source["id"]) == []


def test_duplicate_deliveries_deploy_once(git_server: Server, tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    name = unique("dup")
    repo.hook(name, "d", enabled=False)
    sha = repo.push("first")
    source = create_source(git_server, repo.url)
    body = push_body(sha)
    headers = signed_headers("github", source["webhook_secret"], body, delivery="delivery-1")
    first = deliver(source["webhook_url"], body, headers)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "queued"
    again = deliver(source["webhook_url"], body, headers)  # the same delivery, redelivered
    assert again.status_code == 202, again.text
    assert again.json() == {"status": "duplicate", "deployment_id": first.json()["deployment_id"]}
    # Another delivery of the same commit (the host's retry, a second hook): once.
    other = deliver(
        source["webhook_url"], body, signed_headers("gitea", source["webhook_secret"], body)
    )
    assert other.json()["status"] == "duplicate", other.text
    assert finished(git_server, source["id"], first.json()["deployment_id"])["status"] == (
        "succeeded"
    )
    assert len(deployments(git_server, source["id"])) == 1
    hook = hook_named(git_server, name)
    assert hook is not None
    with git_server.api() as api:
        assert len(api.get(f"/hooks/{hook['id']}/versions").json()) == 1


def test_other_branches_pings_and_other_events_are_acknowledged_and_ignored(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    sha = repo.push("first")
    source = create_source(git_server, repo.url)
    secret = source["webhook_secret"]
    body = push_body(sha, branch="feature")
    ignored = deliver(source["webhook_url"], body, signed_headers("github", secret, body))
    assert ignored.status_code == 202, ignored.text
    assert ignored.json()["status"] == "ignored"
    assert "refs/heads/feature" in ignored.json()["reason"]
    ping_body = b'{"zen": "Keep it logically awesome."}'
    ping = signed_headers("github", secret, ping_body) | {"X-GitHub-Event": "ping"}
    pong = deliver(source["webhook_url"], ping_body, ping)
    assert (pong.status_code, pong.json()) == (200, {"status": "pong"})
    issue = signed_headers("github", secret, ping_body) | {"X-GitHub-Event": "issues"}
    assert deliver(source["webhook_url"], ping_body, issue).json()["status"] == "ignored"
    deleted = push_body("0" * 40)
    gone = deliver(source["webhook_url"], deleted, signed_headers("github", secret, deleted))
    assert gone.json()["status"] == "ignored"
    not_json = b"{not json"
    bad = deliver(source["webhook_url"], not_json, signed_headers("github", secret, not_json))
    assert bad.status_code == 400, bad.text
    assert deployments(git_server, source["id"]) == []


def test_unknown_sources_are_answered_as_forgeries_and_oversized_bodies_refused(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    source = create_source(git_server, repo.url)
    body = push_body("a" * 40)
    for kind in ("github", "gitlab", "gitea", "forgejo"):
        headers = signed_headers(kind, "x" * 20, body, delivery="same")
        unknown = deliver(git_server.url + "/git/webhooks/gs_nope", body, headers)
        known = deliver(source["webhook_url"], body, headers)
        # Nothing tells a prober which ids exist: the same 401 as a wrong signature.
        assert unknown.status_code == known.status_code == 401, (kind, unknown.text)
        assert unknown.json() == known.json()
    unsigned = deliver(git_server.url + "/git/webhooks/gs_nope", body, {})
    assert unsigned.status_code == 401, unsigned.text
    assert unsigned.json() == deliver(source["webhook_url"], body, {}).json()
    huge = b"{" + b" " * (6 * 1024 * 1024) + b"}"
    response = httpx.post(git_server.url + "/git/webhooks/gs_nope", content=huge, timeout=30)
    assert response.status_code == 413, response.text


def test_two_server_processes_receive_the_same_push_and_deploy_it_once(
    tmp_path: Path, backend: str
) -> None:
    """Two processes on one database (PostgreSQL: as two nodes would be)."""
    repo = Repo(tmp_path / "repo")
    name = unique("twice")
    repo.hook(name, "t", enabled=False)
    sha = repo.push("first")
    with (
        run_server(tmp_path, backend, git_allow_local_repositories="true") as one,
        serve_again(one, tmp_path) as two,
    ):
        source = create_source(one, repo.url)
        body = push_body(sha)
        # The host delivers twice (a retry), once to each process, at the same moment.
        sends = [
            (server, signed_headers("github", source["webhook_secret"], body, delivery=f"d-{n}"))
            for n, server in enumerate((one, two, one, two))
        ]
        with concurrent.futures.ThreadPoolExecutor(len(sends)) as pool:
            answers = list(
                pool.map(
                    lambda send: deliver(
                        send[0].url + f"/git/webhooks/{source['id']}", body, send[1]
                    ),
                    sends,
                )
            )
        assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers]
        statuses = sorted(answer.json()["status"] for answer in answers)
        assert statuses == ["duplicate", "duplicate", "duplicate", "queued"]
        queued = next(a.json() for a in answers if a.json()["status"] == "queued")
        assert finished(two, source["id"], queued["deployment_id"])["status"] == "succeeded"
        # A sync queued through each process: each runs once, one after the other.
        with one.api() as api_one, two.api() as api_two:
            syncs = [
                api.post(f"/git-sources/{source['id']}/sync").json()["id"]
                for api in (api_one, api_two)
            ]
        results = [finished(one, source["id"], sync) for sync in syncs]
        assert [r["status"] for r in results] == ["succeeded", "succeeded"]
        assert results[0]["finished_at"] <= results[1]["started_at"] or (
            results[1]["finished_at"] <= results[0]["started_at"]
        )
        hook = hook_named(one, name)
        assert hook is not None
        with one.api() as api:
            versions = api.get(f"/hooks/{hook['id']}/versions").json()
        assert len(versions) == 1
        assert len(deployments(one, source["id"])) == 3
