"""Password reset by mail (Auth0's ``change_password``) and by a link an admin
asks for (``POST /api/v2/tickets/password-change``).

Asking for a reset answers the same whether the address is a user's or not:
the throttle counts both alike, and the ticket and its mail are written in the
same transaction as the count, so the two take about the same time. The mail
goes out from the outbox, after the answer. Using the link sets the password
through ``PasswordChange`` (the policy, post-change-password), spends the
ticket and every other reset link of the user, and marks the email verified
when the link was mailed (following it proved the mailbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from anyio.to_thread import run_sync
from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.identity.mail.messages import PASSWORD_RESET, duration
from authhooks.identity.mail.outbox import MailOutbox
from authhooks.identity.mail.sender import MailOff
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from authhooks.users import store, tickets
from authhooks.users.password_change import PasswordChange
from authhooks.users.throttle import ResetThrottle, prune_counters, prune_due

# Auth0's path of the page a reset link opens.
RESET_PATH = "lo/reset"


@dataclass(frozen=True)
class ResetDone:
    """A password reset through a ticket: whose, and where the person goes next."""

    user_id: str
    email: str
    result_url: str | None


class PasswordReset:
    def __init__(
        self,
        database: Database,
        outbox: MailOutbox,
        change: PasswordChange,
        throttle: ResetThrottle,
        issuer: str,
        lifetime: int,
    ) -> None:
        self._db = database
        self._outbox = outbox
        self._change = change
        self._throttle = throttle
        self._issuer = issuer
        self.lifetime = lifetime

    def link(self, ticket: str) -> str:
        """The URL of the reset page for ``ticket``."""
        return f"{self._issuer}{RESET_PATH}?ticket={quote(ticket)}"

    async def request(self, email: str, request: RequestInfo) -> None:
        """Mail a reset link to the user with this address, unless there is none or it
        is blocked: the caller cannot tell which. MailOff, InvalidInput (not an
        address) or TooManyResets otherwise."""
        if not self._outbox.enabled:
            raise MailOff()
        address = store.normalize_email(email)

        def save() -> str | None:
            if prune_due():
                with self._db.session() as session:
                    prune_counters(session, utcnow())
            with self._db.session() as session:
                self._throttle.reserve(session, address, request.ip)
                user = session.scalar(select(models.User).where(models.User.email == address))
                if user is None or user.blocked:
                    return None
                return self.mail(session, user)

        if await run_sync(save) is not None:
            self._outbox.nudge()

    def mail(self, session: Session, user: models.User) -> str:
        """Queue a reset mail to ``user`` in the caller's transaction (then call
        ``MailOutbox.nudge`` after the commit); the mail's id. MailOff when mail is off.
        For a "forgot password" page that has already found the user."""
        ticket = tickets.issue(
            session, tickets.PASSWORD_RESET, user, self.lifetime, verifies_email=True
        )
        return self._outbox.queue(
            session,
            PASSWORD_RESET,
            user.id,
            user.email,
            {
                "link": self.link(ticket),
                "site": urlsplit(self._issuer).netloc,
                "valid_for": duration(self.lifetime),
            },
        )

    async def ticket(
        self,
        user_id: str,
        *,
        result_url: str | None = None,
        lifetime: int | None = None,
        verifies_email: bool = False,
    ) -> str:
        """A reset link for the user (NotFound if there is none), to hand over by other
        means than this server's mail; it marks the email verified only if asked."""

        def save() -> str:
            with self._db.session() as session:
                user = store.get_user(session, user_id)
                return tickets.issue(
                    session,
                    tickets.PASSWORD_RESET,
                    user,
                    lifetime or self.lifetime,
                    verifies_email=verifies_email,
                    result_url=result_url,
                )

        return self.link(await run_sync(save))

    def email_for(self, ticket: str) -> str:
        """The address whose password ``ticket`` resets; a TicketRefused if it cannot."""
        with self._db.session() as session:
            _, user = tickets.check(session, tickets.PASSWORD_RESET, ticket)
            return user.email

    async def reset(self, ticket: str, new: str, request: RequestInfo) -> ResetDone:
        """Set the password the ticket is for: TicketRefused or WeakPassword (and the
        ticket still good) unless it was set."""
        await run_sync(self.email_for, ticket)  # a spent link is said so before the policy
        password_hash = await self._change.hash(new)
        hooks = await self._change.hooks()

        def save() -> tuple[ResetDone, str | None]:
            with self._db.session() as session:
                found, user = tickets.take(session, tickets.PASSWORD_RESET, ticket)
                if found.verifies_email:
                    user.email_verified = True
                queued = self._change.apply(session, user, password_hash, hooks, request)
                return ResetDone(user.id, user.email, found.result_url), queued

        done, queued = await run_sync(save)
        if queued is not None:
            self._change.nudge()
        return done
