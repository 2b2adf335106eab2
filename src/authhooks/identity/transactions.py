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


def begin(
    session: Session, request: AuthorizationRequest, browser: str, lifetime: int
) -> models.AuthorizationTransaction:
    now = utcnow()
    row = models.AuthorizationTransaction(
        id=secrets.token_urlsafe(24),
        browser_hash=hash_secret(browser),
        client_id=request.client_id,
        request=request.stored(),
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    session.add(row)
    if secrets.randbelow(100) == 0:  # now and then, rather than on a timer
        session.execute(
            delete(models.AuthorizationTransaction).where(
                models.AuthorizationTransaction.expires_at <= now
            )
        )
    return row


def find(
    session: Session, transaction_id: str | None, browser: str | None
) -> models.AuthorizationTransaction:
    """The live transaction ``transaction_id`` of this browser; TransactionLost."""
    if not transaction_id or not browser:
        raise TransactionLost()
    row = session.get(models.AuthorizationTransaction, transaction_id)
    if (
        row is None
        or row.expires_at <= utcnow()
        or not hmac.compare_digest(row.browser_hash, hash_secret(browser))
    ):
        raise TransactionLost()
    return row


def csrf_matches(expected: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(expected, token)


def finish(session: Session, transaction_id: str) -> None:
    session.execute(
        delete(models.AuthorizationTransaction).where(
            models.AuthorizationTransaction.id == transaction_id
        )
    )
