"""/api/v2/tickets: links an admin hands to a user by other means than this
server's mail (Auth0's ``password-change`` and ``email-verification`` tickets).

A ticket is a URL on this server, single use, valid ``ttl_sec`` seconds (0 or
absent: the server's setting for its kind, at most 30 days). A password-change
ticket marks the email verified only with ``mark_email_as_verified``, since
whoever opens it need not have read the user's mail.
"""

from __future__ import annotations

from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends
from pydantic import AnyHttpUrl, Field, model_validator
from sqlalchemy import select

from authhooks.api.auth import Caller, require, services
from authhooks.api.models import Body, Out
from authhooks.api.routing import StrictJSONRoute
from authhooks.errors import InvalidInput, NotFound
from authhooks.services import Services
from authhooks.storage import models
from authhooks.users import store, tickets

router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=StrictJSONRoute)

UserId = Annotated[str, Field(min_length=1, max_length=64)]
Ttl = Annotated[int, Field(ge=0, le=tickets.MAX_LIFETIME, description="seconds; 0: the default")]
ResultUrl = Annotated[
    AnyHttpUrl,
    Field(description="where the person is sent (or offered to go) once the ticket is used"),
]


class PasswordChangeTicket(Body):
    user_id: UserId | None = None
    email: Annotated[str, Field(min_length=1, max_length=store.MAX_EMAIL_LENGTH)] | None = None
    connection_id: Annotated[str, Field(max_length=64)] | None = None
    result_url: ResultUrl | None = None
    ttl_sec: Ttl = 0
    mark_email_as_verified: bool = False

    @model_validator(mode="after")
    def _one_user(self) -> PasswordChangeTicket:
        if self.user_id is not None:
            if self.email is not None or self.connection_id is not None:
                raise ValueError("give user_id, or email and connection_id, not both")
        elif self.email is None or self.connection_id is None:
            raise ValueError("give user_id, or email and connection_id")
        return self


class EmailVerificationTicket(Body):
    user_id: UserId
    result_url: ResultUrl | None = None
    ttl_sec: Ttl = 0


class TicketOut(Out):
    ticket: str


@router.post("/password-change", status_code=201, response_model=TicketOut)
async def password_change_ticket(
    body: PasswordChangeTicket,
    _: Annotated[Caller, Depends(require("create:user_tickets"))],
    found: Annotated[Services, Depends(services)],
) -> TicketOut:
    user_id = body.user_id
    if user_id is None:
        user_id = await run_sync(_user_by_email, found, body.email, body.connection_id)
    url = await found.password_reset.ticket(
        user_id,
        result_url=str(body.result_url) if body.result_url else None,
        lifetime=body.ttl_sec or None,
        verifies_email=body.mark_email_as_verified,
    )
    return TicketOut(ticket=url)


@router.post("/email-verification", status_code=201, response_model=TicketOut)
async def email_verification_ticket(
    body: EmailVerificationTicket,
    _: Annotated[Caller, Depends(require("create:user_tickets"))],
    found: Annotated[Services, Depends(services)],
) -> TicketOut:
    url = await found.email_verification.ticket(
        body.user_id,
        result_url=str(body.result_url) if body.result_url else None,
        lifetime=body.ttl_sec or None,
    )
    return TicketOut(ticket=url)


def _user_by_email(found: Services, email: str | None, connection_id: str | None) -> str:
    if connection_id != store.CONNECTION["id"]:
        raise InvalidInput(f"the only connection is {store.CONNECTION['id']!r}")
    address = store.normalize_email(email or "")
    with found.database.session() as session:
        user = session.scalar(select(models.User).where(models.User.email == address))
        if user is None:
            raise NotFound("no user with this email")
        return user.id
