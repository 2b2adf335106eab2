"""Hook secrets: encrypted at rest with the master key, each bound to its hook and name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.errors import Conflict, InvalidInput, NotFound
from authhooks.hooks import limits
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import bump_generation
from authhooks.storage.models import utcnow

NAME = limits.SECRET_NAME
MAX_SECRETS = limits.MAX_SECRETS
MAX_VALUE_BYTES = limits.MAX_SECRET_BYTES
# What the API shows instead of a value, as Auth0 did.
HIDDEN = "_VALUE_NOT_SHOWN_"


def _context(hook_id: str, name: str) -> bytes:
    return f"hook-secret:{hook_id}:{name}".encode()


def reseal(session: Session, old: MasterKey, new: MasterKey) -> int:
    """Seal every hook secret with ``new`` instead of ``old`` (master key rotation)."""
    count = 0
    for row in session.scalars(select(models.HookSecret)):
        context = _context(row.hook_id, row.name)
        row.value = new.encrypt(old.decrypt(row.value, context), context)
        count += 1
    return count


def names(session: Session, hook_id: str) -> list[str]:
    return list(
        session.scalars(
            select(models.HookSecret.name)
            .where(models.HookSecret.hook_id == hook_id)
            .order_by(models.HookSecret.name)
        )
    )


def values(session: Session, master_key: MasterKey, hook_id: str) -> dict[str, str]:
    """Every secret of a hook, decrypted: for its invocations only, never for the API."""
    rows = session.scalars(select(models.HookSecret).where(models.HookSecret.hook_id == hook_id))
    return {
        row.name: master_key.decrypt(row.value, _context(hook_id, row.name)).decode()
        for row in rows
    }


def add(session: Session, master_key: MasterKey, hook_id: str, secrets: dict[str, str]) -> None:
    """Add new secrets; Conflict if one exists already."""
    check(secrets)
    existing = set(names(session, hook_id))
    taken = sorted(set(secrets) & existing)
    if taken:
        raise Conflict(f"secret {', '.join(taken)} exists already: update it with PATCH")
    if len(existing) + len(secrets) > MAX_SECRETS:
        raise InvalidInput(f"a hook may have at most {MAX_SECRETS} secrets")
    _store(session, master_key, hook_id, secrets, update=False)


def update(session: Session, master_key: MasterKey, hook_id: str, secrets: dict[str, str]) -> None:
    """Replace existing secrets; NotFound if one does not exist."""
    check(secrets)
    missing = sorted(set(secrets) - set(names(session, hook_id)))
    if missing:
        raise NotFound(f"secret {', '.join(missing)} does not exist: add it with POST")
    _store(session, master_key, hook_id, secrets, update=True)


def remove(session: Session, hook_id: str, secret_names: list[str]) -> None:
    missing = sorted(set(secret_names) - set(names(session, hook_id)))
    if missing:
        raise NotFound(f"secret {', '.join(missing)} does not exist")
    for name in secret_names:
        row = session.get(models.HookSecret, (hook_id, name))
        if row is not None:
            session.delete(row)
    bump_generation(session)


def check(secrets: dict[str, str]) -> None:
    for name, value in secrets.items():
        if not NAME.match(name):
            raise InvalidInput(
                f"secret name {name!r} must match {NAME.pattern} (a letter or _, then letters, "
                "digits or _)"
            )
        try:
            size = len(value.encode()) if isinstance(value, str) else MAX_VALUE_BYTES + 1
        except UnicodeEncodeError:
            raise InvalidInput(f"secret {name!r} is not valid Unicode text") from None
        if size > MAX_VALUE_BYTES:
            raise InvalidInput(
                f"secret {name!r} must be a string of at most {MAX_VALUE_BYTES} bytes"
            )


def _store(
    session: Session, master_key: MasterKey, hook_id: str, secrets: dict[str, str], *, update: bool
) -> None:
    check(secrets)
    now = utcnow()
    for name, value in secrets.items():
        sealed = master_key.encrypt(value.encode(), _context(hook_id, name))
        row = session.get(models.HookSecret, (hook_id, name)) if update else None
        if row is None:
            session.add(
                models.HookSecret(
                    hook_id=hook_id, name=name, value=sealed, created_at=now, updated_at=now
                )
            )
        else:
            row.value, row.updated_at = sealed, now
    bump_generation(session)
