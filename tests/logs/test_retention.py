"""Retention of invocation records: by age, by count per hook, and captured events' expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from authhooks.hooks.invocations import InvocationLog
from authhooks.points.flow import Invocation
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow


def _hook(hook_id: str) -> models.Hook:
    return models.Hook(
        id=hook_id,
        name=hook_id,
        trigger_id="credentials-exchange",
        runtime="python",
        timeout_ms=1000,
        on_error="fail",
        version=1,
        last_version=1,
    )


def _invocation(hook_id: str, n: int, age: timedelta, captured: bytes | None = None) -> Invocation:
    return Invocation(
        id=f"{hook_id}_{n}",
        hook_id=hook_id,
        version=1,
        point="credentials-exchange",
        started_at=utcnow() - age,
        duration_ms=1.0,
        outcome="ok",
        error=None,
        captured=captured,
    )


def test_records_are_kept_by_count_per_hook_and_by_age(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'logs.db'}")
    database.migrate()
    with database.session() as session:
        session.add_all([_hook("hk_busy"), _hook("hk_quiet")])
    log = InvocationLog(database, keep_per_hook=3, max_age=timedelta(days=1))
    for n in range(10):
        log.record(_invocation("hk_busy", n, timedelta(minutes=10 - n)))
    log.record(_invocation("hk_quiet", 0, timedelta(days=2)))  # too old
    log.record(_invocation("hk_quiet", 1, timedelta(hours=1)))

    async def scenario() -> None:
        await log.flush()
        await log.prune()

    asyncio.run(scenario())
    with database.session() as session:
        kept = set(session.scalars(select(models.HookInvocation.id)))
        counter = session.scalar(select(models.LogSequence.value))
    database.dispose()
    assert kept == {"hk_busy_7", "hk_busy_8", "hk_busy_9", "hk_quiet_1"}
    assert counter == 12  # numbers are never handed out twice


def test_captured_events_expire_but_their_records_stay(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'logs.db'}")
    database.migrate()
    with database.session() as session:
        session.add(_hook("hk_1"))
    log = InvocationLog(database, capture_for=timedelta(seconds=-1))  # expired when stored
    fresh = InvocationLog(database)
    log.record(_invocation("hk_1", 0, timedelta(0), captured=b"sealed-0"))
    fresh.record(_invocation("hk_1", 1, timedelta(0), captured=b"sealed-1"))

    async def scenario() -> None:
        await log.flush()
        await fresh.flush()
        await log.prune()

    asyncio.run(scenario())
    with database.session() as session:
        rows = session.execute(
            select(models.HookInvocation.id, models.HookInvocation.captured_event)
        )
        captured = {row.id: row.captured_event for row in rows}
    database.dispose()
    assert captured == {"hk_1_0": None, "hk_1_1": b"sealed-1"}
