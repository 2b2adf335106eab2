"""Hooks' schedules as stored: one ``hook_schedules`` row per hook of the
``schedule`` point, written in the transaction that writes the hook, so that a
hook and its schedule are stored together or not at all.

The row also carries what the scheduler (flows/schedules.py) keeps across
processes: the next tick, the claim of the run in progress and how the last one
ended. Deleting a hook deletes its row (ON DELETE CASCADE).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.points import cron
from authhooks.points.cron import InvalidSchedule, Schedule
from authhooks.points.schedule import ID as SCHEDULE_POINT
from authhooks.storage import models
from authhooks.storage.models import utcnow


def check_for_point(trigger_id: str, schedule: Schedule | None) -> None:
    """A hook of the schedule point needs a schedule; a hook of any other point runs
    when its point does, and takes none. InvalidSchedule saying which."""
    if trigger_id == SCHEDULE_POINT and schedule is None:
        raise InvalidSchedule(
            f"schedule is required for a hook of point {SCHEDULE_POINT!r}: send one, "
            f"such as {cron.EXAMPLE}"
        )
    if trigger_id != SCHEDULE_POINT and schedule is not None:
        raise InvalidSchedule(
            f"schedule is only for hooks of point {SCHEDULE_POINT!r}: a {trigger_id} hook "
            "runs when its point does; leave schedule out"
        )


def stored(row: models.HookSchedule) -> Schedule:
    """A row's schedule, as it was checked when stored."""
    return Schedule(row.cron, row.timezone, row.catch_up)


def find(session: Session, hook_id: str) -> models.HookSchedule | None:
    return session.get(models.HookSchedule, hook_id)


def views(session: Session, hook_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The schedules of these hooks (those that have one), as the API shows them."""
    wanted = list(hook_ids)
    if not wanted:
        return {}
    rows = session.scalars(
        select(models.HookSchedule).where(models.HookSchedule.hook_id.in_(wanted))
    )
    return {row.hook_id: stored(row).view() for row in rows}


def save(session: Session, hook_id: str, trigger_id: str, value: Any) -> bool:
    """Store the hook's schedule (``value``: a Schedule, its JSON form, or None for
    none), in the caller's transaction; whether anything changed. A new or changed
    schedule starts from its next tick after now (never at or before a tick already
    claimed: see ``_floor``); one sent back as it is (a GET then PATCH round trip)
    changes nothing, and one whose catch_up alone changed keeps its next tick."""
    schedule = None if value is None else cron.parse(value)
    check_for_point(trigger_id, schedule)
    row = find(session, hook_id)
    if schedule is None:
        if row is None:
            return False
        session.delete(row)
        return True
    if row is not None and stored(row) == schedule:
        return False
    now = utcnow()
    if row is None:
        row = models.HookSchedule(hook_id=hook_id, cron=schedule.cron)
        session.add(row)
        moved = True
    else:
        moved = (row.cron, row.timezone) != (schedule.cron, schedule.timezone)
    row.cron, row.timezone, row.catch_up = schedule.cron, schedule.timezone, schedule.catch_up
    if moved:
        row.next_run_at = schedule.next_after(_floor(row, now))
    row.updated_at = now
    return True


def _floor(row: models.HookSchedule, now: datetime) -> datetime:
    """The moment a schedule's next tick is looked for after: now, by this process's
    clock, but never before a tick some process already claimed (the last run's
    tick; the start of the run in progress, by the database's clock, which is not
    before its tick), so that a clock behind the others' never runs a tick twice."""
    return max(moment for moment in (now, row.last_run_at, row.running_since) if moment)


def restart(session: Session, hook_id: str, now: datetime | None = None) -> None:
    """A hook enabled again starts from its next tick: ticks that passed while it
    was disabled were not missed, and are never caught up. Its stored next tick,
    not yet claimed, stays when it has not passed (never moving back)."""
    row = find(session, hook_id)
    if row is None:
        return
    now = now or utcnow()
    floor = _floor(row, now)
    if row.next_run_at > floor:
        return
    row.next_run_at = stored(row).next_after(floor)
    row.updated_at = now
