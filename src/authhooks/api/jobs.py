"""/api/v2/jobs: Auth0's jobs. Here, ``verification-email``: mail a user a link
that verifies its address. The mail is queued at once and sent by the outbox,
so the job answers ``pending``; its id is the mail's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from authhooks.api.auth import Caller, require, services
from authhooks.api.models import Body, Out
from authhooks.api.routing import StrictJSONRoute
from authhooks.services import Services
from authhooks.storage.models import utcnow

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=StrictJSONRoute)


class VerificationEmailJob(Body):
    user_id: Annotated[str, Field(min_length=1, max_length=64)]


class JobOut(Out):
    type: Literal["verification_email"]
    status: Literal["pending"]
    created_at: datetime
    id: str


@router.post("/verification-email", status_code=201, response_model=JobOut)
async def verification_email(
    body: VerificationEmailJob,
    _: Annotated[Caller, Depends(require("update:users"))],
    found: Annotated[Services, Depends(services)],
) -> JobOut:
    """400 ``mail_not_configured`` when this server sends no mail."""
    mail_id = await found.email_verification.send(body.user_id)
    return JobOut(
        type="verification_email",
        status="pending",
        created_at=utcnow(),
        id="job_" + mail_id.removeprefix("mail_"),
    )
