"""A person's consent to a third-party client: asked once for the scopes it wants,
and again only when it asks for more. An API's scopes are consented for that API
(``<audience> <scope>``: a scope token has no spaces), so that another API's
scope of the same name is asked again."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from authhooks.identity.authorization import OIDC_SCOPES
from authhooks.storage import models
from authhooks.storage.models import utcnow


def consented(scopes: Iterable[str], audience: str | None) -> set[str]:
    """What a consent to ``scopes`` (OIDC's and an API's) for ``audience`` records."""
    return {scope if scope in OIDC_SCOPES else f"{audience} {scope}" for scope in scopes}


def covers(session: Session, user_id: str, client_id: str, scopes: set[str]) -> bool:
    row = session.get(models.Consent, (user_id, client_id))
    return row is not None and scopes <= set(row.scopes)


def grant(session: Session, user_id: str, client_id: str, scopes: set[str]) -> None:
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
