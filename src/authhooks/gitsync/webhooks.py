"""A push webhook checked and read: GitHub, GitLab, Gitea and Forgejo.

The signature is checked before the body is parsed, in constant time:
GitHub's ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>``, Gitea's
and Forgejo's ``X-Gitea-Signature`` / ``X-Forgejo-Signature`` (the same
HMAC, hex, no prefix), GitLab's ``X-Gitlab-Token`` (the secret itself).
No I/O here: the web route hands over the headers and the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 5 * 1024 * 1024
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_ZERO = re.compile(r"^0+$")


class BadSignature(Exception):
    """Missing or wrong: the delivery is refused (401) and nothing is fetched."""


class BadPayload(Exception):
    """Signed, but not a push we can read (400)."""


@dataclass(frozen=True)
class Push:
    ref: str
    commit: str | None  # None: the branch was deleted
    delivery_id: str | None
    author: str | None
    message: str | None


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Other:
    event: str


Delivery = Push | Ping | Other


def _hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> str:
    """The sender's kind (github, gitea, gitlab) when the signature holds; BadSignature."""
    github = headers.get("x-hub-signature-256")
    if github is not None:
        expected = "sha256=" + _hmac(secret, body)
        if hmac.compare_digest(github.strip().lower().encode(), expected.encode()):
            return "github"
        raise BadSignature("X-Hub-Signature-256 does not match the body")
    gitea = headers.get("x-gitea-signature") or headers.get("x-forgejo-signature")
    if gitea is not None:
        if hmac.compare_digest(gitea.strip().lower().encode(), _hmac(secret, body).encode()):
            return "gitea"
        raise BadSignature("X-Gitea-Signature does not match the body")
    gitlab = headers.get("x-gitlab-token")
    if gitlab is not None:
        if hmac.compare_digest(gitlab.encode(), secret.encode()):
            return "gitlab"
        raise BadSignature("X-Gitlab-Token is not this source's webhook secret")
    raise BadSignature(
        "no signature: send X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea, "
        "Forgejo) or X-Gitlab-Token (GitLab)"
    )


def _event(headers: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(sender, event, delivery id) from the headers each sender uses."""
    for sender, event_header, delivery_header in (
        ("gitea", "x-gitea-event", "x-gitea-delivery"),
        ("gitea", "x-forgejo-event", "x-forgejo-delivery"),
        ("gitlab", "x-gitlab-event", "x-gitlab-event-uuid"),
        ("github", "x-github-event", "x-github-delivery"),
    ):
        if event_header in headers:
            return sender, headers[event_header].strip(), headers.get(delivery_header)
    return "unknown", "", None


def read(headers: Mapping[str, str], body: bytes) -> Delivery:
    """What a signed delivery says; BadPayload when a push cannot be read."""
    _, event, delivery_id = _event(headers)
    if event == "ping":
        return Ping()
    if event not in ("push", "Push Hook"):
        return Other(event or "none")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise BadPayload("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadPayload("the body is not a JSON object")
    ref = payload.get("ref")
    after = payload.get("after") or payload.get("checkout_sha")
    if not isinstance(ref, str) or not ref or len(ref) > 300:
        raise BadPayload("the push names no ref")
    if not isinstance(after, str) or not (_SHA.match(after) or _ZERO.match(after)):
        raise BadPayload("the push names no commit (after)")
    if delivery_id is not None and (len(delivery_id) > 128 or not delivery_id.isprintable()):
        delivery_id = None
    head = _head_commit(payload, after)
    author = _author(head) if head else None
    message = head.get("message") if head else None
    return Push(
        ref=ref,
        commit=None if _ZERO.match(after) or payload.get("deleted") is True else after,
        delivery_id=delivery_id,
        author=author,
        message=message[:10_000] if isinstance(message, str) else None,
    )


def _head_commit(payload: dict[str, Any], after: str) -> dict[str, Any] | None:
    head = payload.get("head_commit")
    if isinstance(head, dict):
        return head
    commits = payload.get("commits")
    if isinstance(commits, list):
        for commit in commits:
            if isinstance(commit, dict) and commit.get("id") == after:
                return commit
    return None


def _author(commit: dict[str, Any]) -> str | None:
    author = commit.get("author")
    if not isinstance(author, dict):
        return None
    name, email = author.get("name"), author.get("email")
    if isinstance(name, str) and isinstance(email, str):
        return f"{name} <{email}>"[:300]
    return name[:300] if isinstance(name, str) else None
