"""A push deploys: a signed webhook, a real repository, a real server."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import pytest

from tests.conftest import Server, create_machine, run_server, unique
from tests.gitsync.http_backend import git_http_server
from tests.gitsync.repos import (
    PYTHON_HOOK,
    Repo,
    create_source,
    deliver,
    deployments,
    finished,
    git,
    hook_named,
    push_and_deliver,
    push_body,
    signed_headers,
)


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
    assert result["changes"][0]["hook_id"] == hook["id"]
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


@pytest.mark.parametrize("kind", ["gitlab", "gitea", "forgejo"])
def test_gitlab_gitea_and_forgejo_pushes_deploy(
    git_server: Server, tmp_path: Path, kind: str
) -> None:
    repo = Repo(tmp_path)
    name = unique(kind)
    repo.hook(name, kind, enabled=False)
    source = create_source(git_server, repo.url)
    result = push_and_deliver(git_server, repo, source, f"from {kind}", kind=kind)
    assert result["status"] == "succeeded", result
    assert result["message"] == f"from {kind}"
    assert hook_named(git_server, name) is not None


def test_a_broken_commit_changes_nothing_and_says_why_then_a_fix_deploys(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    kept, added = unique("kept"), unique("added")
    repo.hook(kept, "one", enabled=False)
    source = create_source(git_server, repo.url)
    assert push_and_deliver(git_server, repo, source, "first")["status"] == "succeeded"
    before = hook_named(git_server, kept)
    assert before is not None

    # One good change and one broken file in the same commit: neither goes live.
    repo.hook(kept, "two", enabled=False)
    repo.hook(added, "three", enabled=False)
    repo.write(f"hooks/{added}.py", "def credentials_exchange(client, scope, audience, context)\n")
    failed = push_and_deliver(git_server, repo, source, "broken")
    assert failed["status"] == "failed", failed
    assert f"hooks/{added}.py" in failed["error"]
    assert "line 1" in failed["error"]
    assert failed["changes"] == []
    after = hook_named(git_server, kept)
    assert after is not None
    assert (after["version"], after["script"]) == (before["version"], before["script"])
    assert hook_named(git_server, added) is None

    repo.hook(added, "three", enabled=False)
    fixed = push_and_deliver(git_server, repo, source, "fixed")
    assert fixed["status"] == "succeeded", fixed
    actions = {change["hook"]: change["action"] for change in fixed["changes"]}
    assert actions == {kept: "updated", added: "created"}
    now = hook_named(git_server, kept)
    assert now is not None
    assert now["version"] == before["version"] + 1
    assert '"two"' in now["script"]
    listed = deployments(git_server, source["id"])
    assert [d["status"] for d in listed] == ["succeeded", "failed", "succeeded"]
    assert listed[0]["commit"] == fixed["commit"]


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {"hooks/{n}.json": '{"triggerId": "credentials-exchange", "timeout_ms": 1}'},
            "timeout_ms",
        ),
        ({"hooks/{n}.json": "{not json"}, "not JSON"),
        ({"hooks/{n}.json": '{"triggerId": "no-such-point"}'}, "triggerId"),
        ({"hooks/{n}.json": '{"triggerId": "credentials-exchange", "colour": 1}'}, "colour"),
    ],
    ids=["bad-field", "not-json", "unknown-point", "unknown-field"],
)
def test_a_bad_json_file_fails_the_deployment_naming_it(
    git_server: Server, tmp_path: Path, files: dict[str, str], reason: str
) -> None:
    repo = Repo(tmp_path)
    name = unique("bad")
    repo.hook(name, "x")
    for path, text in files.items():
        repo.write(path.format(n=name), text)
    source = create_source(git_server, repo.url)
    result = push_and_deliver(git_server, repo, source, "bad json")
    assert result["status"] == "failed", result
    assert f"hooks/{name}.json" in result["error"]
    assert reason in result["error"]
    assert hook_named(git_server, name) is None


def test_removal_deletes_only_the_sources_own_hooks_and_a_name_clash_fails(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    gone, stays = unique("gone"), unique("stays")
    repo.hook(gone, "g", enabled=False)
    repo.hook(stays, "s", enabled=False)
    source = create_source(git_server, repo.url)
    assert push_and_deliver(git_server, repo, source, "two hooks")["status"] == "succeeded"
    by_hand = unique("by-hand")
    with git_server.api() as api:
        made = api.post(
            "/hooks",
            json={
                "name": by_hand,
                "script": PYTHON_HOOK % "hand",
                "triggerId": "credentials-exchange",
            },
        )
        assert made.status_code == 201, made.text

    repo.remove(f"hooks/{gone}.json")
    repo.remove(f"hooks/{gone}.py")
    removed = push_and_deliver(git_server, repo, source, "remove one")
    assert removed["status"] == "succeeded", removed
    assert [(c["hook"], c["action"]) for c in removed["changes"]] == [(gone, "deleted")]
    assert hook_named(git_server, gone) is None
    assert hook_named(git_server, stays) is not None
    assert hook_named(git_server, by_hand) is not None

    # A hook made by hand is never taken over: the clash fails the whole commit.
    repo.hook(by_hand, "taken", enabled=False)
    repo.hook(unique("new"), "n", enabled=False)
    clash = push_and_deliver(git_server, repo, source, "clash")
    assert clash["status"] == "failed", clash
    assert f"hooks/{by_hand}.json" in clash["error"]
    assert "made by hand" in clash["error"]
    hand = hook_named(git_server, by_hand)
    assert hand is not None
    assert '"hand"' in hand["script"]
    assert hand["source_id"] is None


def test_a_hook_whose_point_changed_fails_the_deployment(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("point")
    repo.hook(name, "p", enabled=False)
    source = create_source(git_server, repo.url)
    assert push_and_deliver(git_server, repo, source, "first")["status"] == "succeeded"
    repo.write(f"hooks/{name}.json", '{"triggerId": "post-change-password"}')
    repo.write(f"hooks/{name}.py", "def post_change_password(user, context):\n    return None\n")
    result = push_and_deliver(git_server, repo, source, "moved")
    assert result["status"] == "failed", result
    assert "cannot change its point" in result["error"]
    hook = hook_named(git_server, name)
    assert hook is not None
    assert hook["triggerId"] == "credentials-exchange"


def test_hooks_a_source_keeps_are_read_only_until_it_is_deleted(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("owned")
    repo.hook(name, "o", enabled=False, secrets={"API_KEY": "$API_KEY"})
    source = create_source(git_server, repo.url)
    assert push_and_deliver(git_server, repo, source, "first")["status"] == "succeeded"
    hook = hook_named(git_server, name)
    assert hook is not None
    with git_server.api() as api:
        for method, path, body in (
            ("PATCH", f"/hooks/{hook['id']}", {"enabled": True}),
            ("DELETE", f"/hooks/{hook['id']}", None),
            ("POST", f"/hooks/{hook['id']}/versions/1/deploy", None),
        ):
            refused = api.request(method, path, json=body)
            assert refused.status_code == 409, (method, refused.text)
            assert f"managed by git source {source['name']!r}" in refused.json()["message"]
        # Secrets are never in git: they are set here, on a hook the source keeps.
        assert api.post(f"/hooks/{hook['id']}/secrets", json={"API_KEY": "v"}).status_code == 201

        assert api.delete(f"/git-sources/{source['id']}").status_code == 204
        assert api.get(f"/git-sources/{source['id']}").status_code == 404
        patched = api.patch(f"/hooks/{hook['id']}", json={"order": 5})
        assert patched.status_code == 200, patched.text
        assert patched.json()["source_id"] is None


def test_a_missing_secret_fails_naming_it_and_a_sync_after_setting_it_deploys(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("secret")
    # Added disabled, the hook can exist before its secret is set.
    repo.hook(name, "s", enabled=False, secrets={"SLACK_URL": "$SLACK_URL"})
    source = create_source(git_server, repo.url)
    assert push_and_deliver(git_server, repo, source, "add")["status"] == "succeeded"
    repo.hook(name, "s", enabled=True, secrets={"SLACK_URL": "$SLACK_URL"})
    missing = push_and_deliver(git_server, repo, source, "enable")
    assert missing["status"] == "failed", missing
    assert "SLACK_URL" in missing["error"]
    assert f"hooks/{name}.json" in missing["error"]
    hook = hook_named(git_server, name)
    assert hook is not None
    assert hook["enabled"] is False

    with git_server.api() as api:
        assert (
            api.post(f"/hooks/{hook['id']}/secrets", json={"SLACK_URL": "https://x"}).status_code
            == 201
        )
        synced = api.post(f"/git-sources/{source['id']}/sync")
    assert synced.status_code == 202, synced.text
    result = finished(git_server, source["id"], synced.json()["id"])
    assert result["status"] == "succeeded", result
    assert result["trigger"] == "sync"
    enabled = hook_named(git_server, name)
    assert enabled is not None
    assert enabled["enabled"] is True


def test_hooks_in_a_folder_of_the_repository(git_server: Server, tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    name = unique("nested")
    repo.hook(name, "n", folder="infra/auth", enabled=False)
    source = create_source(git_server, repo.url, path="infra/auth")
    assert source["path"] == "infra/auth"
    assert push_and_deliver(git_server, repo, source, "nested")["status"] == "succeeded"
    assert hook_named(git_server, name) is not None


def test_a_symlink_out_of_the_repository_and_a_huge_file_fail(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("link")
    repo.hook(name, "l", enabled=False)
    (repo.work / "hooks" / f"{name}.py").unlink()
    (repo.work / "hooks" / f"{name}.py").symlink_to("../../../../etc/passwd")
    source = create_source(git_server, repo.url)
    linked = push_and_deliver(git_server, repo, source, "link out")
    assert linked["status"] == "failed", linked
    assert "symlink pointing outside the repository" in linked["error"]
    assert hook_named(git_server, name) is None

    (repo.work / "hooks" / f"{name}.py").unlink()
    repo.write(f"hooks/{name}.py", "# " + "x" * (2 * 1024 * 1024) + "\n")
    huge = push_and_deliver(git_server, repo, source, "huge")
    assert huge["status"] == "failed", huge
    assert f"hooks/{name}.py" in huge["error"]
    assert "bytes" in huge["error"]
    assert hook_named(git_server, name) is None


def test_a_polled_source_deploys_its_branch_head_without_a_webhook(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("polled")
    repo.hook(name, "p", enabled=False)
    sha = repo.push("polled")
    # A source that has never been polled is polled at once, then every interval.
    source = create_source(git_server, repo.url, poll_interval=3600)
    deadline = time.monotonic() + 120
    while not (found := deployments(git_server, source["id"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [d["trigger"] for d in found] == ["poll"]
    result = finished(git_server, source["id"], found[0]["id"])
    assert result["status"] == "succeeded", result
    assert result["commit"] == sha
    assert hook_named(git_server, name) is not None


def test_a_token_reaches_git_and_a_wrong_one_fails_without_being_echoed(
    git_server: Server, tmp_path: Path
) -> None:
    token = "tok-" + secrets.token_hex(16)
    repo = Repo(tmp_path / "served")
    name = unique("private")
    repo.hook(name, "private", enabled=False)
    repo.push("private")
    with git_http_server(tmp_path / "served", token) as base:
        url = f"{base}/origin.git"
        wrong = create_source(git_server, url, credentials={"token": "wrong-" + token})
        with git_server.api() as api:
            queued = api.post(f"/git-sources/{wrong['id']}/sync").json()
        refused = finished(git_server, wrong["id"], queued["id"])
        assert refused["status"] == "failed", refused
        assert "git fetch" in refused["error"]
        assert "Authentication failed" in refused["error"]
        assert token not in str(refused)
        assert hook_named(git_server, name) is None

        right = create_source(git_server, url, credentials={"token": token})
        with git_server.api() as api:
            queued = api.post(f"/git-sources/{right['id']}/sync").json()
        deployed = finished(git_server, right["id"], queued["id"])
        assert deployed["status"] == "succeeded", deployed
        assert hook_named(git_server, name) is not None


def test_a_repository_past_the_fetch_cap_fails_and_changes_nothing(
    tmp_path: Path, backend: str
) -> None:
    repo = Repo(tmp_path / "big")
    name = unique("big")
    repo.hook(name, "b", enabled=False)
    repo.write("assets/blob.bin", os.urandom(3 * 1024 * 1024).hex())
    with run_server(
        tmp_path,
        backend,
        git_allow_local_repositories="true",
        git_max_fetch_bytes=str(1024 * 1024),
    ) as capped:
        source = create_source(capped, repo.url)
        result = push_and_deliver(capped, repo, source, "big")
        assert result["status"] == "failed", result
        assert "larger than 1048576 bytes" in result["error"]
        assert hook_named(capped, name) is None


def test_a_detached_sources_hooks_are_editable_and_no_longer_its_own(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("detached")
    repo.hook(name, "d", enabled=False)
    source = create_source(git_server, repo.url)
    assert push_and_deliver(git_server, repo, source, "first")["status"] == "succeeded"
    hook = hook_named(git_server, name)
    assert hook is not None
    with git_server.api() as api:
        detached = api.post(f"/git-sources/{source['id']}/detach")
        assert detached.status_code == 200, detached.text
        assert detached.json()["hooks"] == []
        edited = api.patch(f"/hooks/{hook['id']}", json={"order": 7})
        assert edited.status_code == 200, edited.text
    # The hook is hand-made now: the source's next commit may not take it back.
    repo.hook(name, "again", enabled=False)
    clash = push_and_deliver(git_server, repo, source, "again")
    assert clash["status"] == "failed", clash
    assert "made by hand" in clash["error"]


def test_a_push_naming_a_commit_off_the_branch_deploys_nothing(
    git_server: Server, tmp_path: Path
) -> None:
    """Whoever signs a delivery names its commit: one the host serves from another
    branch (a pull request's, say) is not the branch's, and is not deployed."""
    repo = Repo(tmp_path / "repo")
    name = unique("off")
    repo.hook(name, "on-main")
    source = create_source(git_server, repo.url)
    assert push_and_deliver(git_server, repo, source, "main")["status"] == "succeeded"
    git(repo.work, "checkout", "-q", "-b", "feature")
    repo.hook(name, "on-feature")
    feature = repo.push("a feature", branch="feature")

    body = push_body(feature, branch="main")
    response = deliver(
        source["webhook_url"], body, signed_headers("github", source["webhook_secret"], body)
    )
    assert response.status_code == 202, response.text
    result = finished(git_server, source["id"], response.json()["deployment_id"])
    assert result["status"] == "failed", result
    assert "is not on branch main" in result["error"]
    hook = hook_named(git_server, name)
    assert hook is not None
    assert "on-main" in hook["script"]


def test_a_scheduled_hook_keeps_its_schedule_from_the_repository(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique("git-tick")
    repo.write(f"hooks/{name}.py", "def schedule(event, context):\n    pass\n")
    repo.write(f"hooks/{name}.json", '{"triggerId": "schedule"}')
    source = create_source(git_server, repo.url)
    refused = push_and_deliver(git_server, repo, source, "no schedule")
    assert refused["status"] == "failed", refused
    assert "needs a schedule" in refused["error"]
    assert hook_named(git_server, name) is None

    first = {"cron": "0 4 * * *", "timezone": "Europe/Paris"}
    repo.write(f"hooks/{name}.json", json.dumps({"triggerId": "schedule", "schedule": first}))
    assert push_and_deliver(git_server, repo, source, "nightly")["status"] == "succeeded"
    hook = hook_named(git_server, name)
    assert hook is not None
    assert hook["schedule"] == {**first, "catch_up": False}

    second = {"cron": "0 5 * * *", "timezone": "Europe/Paris", "catch_up": True}
    repo.write(f"hooks/{name}.json", json.dumps({"triggerId": "schedule", "schedule": second}))
    result = push_and_deliver(git_server, repo, source, "later, catching up")
    assert result["status"] == "succeeded", result
    assert result["changes"][0]["action"] == "updated"
    hook = hook_named(git_server, name)
    assert hook is not None
    assert hook["schedule"] == second
    assert hook["version"] == 1  # the code did not change
