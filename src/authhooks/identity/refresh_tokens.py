"""Refresh tokens (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14): a family begins
with a code's exchange; each use of a rotating token gives the next one and
retires it. A retired token used again means one of two parties holds a stolen
copy, so the whole family is revoked. A family ends at its absolute lifetime,
a token at its idle one; both are the client's settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.orm import Session

from authhooks.identity.clients import RefreshTokenSettings
from authhooks.identity.grant_state import GrantState, hash_secret, new_secret
from authhooks.storage import models
from authhooks.storage.models import utcnow


class RefreshRefused(Exception):
    """The refresh token cannot be used; the message says why (an invalid_grant)."""


@dataclass(frozen=True)
class Issued:
    token: str
    family_id: str


def begin_family(session: Session, grant: GrantState, settings: RefreshTokenSettings) -> Issued:
    family_id = secrets.token_hex(16)
    now = utcnow()
    ends = None if settings.absolute is None else now + timedelta(seconds=settings.absolute)
    return _store(session, grant, settings, family_id, ends)


def _store(
    session: Session,
    grant: GrantState,
    settings: RefreshTokenSettings,
    family_id: str,
    family_ends: datetime | None,
) -> Issued:
    token, token_hash = new_secret()
    now = utcnow()
    idle_ends = None if settings.idle is None else now + timedelta(seconds=settings.idle)
    session.add(
        models.RefreshToken(
            token_hash=token_hash,
            family_id=family_id,
            client_id=grant.client_id,
            user_id=grant.user_id,
            grant=grant.stored(),
            created_at=now,
            expires_at=family_ends,
            idle_expires_at=idle_ends,
        )
    )
    return Issued(token, family_id)


def use(
    session: Session, token: str, client_id: str, settings: RefreshTokenSettings
) -> tuple[GrantState, Issued | None]:
    """The grant the token stands for, and the token that replaces it (None when the
    client's tokens do not rotate: it keeps using this one); RefreshRefused."""
    row = session.get(models.RefreshToken, hash_secret(token))
    if row is None:
        raise RefreshRefused("the refresh token is invalid")
    if row.client_id != client_id:
        raise RefreshRefused("the refresh token was issued to another client")
    if row.revoked_at is not None or _family_revoked(session, row.family_id):
        # A token rotated while its family was being revoked escapes the revoking
        # UPDATE (it did not exist yet when that began): its family still tells.
        raise RefreshRefused("the refresh token was revoked")
    now = utcnow()
    if row.used_at is not None and row.used_at + timedelta(seconds=settings.leeway) < now:
        revoke_family(session, row.family_id)
        raise RefreshRefused(
            "the refresh token was already used: every token of its family is revoked"
        )
    if row.expires_at is not None and row.expires_at <= now:
        raise RefreshRefused("the refresh token has expired")
    if row.idle_expires_at is not None and row.idle_expires_at <= now:
        raise RefreshRefused("the refresh token has expired (unused for too long)")
    user = session.get(models.User, row.user_id)
    if user is None or user.blocked:
        raise RefreshRefused("the user may no longer sign in")
    grant = GrantState.from_stored(row.grant)
    if not settings.rotates:
        if settings.idle is not None:
            row.idle_expires_at = now + timedelta(seconds=settings.idle)
        return grant, None
    claimed = session.execute(
        update(models.RefreshToken)
        .where(models.RefreshToken.token_hash == row.token_hash, _unused_or_within(row))
        .values(used_at=row.used_at or now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, row.family_id)
        raise RefreshRefused(
            "the refresh token was already used: every token of its family is revoked"
        )
    return grant, _store(session, grant, settings, row.family_id, row.expires_at)


def _unused_or_within(row: models.RefreshToken) -> ColumnElement[bool]:
    # A token within its leeway may be used again (a client retrying a lost answer).
    if row.used_at is None:
        return models.RefreshToken.used_at.is_(None)
    return models.RefreshToken.used_at == row.used_at


class ScopeBeyondGrant(Exception):
    """A refresh asked for scopes the original grant did not have."""


def narrowed(grant: GrantState, requested: list[str]) -> GrantState:
    """RFC 6749 §6: a refresh may ask for fewer scopes, never more."""
    unknown = [scope for scope in requested if scope not in grant.scopes]
    if unknown:
        raise ScopeBeyondGrant(" ".join(unknown))
    kept = tuple(scope for scope in grant.scopes if scope in requested)
    return GrantState(**{**grant.__dict__, "scopes": kept})


def _family_revoked(session: Session, family_id: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    models.RefreshToken.family_id == family_id,
                    models.RefreshToken.revoked_at.is_not(None),
                )
            )
        )
    )


def revoke_family(session: Session, family_id: str) -> None:
    session.execute(
        update(models.RefreshToken)
        .where(models.RefreshToken.family_id == family_id, models.RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke(session: Session, token: str, client_id: str) -> bool:
    """RFC 7009: revoke the token's family if the token is the client's; whether it was."""
    row = session.get(models.RefreshToken, hash_secret(token))
    if row is None or row.client_id != client_id:
        return False
    revoke_family(session, row.family_id)
    return True


def revoke_user(session: Session, user_id: str) -> None:
    families = session.scalars(
        select(models.RefreshToken.family_id)
        .where(models.RefreshToken.user_id == user_id, models.RefreshToken.revoked_at.is_(None))
        .distinct()
    )
    for family_id in list(families):
        revoke_family(session, family_id)


def prune(session: Session) -> None:
    """Remove the tokens of families past their absolute end (a family that never
    ends is kept: its tokens may be used, or replayed, at any time)."""
    session.execute(
        delete(models.RefreshToken).where(
            models.RefreshToken.expires_at.is_not(None), models.RefreshToken.expires_at <= utcnow()
        )
    )
