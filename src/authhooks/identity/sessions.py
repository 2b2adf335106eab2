"""Sign-in sessions: a person signed in with a browser, remembered by a cookie for
single sign-on across clients. The cookie holds a random token; the database
holds its hash, so a copy of the database signs nobody in.

A session ends when it has not been used for ``idle`` seconds, ``max_age``
seconds after sign-in, at logout, or when it is revoked (the management API's
``DELETE /api/v2/users/{id}/sessions``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from authhooks.identity.grant_state import hash_secret, new_secret
from authhooks.storage import models
from authhooks.storage.models import utcnow

COOKIE = "authhooks_session"


@dataclass(frozen=True)
class SessionLimits:
    idle: int
    max_age: int


@dataclass(frozen=True)
class SignedIn:
    """A live session, as the sign-in flow needs it."""

    id: str
    user_id: str
    authenticated_at: datetime


def start(
    session: Session,
    limits: SessionLimits,
    user_id: str,
    *,
    ip: str | None,
    user_agent: str | None,
) -> tuple[str, SignedIn, datetime]:
    """A new session for ``user_id``: (the cookie's token, the session, when it ends)."""
    token, token_hash = new_secret()
    now = utcnow()
    row = models.LoginSession(
        id=secrets.token_urlsafe(18),
        token_hash=token_hash,
        user_id=user_id,
        clients=[],
        authenticated_at=now,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=limits.max_age),
        ip=(ip or "")[:64],
        user_agent=(user_agent or "")[:512],
    )
    session.add(row)
    return token, SignedIn(row.id, user_id, now), row.expires_at


def find(session: Session, limits: SessionLimits, token: str | None) -> SignedIn | None:
    """The live session of the cookie's ``token``; an expired one is removed."""
    if not token:
        return None
    row = session.scalar(
        select(models.LoginSession).where(models.LoginSession.token_hash == hash_secret(token))
    )
    if row is None:
        return None
    now = utcnow()
    if row.expires_at <= now or row.last_seen_at + timedelta(seconds=limits.idle) <= now:
        session.delete(row)
        return None
    user = session.get(models.User, row.user_id)
    if user is None or user.blocked:
        return None
    row.last_seen_at = now
    return SignedIn(row.id, row.user_id, row.authenticated_at)


def joined(session: Session, session_id: str, client_id: str) -> None:
    """Record that ``client_id`` was signed in to through the session."""
    row = session.get(models.LoginSession, session_id)
    if row is not None and client_id not in row.clients:
        row.clients = [*row.clients, client_id]


def end(session: Session, session_id: str) -> None:
    session.execute(delete(models.LoginSession).where(models.LoginSession.id == session_id))


def end_all(session: Session, user_id: str) -> int:
    """Revoke every session of a user; how many there were."""
    result = session.execute(
        delete(models.LoginSession).where(models.LoginSession.user_id == user_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def of_user(session: Session, limits: SessionLimits, user_id: str) -> list[models.LoginSession]:
    """The user's live sessions: neither past their end nor idle too long."""
    now = utcnow()
    return list(
        session.scalars(
            select(models.LoginSession)
            .where(
                models.LoginSession.user_id == user_id,
                models.LoginSession.expires_at > now,
                models.LoginSession.last_seen_at > now - timedelta(seconds=limits.idle),
            )
            .order_by(models.LoginSession.created_at.desc())
        )
    )


def prune(session: Session) -> None:
    """Remove sessions past their absolute end (idle ones go when next looked up)."""
    session.execute(delete(models.LoginSession).where(models.LoginSession.expires_at <= utcnow()))
