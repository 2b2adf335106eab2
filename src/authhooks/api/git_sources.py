"""/api/v2/git-sources: repositories whose pushes deploy hooks (docs/git.md).

A source's webhook secret is shown once, when it is made (generated when
none is sent) or rotated; its credentials are write-only. Deployments are
queued by the webhook (web/git_webhooks.py), by ``POST .../sync`` and by
polling, and run in the background (gitsync/worker.py); their list is the
record of what was deployed, when, from which commit and by whom.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Annotated, Any, Literal

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends, Response
from pydantic import AfterValidator, Field, field_validator

from authhooks.api.auth import Caller, ensure_holds, require, services
from authhooks.api.models import Body, Out, Patch
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.errors import InvalidInput
from authhooks.gitsync import known_hosts, sources
from authhooks.gitsync.repository import check_repository, commit_link, is_ssh, origin
from authhooks.services import Services
from authhooks.storage import models
from authhooks.storage.models import utcnow

router = APIRouter(prefix="/git-sources", tags=["git sources"], route_class=StrictJSONRoute)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Repository = Annotated[str, Field(min_length=1, max_length=2048)]


def _branch(value: str) -> str:
    """A branch name git accepts, that no option or revision syntax can be read into."""
    if (
        value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
    ):
        raise ValueError(f"{value!r} is not a branch name")
    return value


Branch = Annotated[
    str,
    Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._/-]+$"),
    AfterValidator(_branch),
]
Secret = Annotated[
    str, Field(min_length=sources.MIN_SECRET_CHARS, max_length=sources.MAX_SECRET_CHARS)
]
PollInterval = Annotated[int, Field(ge=60, le=7 * 86400)]
CredentialsIn = dict[Literal["token", "ssh_private_key"], str]
KnownHosts = Annotated[str, Field(max_length=known_hosts.MAX_BYTES)]
KNOWN_HOSTS_HELP = (
    "OpenSSH known_hosts lines: the ssh repository's host keys, the only ones a fetch "
    "trusts; required for an ssh repository, refused for https"
)


def _known_hosts(repository: str, value: str | None) -> str | None:
    """The host keys a source with ``repository`` keeps; InvalidInput when they do not fit."""
    if value is not None:
        return known_hosts.check(value, repository)
    if is_ssh(repository):
        host, port = known_hosts.ssh_host(repository)
        raise InvalidInput(
            "ssh_known_hosts: required for an ssh repository: give the host's keys as "
            f"known_hosts lines (`ssh-keyscan{' -p ' + str(port) if port != 22 else ''} "
            f"{host}`, checked against the fingerprints your git host publishes)"
        )
    return None


def _path(value: str) -> str:
    """The folder holding hooks/, inside the repository: no .., no absolute path."""
    if value in ("", ".", "/"):
        return ""
    if "\\" in value or "\x00" in value or value.startswith("/"):
        raise ValueError("give a folder of the repository, relative to its root: infra/auth")
    parts = value.strip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("a path inside the repository: no '.', '..' or empty parts")
    return posixpath.join(*parts)


class SourceCreate(Body):
    name: Name
    repository: Repository
    branch: Branch = "main"
    path: Annotated[str, Field(max_length=1024)] = ""
    webhook_secret: Secret | None = None
    credentials: CredentialsIn | None = Field(
        default=None,
        description='{"token": "..."} (https) or {"ssh_private_key": "..."} (ssh); write-only',
    )
    ssh_known_hosts: KnownHosts | None = Field(default=None, description=KNOWN_HOSTS_HELP)
    poll_interval: PollInterval | None = Field(
        default=None, description="Seconds between polls of the branch; null: webhooks only"
    )

    _check_path = field_validator("path")(_path)


class SourceUpdate(Patch):
    nullable = frozenset({"credentials", "poll_interval", "ssh_known_hosts"})

    name: Name | None = None
    repository: Repository | None = None
    branch: Branch | None = None
    path: Annotated[str, Field(max_length=1024)] | None = None
    webhook_secret: Secret | None = None
    rotate_webhook_secret: bool | None = Field(
        default=None, description="true: a new secret is generated and shown once"
    )
    credentials: CredentialsIn | None = None
    ssh_known_hosts: KnownHosts | None = None
    poll_interval: PollInterval | None = None

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str | None) -> str | None:
        return None if value is None else _path(value)


class CredentialsOut(Out):
    kind: str


class SourceOut(Out):
    id: str
    name: str
    repository: str
    branch: str
    path: str
    webhook_url: str
    webhook_secret: str | None = Field(
        default=None, description="Only when it was just made: it is never shown again"
    )
    credentials: CredentialsOut | None
    ssh_known_hosts: str | None = Field(description=KNOWN_HOSTS_HELP)
    poll_interval: int | None
    hooks: list[dict[str, str]] = Field(description="The hooks it keeps: id and name")
    created_at: datetime
    updated_at: datetime


class DeploymentOut(Out):
    id: str
    source_id: str
    commit: str | None
    commit_url: str | None
    ref: str
    trigger: str
    author: str | None
    message: str | None
    status: str
    error: str | None
    changes: list[dict[str, Any]]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def webhook_url(found: Services, source_id: str) -> str:
    return f"{found.settings.issuer}git/webhooks/{source_id}"


def _out(
    found: Services, session: Any, source: models.GitSource, secret: str | None = None
) -> SourceOut:
    return SourceOut(
        id=source.id,
        name=source.name,
        repository=source.repository,
        branch=source.branch,
        path=source.path,
        webhook_url=webhook_url(found, source.id),
        webhook_secret=secret,
        credentials=CredentialsOut(kind=source.credential_kind) if source.credential_kind else None,
        ssh_known_hosts=source.ssh_known_hosts,
        poll_interval=source.poll_interval,
        hooks=[{"id": h.id, "name": h.name} for h in sources.owned_hooks(session, source.id)],
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


def deployment_out(row: models.GitDeployment, repository: str) -> DeploymentOut:
    return DeploymentOut(
        id=row.id,
        source_id=row.source_id,
        commit=row.commit,
        commit_url=commit_link(repository, row.commit) if row.commit else None,
        ref=row.ref,
        trigger=row.trigger,
        author=row.author,
        message=row.message,
        status=row.status,
        error=row.error,
        changes=row.changes,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _allow_local(found: Services) -> bool:
    return found.settings.git_allow_local_repositories


# A source creates, changes and deletes hooks with no caller at hand (a push, a
# poll): whoever says what it deploys, and from where, must hold what deploying
# hooks by hand takes.
HOOK_SCOPES = ("create:hooks", "update:hooks", "delete:hooks")
_WHERE_FROM = frozenset({"repository", "branch", "path", "credentials", "ssh_known_hosts"})


@router.post("", status_code=201, response_model=SourceOut, response_model_exclude_none=False)
def create_source(
    body: SourceCreate,
    caller: Annotated[Caller, Depends(require("create:git_sources"))],
    found: Annotated[Services, Depends(services)],
) -> SourceOut:
    ensure_holds(caller, HOOK_SCOPES, "create a git source, which deploys hooks")
    repository = check_repository(body.repository, allow_local=_allow_local(found))
    host_keys = _known_hosts(repository, body.ssh_known_hosts)
    credentials = sources.check_credentials(body.credentials)
    secret = body.webhook_secret or sources.generate_webhook_secret()
    now = utcnow()
    with found.database.session() as session:
        source = models.GitSource(
            id=sources.new_id("gs_"),
            name=body.name,
            repository=repository,
            branch=body.branch,
            path=body.path,
            ssh_known_hosts=host_keys,
            poll_interval=body.poll_interval,
            created_at=now,
            updated_at=now,
        )
        source.webhook_secret = sources.seal_webhook_secret(found.master_key, source.id, secret)
        sources.set_credentials(found.master_key, source, credentials)
        sources.create(session, source)
        # Shown once, whether generated or sent: the caller has it in hand either way.
        return _out(found, session, source, secret)


@router.get("", response_model=list[SourceOut] | dict[str, Any])
def list_sources(
    _: Annotated[Caller, Depends(require("read:git_sources"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
) -> Any:
    with found.database.session() as session:
        rows, total = sources.list_sources(session, offset=page.offset, limit=page.per_page)
        items = [_out(found, session, row) for row in rows]
    return page.shape("git_sources", items, total)


@router.get("/{source_id}", response_model=SourceOut)
def get_source(
    source_id: str,
    _: Annotated[Caller, Depends(require("read:git_sources"))],
    found: Annotated[Services, Depends(services)],
) -> SourceOut:
    with found.database.session() as session:
        return _out(found, session, sources.get(session, source_id))


@router.patch("/{source_id}", response_model=SourceOut)
def update_source(
    source_id: str,
    body: SourceUpdate,
    caller: Annotated[Caller, Depends(require("update:git_sources"))],
    found: Annotated[Services, Depends(services)],
) -> SourceOut:
    changes = body.model_dump(exclude_unset=True)
    if _WHERE_FROM & set(changes):
        ensure_holds(caller, HOOK_SCOPES, "change where a git source deploys hooks from")
    if "repository" in changes:
        check_repository(changes["repository"], allow_local=_allow_local(found))
    if changes.get("webhook_secret") and changes.get("rotate_webhook_secret"):
        raise InvalidInput("send webhook_secret or rotate_webhook_secret, not both")
    credentials = (
        sources.check_credentials(changes["credentials"]) if "credentials" in changes else None
    )
    with found.database.session() as session:
        source = sources.get(session, source_id)
        if (
            "repository" in changes
            and "credentials" not in changes
            and source.credentials is not None
            and origin(changes["repository"]) != origin(source.repository)
        ):
            # Credentials belong to the host they were given for: moved elsewhere
            # they would be handed to a host never meant to have them.
            raise InvalidInput(
                "credentials: the repository moves to another host; send its credentials "
                "again (or null for none)"
            )
        if "name" in changes:
            sources.check_name_free(session, changes["name"], source_id)
        if "repository" in changes or "ssh_known_hosts" in changes:
            # Checked against the repository it will have: a new host needs its keys.
            changes["ssh_known_hosts"] = _known_hosts(
                changes.get("repository", source.repository),
                changes.get("ssh_known_hosts", source.ssh_known_hosts),
            )
        shown: str | None = None
        secret = changes.pop("webhook_secret", None)
        if changes.pop("rotate_webhook_secret", None):
            secret = shown = sources.generate_webhook_secret()
        if secret is not None:
            source.webhook_secret = sources.seal_webhook_secret(found.master_key, source.id, secret)
        if "credentials" in changes:
            changes.pop("credentials")
            sources.set_credentials(found.master_key, source, credentials)
        for name, value in changes.items():
            setattr(source, name, value)
        source.updated_at = utcnow()
        return _out(found, session, source, shown)


@router.delete("/{source_id}", status_code=204)
def delete_source(
    source_id: str,
    _: Annotated[Caller, Depends(require("delete:git_sources"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    """Its hooks stay, editable again; its deployments' record goes with it."""
    with found.database.session() as session:
        sources.delete(session, source_id)
    found.lifecycle.secrets_changed()
    return Response(status_code=204)


