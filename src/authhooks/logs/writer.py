"""Invocation records: the writer. Written in batches off the request path, numbered in the
order they are stored, pruned by age and count.

Each batch takes the next numbers (``seq``) by moving the one counter row
(``log_sequence``) in its own transaction: the row's lock makes every other
writer, in any process, wait until this batch commits, so numbers are
committed in order and a log stream that has read up to N never misses a
record numbered below N later. Deleting records never lowers the counter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from anyio.to_thread import run_sync
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from authhooks.logs.records import Invocation, prune_invocations
from authhooks.observability.metrics import HOOK_INVOCATIONS, HOOK_SECONDS
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredBatch:
    """Records one flush committed, numbered ``first_seq`` onwards in this order."""

    first_seq: int
    invocations: list[Invocation]


class InvocationLog:
    """Collects records in memory and flushes them to the database every ``interval``."""

    def __init__(
        self,
        database: Database,
        *,
        interval: float = 0.1,
        keep_per_hook: int = 1000,
        max_age: timedelta = timedelta(days=7),
        capture_for: timedelta = timedelta(hours=72),
        max_pending: int = 10_000,
        prune_every: float = 5.0,
    ) -> None:
        self._db = database
        self._interval = interval
        self._keep = keep_per_hook
        self._max_age = max_age
        self._capture_for = capture_for
        self._max_pending = max_pending
        self._pending: list[Invocation] = []
        self._task: asyncio.Task[None] | None = None
        # Often, so that each round deletes a few seconds' worth of records: one large
        # delete a minute would take a core for a second and show in the request path.
        self._prune_every = prune_every
        # Called after each batch is committed (the log bus and its relay listen).
        self.stored: list[Callable[[StoredBatch], None]] = []

    def record(self, invocation: Invocation) -> None:
        if not invocation.test:  # runner calls are not traffic
            HOOK_INVOCATIONS.labels(invocation.hook_id, invocation.point, invocation.outcome).inc()
            if invocation.outcome != "skipped":  # a scheduled tick not run took no time
                HOOK_SECONDS.labels(invocation.point).observe(invocation.duration_ms / 1000)
        if invocation.outcome != "ok" and log.isEnabledFor(logging.INFO):
            log.info(
                "hook %s failed at %s: %s",
                invocation.hook_id,
                invocation.point,
                invocation.outcome,
                extra={
                    "hook_id": invocation.hook_id,
                    "point": invocation.point,
                    "outcome": invocation.outcome,
                    "duration_ms": round(invocation.duration_ms, 2),
                },
            )
        if len(self._pending) >= self._max_pending:
            log.warning("invocation records are arriving faster than they are stored; dropped one")
            return
        self._pending.append(invocation)

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            try:
                stored = await run_sync(self._write, batch)
            except IntegrityError:  # a hook deleted while its records were being written
                stored = await run_sync(self._write, batch)
        except Exception:  # a database outage must not take the request path down
            log.exception("could not store %d invocation records", len(batch))
            return
        if stored.invocations:
            for listener in self.stored:
                listener(stored)

    async def _flush_forever(self) -> None:
        pruned_at = time.monotonic()
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
            if time.monotonic() - pruned_at >= self._prune_every:
                pruned_at = time.monotonic()
                try:
                    await self.prune()
                except Exception:  # retention runs again at the next round
                    log.exception("could not prune invocation records")

    async def prune(self) -> None:
        """Apply retention: age, count per hook, and captured events' expiry."""
        await run_sync(self._prune)

    def _write(self, batch: list[Invocation]) -> StoredBatch:
        with self._db.session() as session:
            connection = session.connection()
            # A hook deleted since its run takes its records with it.
            existing = set(
                session.scalars(
                    select(models.Hook.id).where(models.Hook.id.in_({i.hook_id for i in batch}))
                )
            )
            kept = [item for item in batch if item.hook_id in existing]
            if not kept:
                return StoredBatch(0, [])
            last = session.execute(
                update(models.LogSequence)
                .where(models.LogSequence.id == 1)
                .values(value=models.LogSequence.value + len(kept))
                .returning(models.LogSequence.value)
            ).scalar_one() - len(kept)
            expires = utcnow() + self._capture_for
            sql, rows = _insert_many(connection.dialect.name, kept, int(last), expires)
            # Straight to the driver: thousands of records a second must cost the
            # event loop's process as little Python (and GIL) time as possible.
            connection.exec_driver_sql(sql, rows)
        return StoredBatch(int(last) + 1, kept)

    def _prune(self) -> None:
        with self._db.session() as session:
            prune_invocations(session, self._keep, self._max_age)


_COLUMNS = (
    "id, hook_id, version, point, started_at, duration_ms, outcome, error, console, "
    "seq, truncated, test, captured_event, capture_expires_at"
)


def _insert_many(
    dialect: str, batch: list[Invocation], last_seq: int, capture_expires: object
) -> tuple[str, list[tuple[object, ...]]]:
    """The INSERT and its rows in the driver's own parameter style."""
    sqlite = dialect == "sqlite"
    if sqlite:
        values = ", ".join("?" * 14)
        expires = capture_expires.strftime("%Y-%m-%d %H:%M:%S.%f")  # type: ignore[attr-defined]
    else:
        values = "%s, %s, %s, %s, %s, %s, %s, %s, CAST(%s AS json), %s, %s, %s, %s, %s"
        expires = capture_expires
    rows: list[tuple[object, ...]] = [
        (
            item.id,
            item.hook_id,
            item.version,
            item.point,
            # SQLAlchemy's own text form of a timestamp on SQLite (read back as UTC).
            item.started_at.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else item.started_at,
            item.duration_ms,
            item.outcome,
            item.error,
            json.dumps(item.console),
            last_seq + number,
            item.truncated,
            item.test,
            item.captured,
            expires if item.captured is not None else None,
        )
        for number, item in enumerate(batch, 1)
    ]
    # Only constants are formatted in; every value is a bound parameter.
    return f"INSERT INTO hook_invocations ({_COLUMNS}) VALUES ({values})", rows  # noqa: S608
