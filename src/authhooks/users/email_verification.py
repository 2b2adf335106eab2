"""Email verification: a link mailed at signup (as Auth0 does, when mail is on),
or on an admin's demand (``POST /api/v2/jobs/verification-email``), or handed
out by an admin (``POST /api/v2/tickets/email-verification``). Opening it marks
the user's ``email_verified``, once."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from anyio.to_thread import run_sync
from sqlalchemy.orm import Session

from authhooks.identity.mail.messages import EMAIL_VERIFICATION, duration
from authhooks.identity.mail.outbox import MailOutbox
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from authhooks.users import store, tickets

# Auth0's path of the page a verification link opens.
VERIFY_PATH = "u/email-verification"


@dataclass(frozen=True)
class Verified:
    user_id: str
    email: str
    result_url: str | None


class EmailVerification:
    def __init__(self, database: Database, outbox: MailOutbox, issuer: str, lifetime: int) -> None:
        self._db = database
        self._outbox = outbox
        self._issuer = issuer
        self.lifetime = lifetime

    @property
    def enabled(self) -> bool:
        """Whether verification mails can be sent (mail is on)."""
        return self._outbox.enabled

    def link(self, ticket: str) -> str:
        return f"{self._issuer}{VERIFY_PATH}?ticket={quote(ticket)}"

    def mail(self, session: Session, user: models.User) -> str:
        """Queue a verification mail to ``user`` in the caller's transaction (then call
        ``nudge`` after the commit); the mail's id. MailOff when mail is off."""
        ticket = tickets.issue(session, tickets.EMAIL_VERIFICATION, user, self.lifetime)
        return self._outbox.queue(
            session,
            EMAIL_VERIFICATION,
            user.id,
            user.email,
            {
                "link": self.link(ticket),
                "site": urlsplit(self._issuer).netloc,
                "valid_for": duration(self.lifetime),
            },
        )

    def nudge(self) -> None:
        """Send what ``mail`` queued, once committed."""
        self._outbox.nudge()

    async def send(self, user_id: str) -> str:
        """Mail the user a verification link now; the mail's id. NotFound, MailOff."""

        def save() -> str:
            with self._db.session() as session:
                return self.mail(session, store.get_user(session, user_id))

        mail_id = await run_sync(save)
        self.nudge()
        return mail_id

    async def ticket(
        self, user_id: str, *, result_url: str | None = None, lifetime: int | None = None
    ) -> str:
        """A verification link for the user (NotFound if there is none), to hand over
        by other means than this server's mail."""

        def save() -> str:
            with self._db.session() as session:
                user = store.get_user(session, user_id)
                return tickets.issue(
                    session,
                    tickets.EMAIL_VERIFICATION,
                    user,
                    lifetime or self.lifetime,
                    result_url=result_url,
                )

        return self.link(await run_sync(save))

    async def verify(self, ticket: str) -> Verified:
        """Mark the address the ticket was made for verified; TicketRefused if it cannot."""

        def save() -> Verified:
            with self._db.session() as session:
                found, user = tickets.take(session, tickets.EMAIL_VERIFICATION, ticket)
                user.email_verified = True
                user.updated_at = utcnow()
                return Verified(user.id, user.email, found.result_url)

        return await run_sync(save)
