"""/authorize transactions: a checked authorization request waiting while the person
signs in, signs up or consents. Each is bound to the browser that made it (a
cookie whose hash it keeps) and carries a CSRF token its pages' forms repeat, so
neither another site's form nor another browser can complete it."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from authhooks.identity.authorization import AuthorizationRequest
from authhooks.identity.grant_state import hash_secret
from authhooks.storage import models
from authhooks.storage.models import utcnow

BROWSER_COOKIE = "authhooks_browser"


class TransactionLost(Exception):
    """No such transaction for this browser: expired, finished, or never made here."""


LOGIN = "login"
CONSENT = "consent"


def begin(
    session: Session,
    request: AuthorizationRequest,
    browser: str,
    lifetime: int,
    *,
    consent_by: str | None = None,
) -> models.AuthorizationTransaction:
    """A transaction waiting for a sign-in, or, with ``consent_by``, for that
    session's consent."""
    now = utcnow()
    row = models.AuthorizationTransaction(
        id=secrets.token_urlsafe(24),
        browser_hash=hash_secret(browser),
        client_id=request.client_id,
        request=request.stored(),
        csrf_token=secrets.token_urlsafe(24),
        awaiting=LOGIN if consent_by is None else CONSENT,
        session_id=consent_by,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    session.add(row)
    return row


def await_consent(session: Session, transaction_id: str, session_id: str) -> None:
    """The person signed in: the transaction now waits for their consent."""
    row = session.get(models.AuthorizationTransaction, transaction_id)
    if row is not None:
        row.awaiting, row.session_id = CONSENT, session_id


def prune(session: Session) -> None:
    session.execute(
        delete(models.AuthorizationTransaction).where(
            models.AuthorizationTransaction.expires_at <= utcnow()
        )
    )


def find(
    session: Session, transaction_id: str | None, browser: str | None
) -> models.AuthorizationTransaction:
    """The live transaction ``transaction_id`` of this browser; TransactionLost."""
    if not transaction_id or not browser or "\0" in transaction_id:
        raise TransactionLost()
    row = session.get(models.AuthorizationTransaction, transaction_id)
    if (
        row is None
        or row.expires_at <= utcnow()
        or not hmac.compare_digest(row.browser_hash.encode(), hash_secret(browser).encode())
    ):
        raise TransactionLost()
    return row


def csrf_matches(expected: str, token: str | None) -> bool:
    # Bytes: compare_digest refuses str with characters outside ASCII.
    return token is not None and hmac.compare_digest(expected.encode(), token.encode())


def finish(session: Session, transaction_id: str) -> None:
    session.execute(
        delete(models.AuthorizationTransaction).where(
            models.AuthorizationTransaction.id == transaction_id
        )
    )
