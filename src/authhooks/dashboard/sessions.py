"""Dashboard sessions: who signed in, until when, and the CSRF token that proves a
request comes from the dashboard's own pages.

The cookie carries a random token; the database keeps only its SHA-256, so a
copy of the database opens no session. A session ends after ``idle`` seconds
without use, after ``lifetime`` seconds whatever happens, at sign-out, or when
its client or admin is deleted (or the client's secret or the admin's password
changes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from authhooks.storage import models
from authhooks.storage.models import utcnow


@dataclass(frozen=True)
class SignedIn:
    # Who signed in: an admin client, or an admin user.
    client_id: str | None
    admin_id: str | None
    csrf_token: str
    expires_at: datetime  # the sooner of the idle and the absolute limits


@dataclass(frozen=True)
class SessionLimits:
    idle: int = 1800  # seconds without a request
    lifetime: int = 43200  # seconds from sign-in


def start(
    session: Session,
    limits: SessionLimits,
    *,
    client_id: str | None = None,
    admin_id: str | None = None,
) -> tuple[str, SignedIn]:
    """A new session for an admin client or an admin user: the cookie's token, and
    the session."""
    assert (client_id is None) != (admin_id is None)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = models.DashboardSession(
        id=_digest(token),
        client_id=client_id,
        admin_id=admin_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=limits.lifetime),
    )
    session.add(row)
    return token, _signed_in(row, limits)


def resume(session: Session, token: str, limits: SessionLimits) -> SignedIn | None:
    """The live session of a cookie's ``token`` (its idle clock restarted), or None."""
    table = models.DashboardSession
    digest = _digest(token)
    now = utcnow()
    # One statement that only a live session passes: a sign-out or prune running
    # at the same moment leaves nothing to update, and the answer is "signed out".
    renewed = session.execute(
        update(table)
        .where(
            table.id == digest,
            table.expires_at > now,
            table.last_seen_at > now - timedelta(seconds=limits.idle),
        )
        .values(last_seen_at=now)
    )
    if renewed.rowcount != 1:  # type: ignore[attr-defined]
        session.execute(delete(table).where(table.id == digest))
        return None
    row = session.get(table, digest, populate_existing=True)
    return None if row is None else _signed_in(row, limits)


def end(session: Session, token: str) -> None:
    session.execute(
        delete(models.DashboardSession).where(models.DashboardSession.id == _digest(token))
    )


def prune(session: Session, limits: SessionLimits) -> None:
    """Forget sessions past either limit."""
    now = utcnow()
    session.execute(
        delete(models.DashboardSession).where(
            (models.DashboardSession.expires_at <= now)
            | (models.DashboardSession.last_seen_at <= now - timedelta(seconds=limits.idle))
        )
    )


def csrf_matches(signed_in: SignedIn, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(signed_in.csrf_token, sent)


def _signed_in(row: models.DashboardSession, limits: SessionLimits) -> SignedIn:
    idle_end = row.last_seen_at + timedelta(seconds=limits.idle)
    return SignedIn(row.client_id, row.admin_id, row.csrf_token, min(row.expires_at, idle_end))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
