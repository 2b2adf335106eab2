"""A person's consent to a third-party client: asked once for the scopes it wants,
and again only when it asks for more."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from authhooks.storage import models
from authhooks.storage.models import utcnow


def covers(session: Session, user_id: str, client_id: str, scopes: Iterable[str]) -> bool:
    row = session.get(models.Consent, (user_id, client_id))
    return row is not None and set(scopes) <= set(row.scopes)


def grant(session: Session, user_id: str, client_id: str, scopes: Iterable[str]) -> None:
    row = session.get(models.Consent, (user_id, client_id))
    if row is None:
        session.add(
            models.Consent(
                user_id=user_id,
                client_id=client_id,
                scopes=sorted(set(scopes)),
                updated_at=utcnow(),
            )
        )
    else:
        row.scopes = sorted(set(row.scopes) | set(scopes))
        row.updated_at = utcnow()
