"""Tickets: the secret in a password reset or email verification link.

A ticket is 32 random bytes (URL-safe base64); only its SHA-256 is stored, so
a copy of the database opens no link. It is single-use (taking it is one
conditional UPDATE, so two uses at once cannot both succeed), short-lived,
bound to the address it was made for (an email changed since voids it), and a
password reset ticket is void once the password changed after it was made.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from authhooks.errors import DomainError
from authhooks.storage import models
from authhooks.storage.models import utcnow

PASSWORD_RESET = "password_reset"
EMAIL_VERIFICATION = "email_verification"
# The longest a ticket may be asked to live (ttl_sec of the management API).
MAX_LIFETIME = 30 * 86400
# Used and expired tickets are deleted this long after they expired.
_KEEP_EXPIRED = timedelta(days=1)
_PRUNE_EVERY = 100  # tickets issued (per process)
_issued = itertools.count(1)


class TicketRefused(DomainError):
    """The ticket does not open anything (any more); ``str(error)`` tells the person why."""

    status = 400
    code = "invalid_ticket"


class UnknownTicket(TicketRefused):
    def __init__(self) -> None:
        super().__init__(
            "This link is not valid. Check that it was copied whole, or ask for a new one."
        )


class ExpiredTicket(TicketRefused):
    def __init__(self) -> None:
        super().__init__("This link has expired. Ask for a new one.")


class UsedTicket(TicketRefused):
    def __init__(self) -> None:
        super().__init__("This link has already been used. Ask for a new one if you need it.")


@dataclass(frozen=True)
class Ticket:
    """A ticket's row, read: what it was made for."""

    ticket_hash: str
    kind: str
    user_id: str
    email: str
    verifies_email: bool
    result_url: str | None


def hash_ticket(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue(
    session: Session,
    kind: str,
    user: models.User,
    lifetime: int,
    *,
    verifies_email: bool = False,
    result_url: str | None = None,
) -> str:
    """A new ticket of ``kind`` for ``user``, valid ``lifetime`` seconds, stored (its
    hash) in the caller's transaction."""
    if next(_issued) % _PRUNE_EVERY == 0:
        prune(session)
    ticket = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        models.UserTicket(
            ticket_hash=hash_ticket(ticket),
            kind=kind,
            user_id=user.id,
            email=user.email,
            verifies_email=verifies_email,
            result_url=result_url,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        )
    )
    return ticket


def check(session: Session, kind: str, ticket: str) -> tuple[Ticket, models.User]:
    """The ticket and its user, if the ticket is good; a TicketRefused otherwise."""
    row = session.get(models.UserTicket, hash_ticket(ticket)) if ticket else None
    if row is None or row.kind != kind:
        raise UnknownTicket()
    if row.used_at is not None:
        raise UsedTicket()
    if row.expires_at <= utcnow():
        raise ExpiredTicket()
    user = session.get(models.User, row.user_id)
    if user is None or user.email != row.email:
        raise UnknownTicket()  # the account, or its address, is no longer what it was for
    changed = user.last_password_reset
    if kind == PASSWORD_RESET and changed is not None and changed > row.created_at:
        raise UsedTicket()  # the password changed since: this link is spent
    found = Ticket(
        row.ticket_hash, row.kind, row.user_id, row.email, row.verifies_email, row.result_url
    )
    return found, user


def take(session: Session, kind: str, ticket: str) -> tuple[Ticket, models.User]:
    """Check the ticket and mark it used, in the caller's transaction; of two uses at
    once, one gets UsedTicket."""
    found, user = check(session, kind, ticket)
    table = models.UserTicket
    taken = session.execute(
        update(table)
        .where(table.ticket_hash == found.ticket_hash, table.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise UsedTicket()
    if kind == PASSWORD_RESET:
        # One reset spends every other reset link the user was sent.
        session.execute(
            update(table)
            .where(table.user_id == user.id, table.kind == kind, table.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return found, user


def prune(session: Session) -> None:
    """Forget tickets that expired a while ago: they open nothing any more."""
    session.execute(
        delete(models.UserTicket).where(models.UserTicket.expires_at < utcnow() - _KEEP_EXPIRED)
    )
