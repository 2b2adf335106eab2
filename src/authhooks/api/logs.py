"""/api/v2/logs: hook invocation records — query, one record, and the live stream.

Scope ``read:logs``. Records are numbered in the order they were stored
(``seq``); pages go from the newest back (``before`` is the previous page's
last ``seq``), and the stream goes forward from where it was left.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from authhooks.api.auth import Caller, current, require, services
from authhooks.api.errors import (
    AccessLost,
    InsufficientScope,
    InvalidQuery,
    InvalidRequest,
    InvalidToken,
    Unavailable,
)
from authhooks.api.routing import StrictJSONRoute
from authhooks.logs import records, stream
from authhooks.points.registry import POINTS
from authhooks.services import Services

router = APIRouter(prefix="/logs", tags=["logs"], route_class=StrictJSONRoute)
_SEQ = re.compile(r"[0-9]{1,18}")


class LogOut(BaseModel):
    id: str
    seq: int
    hook_id: str
    version: int
    point: str
    started_at: datetime
    duration_ms: float
    outcome: str
    error: str | None
    console: list[dict[str, Any]]
    truncated: bool
    test: bool


class LogPage(BaseModel):
    logs: list[LogOut]
    next: int | None  # pass as ``before`` for the next (older) page


def _filter(
    hook_id: Annotated[str | None, Query(max_length=64)] = None,
    point: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> records.RecordFilter:
    if point is not None and point not in POINTS:
        known = ", ".join(POINTS)
        raise InvalidQuery(f"unknown point {point!r}; points: {known}")
    times: list[datetime | None] = []
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidQuery(f"{name} needs a time zone, such as Z")
        try:
            times.append(value.astimezone(UTC) if value is not None else None)
        except OverflowError:
            raise InvalidQuery(f"{name} is out of range") from None
    return records.RecordFilter(hook_id, point, outcome, times[0], times[1])


@router.get("", response_model=LogPage)
def list_logs(
    _: Annotated[Caller, Depends(require("read:logs"))],
    found: Annotated[Services, Depends(services)],
    record_filter: Annotated[records.RecordFilter, Depends(_filter)],
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    take: Annotated[int, Query(ge=1, le=100)] = 50,
) -> LogPage:
    """Records, newest first, filtered by hook, point, outcome and start time."""
    with found.database.session() as session:
        rows = records.newest(session, record_filter, before=before, limit=take)
        logs = [LogOut.model_validate(records.view(row)) for row in rows]
    return LogPage(logs=logs, next=logs[-1].seq if len(logs) == take else None)


@router.get("/stream", response_class=StreamingResponse)
async def stream_logs(
    caller: Annotated[Caller, Depends(require("read:logs"))],
    found: Annotated[Services, Depends(services)],
    record_filter: Annotated[records.RecordFilter, Depends(_filter)],
    last_event_id: Annotated[str | None, Header(max_length=24)] = None,
) -> StreamingResponse:
    """Server-Sent Events: ``invocation`` (a stored record; its ``id`` is its ``seq``),
    ``console`` (a line as a hook writes it) and, last, ``dropped`` or ``end``."""
    resume = None
    if last_event_id:
        if not _SEQ.fullmatch(last_event_id):
            raise InvalidRequest("Last-Event-ID must be a record's seq")
        resume = int(last_event_id)
    if found.bus.closed:
        raise Unavailable("the server is stopping", retry_after=2)
    if caller.expires_at is not None and caller.expires_at <= time.time():
        # Accepted within the clock leeway, but a stream would end at once: ask for a new one.
        raise InvalidToken("it expires now; get a new one to open a stream")
    if found.bus.subscribers >= stream.MAX_SUBSCRIBERS:
        raise Unavailable("too many log streams are open on this server process", retry_after=5)

    async def still_allowed() -> tuple[str, str] | None:
        # The REST API's own check, so a stream loses access when a request would.
        try:
            now = await current(found, caller)
        except AccessLost as lost:
            return lost.reason, str(lost)
        if "read:logs" not in now.scopes:
            return "insufficient_scope", str(InsufficientScope("read:logs"))
        return None

    return StreamingResponse(
        stream.events(
            found.database,
            found.bus,
            record_filter,
            resume,
            found.settings.log_stream_heartbeat,
            expires_at=caller.expires_at,
            access=still_allowed,
            access_every=found.settings.cache_ttl,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/{invocation_id}", response_model=LogOut)
def get_log(
    invocation_id: str,
    _: Annotated[Caller, Depends(require("read:logs"))],
    found: Annotated[Services, Depends(services)],
) -> LogOut:
    with found.database.session() as session:
        return LogOut.model_validate(records.view(records.get(session, invocation_id)))
