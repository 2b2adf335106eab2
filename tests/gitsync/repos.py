"""Real git repositories for the tests: a bare repository reached by file://
(the server runs with AUTHHOOKS_GIT_ALLOW_LOCAL_REPOSITORIES), a work tree
pushed to it with the git CLI, and webhooks signed as each host signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server

_ENV = {
    "GIT_AUTHOR_NAME": "Ada Pusher",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Pusher",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

PYTHON_HOOK = """def credentials_exchange(client, scope, audience, context):
    return {"https://example.com/from": "%s"}
"""


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env={**os.environ, **_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout.strip()


class Repo:
    """A bare repository and a work tree that pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        self.work = root / "work"
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "--bare", "-q", str(self.bare))
        git(root, "init", "-q", str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")
        git(self.work, "remote", "add", "origin", self.url)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def write(self, path: str, text: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def remove(self, path: str) -> None:
        git(self.work, "rm", "-q", path)

    def hook(self, name: str, marker: str, *, folder: str = "", **settings: Any) -> None:
        prefix = f"{folder}/" if folder else ""
        document = {"triggerId": "credentials-exchange", "enabled": True, **settings}
        self.write(f"{prefix}hooks/{name}.json", json.dumps(document))
        self.write(f"{prefix}hooks/{name}.py", PYTHON_HOOK % marker)

    def push(self, message: str, branch: str = "main") -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return git(self.work, "rev-parse", "HEAD")


def push_body(sha: str, branch: str = "main", message: str = "a change") -> bytes:
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": sha,
            "head_commit": {
                "id": sha,
                "message": message,
                "author": {"name": "Ada Pusher", "email": "ada@example.com"},
            },
        }
    ).encode()


def signed_headers(
    kind: str, secret: str, body: bytes, delivery: str | None = None
) -> dict[str, str]:
    """Headers as GitHub, GitLab, Gitea or Forgejo send a push."""
    delivery = delivery or str(uuid.uuid4())
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if kind == "github":
        return {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={digest}",
        }
    if kind == "gitlab":
        return {
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Event-UUID": delivery,
            "X-Gitlab-Token": secret,
        }
    if kind == "forgejo":
        return {
            "X-Forgejo-Event": "push",
            "X-Forgejo-Delivery": delivery,
            "X-Forgejo-Signature": digest,
        }
    assert kind == "gitea"
    return {"X-Gitea-Event": "push", "X-Gitea-Delivery": delivery, "X-Gitea-Signature": digest}


def deliver(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=30
    )


def signed_ping(url: str, secret: str) -> int:
    """GitHub's ping, signed with ``secret``: the status the webhook answers."""
    body = b'{"zen": "Design for failure."}'
    headers = {**signed_headers("github", secret, body), "X-GitHub-Event": "ping"}
    return deliver(url, body, headers).status_code


def create_source(server: Server, repository: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/git-sources",
            json={"name": f"src-{secrets.token_hex(4)}", "repository": repository, **fields},
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


def deployments(server: Server, source_id: str) -> list[dict[str, Any]]:
    with server.api() as api:
        response = api.get(f"/git-sources/{source_id}/deployments")
    assert response.status_code == 200, response.text
    return list(response.json())


def finished(server: Server, source_id: str, deployment_id: str) -> dict[str, Any]:
    """The deployment once it has succeeded, failed or been superseded (waits at most two minutes:
    a deployment loads each hook in the sandbox, slow on a busy machine)."""
    deadline = time.monotonic() + 120
    while True:
        with server.api() as api:
            found = api.get(f"/git-sources/{source_id}/deployments/{deployment_id}").json()
        if found["status"] in ("succeeded", "failed", "superseded") or (
            time.monotonic() > deadline
        ):
            return dict(found)
        time.sleep(0.2)


def hook_named(server: Server, name: str) -> dict[str, Any] | None:
    with server.api() as api:
        hooks = api.get("/hooks", params={"per_page": 100}).json()
    return next((hook for hook in hooks if hook["name"] == name), None)


def push_and_deliver(
    server: Server, repo: Repo, source: dict[str, Any], message: str, kind: str = "github"
) -> dict[str, Any]:
    sha = repo.push(message)
    body = push_body(sha, message=message)
    response = deliver(
        source["webhook_url"], body, signed_headers(kind, source["webhook_secret"], body)
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued", response.text
    result = finished(server, source["id"], response.json()["deployment_id"])
    assert result["commit"] == sha
    return result
