"""Git sources as stored, and their deployments queued and listed.

A source's webhook secret and credentials are sealed with the master key,
each bound to the source and its purpose; the API never shows them again
after the webhook secret's first showing. A deployment is a row: queued by
a webhook (at most once per delivery id and per commit, by unique
constraints every process respects), a sync or a poll, then claimed and run
by worker.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authhooks.errors import Conflict, InvalidInput, NotFound
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import bump_generation, page
from authhooks.storage.models import utcnow

MAX_SECRET_CHARS = 256
MIN_SECRET_CHARS = 16
MAX_CREDENTIAL_BYTES = 16 * 1024
CREDENTIAL_KINDS = ("token", "ssh_private_key")
STATUSES = ("queued", "running", "succeeded", "failed", "superseded")


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(14)


def _context(source_id: str, purpose: str) -> bytes:
    return f"git-source:{source_id}:{purpose}".encode()


def generate_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Credentials:
    kind: str  # "token" or "ssh_private_key"
    value: str


def seal_webhook_secret(master_key: MasterKey, source_id: str, secret: str) -> bytes:
    return master_key.encrypt(secret.encode(), _context(source_id, "webhook"))


def webhook_secret(master_key: MasterKey, source: models.GitSource) -> str:
    return master_key.decrypt(source.webhook_secret, _context(source.id, "webhook")).decode()


def set_credentials(
    master_key: MasterKey, source: models.GitSource, credentials: Credentials | None
) -> None:
    if credentials is None:
        source.credential_kind = None
        source.credentials = None
        return
    source.credential_kind = credentials.kind
    source.credentials = master_key.encrypt(
        credentials.value.encode(), _context(source.id, "credentials")
    )


def credentials(master_key: MasterKey, source: models.GitSource) -> Credentials | None:
    if source.credentials is None or source.credential_kind is None:
        return None
    value = master_key.decrypt(source.credentials, _context(source.id, "credentials"))
    return Credentials(source.credential_kind, value.decode())


def reseal(session: Session, old: MasterKey, new: MasterKey) -> int:
    """Seal every source's webhook secret and credentials with ``new`` (key rotation)."""
    count = 0
    for row in session.scalars(select(models.GitSource)):
        context = _context(row.id, "webhook")
        row.webhook_secret = new.encrypt(old.decrypt(row.webhook_secret, context), context)
        if row.credentials is not None:
            context = _context(row.id, "credentials")
            row.credentials = new.encrypt(old.decrypt(row.credentials, context), context)
        count += 1
    return count


def check_name_free(session: Session, name: str, source_id: str | None = None) -> None:
    query = select(models.GitSource.id).where(models.GitSource.name == name)
    if source_id is not None:
        query = query.where(models.GitSource.id != source_id)
    if session.scalar(query):
        raise Conflict(f"a git source named {name!r} exists already")


def create(session: Session, source: models.GitSource) -> models.GitSource:
    check_name_free(session, source.name)
    session.add(source)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a git source named {source.name!r} exists already") from None
    return source


def get(session: Session, source_id: str) -> models.GitSource:
    source = session.get(models.GitSource, source_id)
    if source is None:
        raise NotFound(f"no git source with id {source_id!r}")
    return source


def list_sources(
    session: Session, *, offset: int, limit: int
) -> tuple[list[models.GitSource], int]:
    query = select(models.GitSource).order_by(models.GitSource.created_at, models.GitSource.id)
    return page(session, query, offset, limit)


def delete(session: Session, source_id: str) -> None:
    """Delete the source and its deployments; its hooks stay, made editable again."""
    source = get(session, source_id)
    release_hooks(session, source_id)
    session.delete(source)


