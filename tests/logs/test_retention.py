"""Retention of invocation records: by age, by count per hook, and captured events' expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from authhooks.logs.writer import InvocationLog
from authhooks.storage import models
from authhooks.storage.database import Database
from tests.logs.rows import hook_row, invocation


def test_records_are_kept_by_count_per_hook_and_by_age(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'logs.db'}")
    database.migrate()
    with database.session() as session:
        session.add_all([hook_row("hk_busy"), hook_row("hk_quiet")])
    log = InvocationLog(database, keep_per_hook=3, max_age=timedelta(days=1))
    for n in range(10):
        log.record(invocation(f"hk_busy_{n}", "hk_busy", age=timedelta(minutes=10 - n)))
    log.record(invocation("hk_quiet_0", "hk_quiet", age=timedelta(days=2)))  # too old
    log.record(invocation("hk_quiet_1", "hk_quiet", age=timedelta(hours=1)))

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
        session.add(hook_row("hk_1"))
    log = InvocationLog(database, capture_for=timedelta(seconds=-1))  # expired when stored
    fresh = InvocationLog(database)
    log.record(invocation("hk_1_0", "hk_1", captured=b"sealed-0"))
    fresh.record(invocation("hk_1_1", "hk_1", captured=b"sealed-1"))

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