@router.post("/{source_id}/detach", response_model=SourceOut)
def detach_source(
    source_id: str,
    _: Annotated[Caller, Depends(require("update:git_sources"))],
    found: Annotated[Services, Depends(services)],
) -> SourceOut:
    """Its hooks become hand-made hooks, editable in the API; the source stays."""
    with found.database.session() as session:
        source = sources.get(session, source_id)
        sources.release_hooks(session, source_id)
        return _out(found, session, source)


@router.post("/{source_id}/sync", status_code=202, response_model=DeploymentOut)
async def sync_source(
    source_id: str,
    caller: Annotated[Caller, Depends(require("update:git_sources"))],
    found: Annotated[Services, Depends(services)],
) -> DeploymentOut:
    """Deploy the branch's head now; the deployment runs in the background."""

    def queue() -> DeploymentOut:
        with found.database.session() as session:
            source = sources.get(session, source_id)
            ensure_holds(caller, HOOK_SCOPES, "deploy a git source's hooks")
            row, _ = sources.queue(session, source, trigger="sync")
            return deployment_out(row, source.repository)

    queued = await run_sync(queue)
    found.git_worker.nudge()
    return queued


@router.get("/{source_id}/deployments", response_model=list[DeploymentOut] | dict[str, Any])
def list_deployments(
    source_id: str,
    _: Annotated[Caller, Depends(require("read:git_sources"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
) -> Any:
    with found.database.session() as session:
        source = sources.get(session, source_id)
        rows, total = sources.list_deployments(
            session, source_id, offset=page.offset, limit=page.per_page
        )
        items = [deployment_out(row, source.repository) for row in rows]
    return page.shape("deployments", items, total)


@router.get("/{source_id}/deployments/{deployment_id}", response_model=DeploymentOut)
def get_deployment(
    source_id: str,
    deployment_id: str,
    _: Annotated[Caller, Depends(require("read:git_sources"))],
    found: Annotated[Services, Depends(services)],
) -> DeploymentOut:
    with found.database.session() as session:
        source = sources.get(session, source_id)
        row = sources.get_deployment(session, source_id, deployment_id)
        return deployment_out(row, source.repository)