def release_hooks(session: Session, source_id: str) -> int:
    """The source's hooks become hand-made hooks (editable in the API): a detach."""
    released = session.execute(
        update(models.Hook)
        .where(models.Hook.source_id == source_id)
        .values(source_id=None, updated_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    bump_generation(session)
    return int(released or 0)


def owned_hooks(session: Session, source_id: str) -> list[models.Hook]:
    return list(
        session.scalars(
            select(models.Hook).where(models.Hook.source_id == source_id).order_by(models.Hook.name)
        )
    )


def source_name(session: Session, source_id: str) -> str:
    source = session.get(models.GitSource, source_id)
    return source.name if source is not None else source_id


def queue(
    session: Session,
    source: models.GitSource,
    *,
    trigger: str,
    commit: str | None = None,
    delivery_id: str | None = None,
    author: str | None = None,
    message: str | None = None,
) -> tuple[models.GitDeployment, bool]:
    """A deployment queued for ``source``, and whether it is new. A webhook's delivery
    id and commit are remembered: a second delivery of either queues nothing and
    answers the first deployment (a savepoint keeps the caller's transaction)."""
    row = models.GitDeployment(
        id=new_id("gd_"),
        source_id=source.id,
        commit=commit,
        ref=f"refs/heads/{source.branch}",
        trigger=trigger,
        delivery_id=delivery_id,
        dedupe_commit=commit if trigger == "webhook" else None,
        author=author,
        message=message,
        status="queued",
        changes=[],
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = _duplicate_of(session, source.id, delivery_id, commit)
        if found is None:  # the first one was deleted meanwhile: nothing to deploy twice
            raise Conflict("this delivery was seen already") from None
        return found, False
    return row, True


def _duplicate_of(
    session: Session, source_id: str, delivery_id: str | None, commit: str | None
) -> models.GitDeployment | None:
    table = models.GitDeployment
    for column, value in ((table.delivery_id, delivery_id), (table.dedupe_commit, commit)):
        if value is not None:
            found = session.scalar(
                select(table).where(table.source_id == source_id, column == value)
            )
            if found is not None:
                return found
    return None


def list_deployments(
    session: Session, source_id: str, *, offset: int, limit: int
) -> tuple[list[models.GitDeployment], int]:
    get(session, source_id)
    table = models.GitDeployment
    query = (
        select(table)
        .where(table.source_id == source_id)
        .order_by(table.created_at.desc(), table.id.desc())
    )
    return page(session, query, offset, limit)


def get_deployment(session: Session, source_id: str, deployment_id: str) -> models.GitDeployment:
    row = session.get(models.GitDeployment, deployment_id)
    if row is None or row.source_id != source_id:
        raise NotFound(f"git source {source_id!r} has no deployment {deployment_id!r}")
    return row


def check_credentials(value: Any) -> Credentials | None:
    """``{"token": ...}`` or ``{"ssh_private_key": ...}`` (or null: none)."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise InvalidInput('credentials: give {"token": "..."} or {"ssh_private_key": "..."}')
    ((kind, secret),) = value.items()
    if kind not in CREDENTIAL_KINDS:
        raise InvalidInput(f"credentials: unknown kind {kind!r}; give token or ssh_private_key")
    if not isinstance(secret, str) or not secret.strip():
        raise InvalidInput(f"credentials.{kind}: give a non-empty string")
    if len(secret.encode()) > MAX_CREDENTIAL_BYTES:
        raise InvalidInput(f"credentials.{kind}: longer than {MAX_CREDENTIAL_BYTES} bytes")
    if any(c in secret for c in "\x00") or (kind == "token" and any(c.isspace() for c in secret)):
        raise InvalidInput(f"credentials.{kind}: contains characters a {kind} cannot have")
    if kind == "ssh_private_key" and "PRIVATE KEY-----" not in secret:
        raise InvalidInput(
            "credentials.ssh_private_key: give the key in its PEM/OpenSSH text form "
            "(-----BEGIN OPENSSH PRIVATE KEY----- ...)"
        )
    if kind == "ssh_private_key" and not secret.endswith("\n"):
        secret += "\n"
    return Credentials(kind, secret)
