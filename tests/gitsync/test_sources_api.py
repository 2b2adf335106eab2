"""The git sources API: what it accepts and refuses, and what it never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Server, unique
from tests.gitsync.repos import Repo, finished


def _create(server: Server, **fields: object) -> tuple[int, dict[str, object]]:
    body = {"name": unique("src"), "repository": "https://git.example.com/team/hooks.git"}
    with server.api() as api:
        response = api.post("/git-sources", json={**body, **fields})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"repository": "file:///srv/hooks.git"}, "AUTHHOOKS_GIT_ALLOW_LOCAL_REPOSITORIES"),
        ({"repository": "https://127.0.0.1/x.git"}, "loopback"),
        ({"repository": "https://localhost/x.git"}, "loopback"),
        # Loopback and private networks in every spelling a resolver takes.
        ({"repository": "https://127.1/x.git"}, "private-network"),
        ({"repository": "https://2130706433/x.git"}, "private-network"),
        ({"repository": "https://0x7f000001/x.git"}, "private-network"),
        ({"repository": "https://[::ffff:127.0.0.1]/x.git"}, "private-network"),
        ({"repository": "https://10.1.2.3/x.git"}, "private-network"),
        ({"repository": "https://169.254.169.254/x.git"}, "private-network"),
        ({"repository": "ssh://git@192.168.0.7/x.git"}, "private-network"),
        ({"repository": "git@127.1:x.git"}, "private-network"),
        ({"repository": "http://git.example.com/x.git"}, "not allowed"),
        ({"repository": "ext::sh -c touch% /tmp/pwned"}, "repository"),
        ({"repository": "ext::sh%20-c%20id"}, "not allowed"),
        ({"repository": "fd::17"}, "not allowed"),
        ({"repository": "-uhelp"}, "repository"),
        ({"repository": "https://user:pw@git.example.com/x.git"}, "credentials.token"),
        ({"path": "../outside"}, "path"),
        ({"path": "/etc"}, "path"),
        ({"branch": "--upload-pack=x"}, "branch"),
        ({"branch": "main..other"}, "branch"),
        ({"credentials": {"password": "x"}}, "credentials"),
        ({"credentials": {"ssh_private_key": "not a key"}}, "ssh_private_key"),
        ({"webhook_secret": "short"}, "webhook_secret"),
        ({"poll_interval": 5}, "poll_interval"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_input_is_a_400_saying_what(
    server: Server, fields: dict[str, object], says: str
) -> None:
    status, body = _create(server, **fields)
    assert status == 400, body
    assert says in str(body["message"])


def test_credentials_and_the_secret_are_never_shown_again(server: Server) -> None:
    token = "ghp_" + "s3cr3t" * 6
    status, created = _create(server, credentials={"token": token}, webhook_secret="w" * 24)
    assert status == 201, created
    assert created["webhook_secret"] == "w" * 24
    assert created["credentials"] == {"kind": "token"}
    assert created["branch"] == "main"
    assert created["path"] == ""
    with server.api() as api:
        shown = api.get(f"/git-sources/{created['id']}")
        listed = api.get("/git-sources", params={"include_totals": "true", "per_page": 100})
        rotated = api.patch(f"/git-sources/{created['id']}", json={"rotate_webhook_secret": True})
        after = api.get(f"/git-sources/{created['id']}")
        clash = api.post(
            "/git-sources", json={"name": created["name"], "repository": created["repository"]}
        )
    for response in (shown, listed, rotated, after):
        assert response.status_code == 200, response.text
        assert token not in response.text
        assert "w" * 24 not in response.text
    assert shown.json()["webhook_secret"] is None
    assert listed.json()["total"] >= 1
    assert created["id"] in [s["id"] for s in listed.json()["git_sources"]]
    new_secret = rotated.json()["webhook_secret"]
    assert isinstance(new_secret, str)
    assert len(new_secret) >= 32
    assert new_secret not in after.text
    assert clash.status_code == 409, clash.text


def test_an_unreachable_repository_fails_with_gits_reason_and_no_token(
    server: Server, tmp_path: Path
) -> None:
    token = "glpat-" + "t0k3n" * 6
    status, created = _create(
        server, repository="https://git.invalid/team/hooks.git", credentials={"token": token}
    )
    assert status == 201, created
    with server.api() as api:
        synced = api.post(f"/git-sources/{created['id']}/sync")
        assert synced.status_code == 202, synced.text
        assert synced.json()["status"] == "queued"
    result = finished(server, str(created["id"]), synced.json()["id"])
    assert result["status"] == "failed", result
    assert result["error"].startswith("git fetch: ")
    assert "git.invalid" in result["error"]
    assert token not in str(result)


def test_a_file_repository_is_refused_by_a_default_server(server: Server, tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    status, body = _create(server, repository=repo.url)
    assert status == 400, body
    assert "file://" in str(body["message"])


def test_unknown_sources_are_404(server: Server) -> None:
    with server.api() as api:
        for method, path in (
            ("GET", "/git-sources/gs_nope"),
            ("PATCH", "/git-sources/gs_nope"),
            ("DELETE", "/git-sources/gs_nope"),
            ("POST", "/git-sources/gs_nope/sync"),
            ("GET", "/git-sources/gs_nope/deployments"),
        ):
            response = api.request(method, path, json={} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path, response.text)


def test_an_ssh_source_keeps_its_key_sealed_and_unshown(server: Server) -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    status, created = _create(
        server,
        repository="git@git.example.com:team/hooks.git",
        credentials={"ssh_private_key": key},
        ssh_known_hosts="git.example.com ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    )
    assert status == 201, created
    assert created["credentials"] == {"kind": "ssh_private_key"}
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in str(created)
    with server.api() as api:
        cleared = api.patch(f"/git-sources/{created['id']}", json={"credentials": None})
        renamed = api.patch(f"/git-sources/{created['id']}", json={"branch": "release/v2"})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["credentials"] is None
    assert renamed.json()["branch"] == "release/v2"


def test_deploying_from_git_takes_the_scopes_deploying_hooks_does(server: Server) -> None:
    body = {"name": unique("src"), "repository": "https://git.example.com/team/hooks.git"}
    with server.api("create:git_sources") as api:
        refused = api.post("/git-sources", json=body)
    assert refused.status_code == 403, refused.text
    assert "create:hooks delete:hooks update:hooks" in refused.json()["message"]
    status, created = _create(server)
    assert status == 201, created
    with server.api("update:git_sources") as api:
        assert api.patch(f"/git-sources/{created['id']}", json={"name": unique("n")}).is_success
        moved = api.patch(
            f"/git-sources/{created['id']}",
            json={"repository": "https://elsewhere.example.com/hooks.git"},
        )
        assert moved.status_code == 403, moved.text
        synced = api.post(f"/git-sources/{created['id']}/sync")
        assert synced.status_code == 403, synced.text
    with server.api() as api:
        assert api.get(f"/git-sources/{created['id']}/deployments").json() == []


def test_credentials_stay_with_the_host_they_were_given_for(server: Server) -> None:
    status, created = _create(server, credentials={"token": "ghp_" + "k" * 36})
    assert status == 201, created
    path = f"/git-sources/{created['id']}"
    with server.api() as api:
        same_host = api.patch(path, json={"repository": "https://git.example.com/team/other.git"})
        assert same_host.status_code == 200, same_host.text
        other_host = api.patch(path, json={"repository": "https://attacker.example/x.git"})
        assert other_host.status_code == 400, other_host.text
        assert "send its credentials again" in other_host.json()["message"]
        assert api.get(path).json()["repository"] == "https://git.example.com/team/other.git"
        anew = api.patch(
            path,
            json={"repository": "https://other.example/x.git", "credentials": None},
        )
        assert anew.status_code == 200, anew.text
        assert anew.json()["credentials"] is None
