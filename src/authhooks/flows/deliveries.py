"""Durable, at-least-once runs of the asynchronous points' hooks.

The request that causes an event (a signup, a password change) writes one
``hook_deliveries`` row per enabled hook in its own transaction: if the user
is stored, the runs are queued; if not, nothing is. Any server process then
claims due rows by taking a lease (``lease_until``) with a conditional
UPDATE — on PostgreSQL after ``SELECT … FOR UPDATE SKIP LOCKED``, so that
processes never wait on each other's rows — runs the hook, and marks the row
delivered, or schedules a retry with exponential backoff, or after the last
attempt marks it failed. A process killed mid-delivery leaves a lease that
lapses, after which another process (or the restarted one) delivers again;
hooks receive a stable ``event_id`` to de-duplicate by.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from authhooks.flows.engine import FlowRunner, Recorder
from authhooks.hooks.store import FlowHook
from authhooks.logs.records import Invocation
from authhooks.observability.metrics import DELIVERY_LAG, DELIVERY_QUEUE
from authhooks.points.contract import BadEvent, Point
from authhooks.storage import leases, models
from authhooks.storage.database import Database, page
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
_CONCURRENCY = 8
_PRUNE_EVERY = 600.0  # seconds
# How often the pending deliveries are counted for the queue-depth metric.
_COUNT_EVERY = 5.0  # seconds


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8
    backoff: float = 2.0  # seconds before the second attempt; doubles each time
    lease: float = 60.0
    poll_interval: float = 1.0
    keep_finished: timedelta = timedelta(days=7)

    def retry_delay(self, attempts: int) -> timedelta:
        """How long to wait after failed attempt number ``attempts`` (1-based), ±10%."""
        delay = timedelta(seconds=self.backoff * 2 ** (attempts - 1))
        return min(delay, MAX_BACKOFF) * random.uniform(0.9, 1.1)  # noqa: S311 - jitter only


def enqueue(
    session: Session, point: Point[Any, Any], hooks: Sequence[FlowHook], event: Any
) -> str | None:
    """Queue one delivery of ``event`` per hook in the caller's transaction; the event id."""
    if not hooks:
        return None
    event_id = "evt_" + secrets.token_hex(12)
    now = utcnow()
    for hook in hooks:
        session.add(
            models.HookDelivery(
                id="dlv_" + secrets.token_hex(12),
                event_id=event_id,
                hook_id=hook.id,
                point=point.id,
                payload=point.dump_event(event),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return event_id


def list_deliveries(
    session: Session, hook_id: str, *, status: str | None, offset: int, limit: int
) -> tuple[list[models.HookDelivery], int]:
    query = select(models.HookDelivery).where(models.HookDelivery.hook_id == hook_id)
    if status is not None:
        query = query.where(models.HookDelivery.status == status)
    query = query.order_by(models.HookDelivery.created_at.desc(), models.HookDelivery.id)
    return page(session, query, offset, limit)


@dataclass(frozen=True)
class _Claimed:
    id: str
    claim: str  # this process's claim token: every later write is conditional on it
    event_id: str
    hook_id: str
    point: str
    payload: dict[str, Any]
    attempt: int
    created_at: datetime


class Deliverer:
    """Claims and runs due deliveries in this process, a few at a time.

    A claim is a lease (``lease_until``) plus a token (``claim``). The lease is
    renewed while the delivery runs, so only a process that stopped lets it
    lapse; and every later write names the token, so a process whose claim was
    taken over can no longer change the row.
    """

    def __init__(
        self,
        database: Database,
        flows: FlowRunner,
        points: dict[str, Point[Any, Any]],
        record: Recorder,
        policy: DeliveryPolicy,
    ) -> None:
        self._db = database
        self._points = points
        self._flows = flows
        self._record = record
        self.policy = policy
        self._wake = asyncio.Event()
        self._running: dict[str, tuple[_Claimed, asyncio.Task[None]]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._database_down = False
        self._renewed_at = self._pruned_at = time.monotonic()
        self._counted_at = 0.0

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._deliver_forever())

    def nudge(self) -> None:
        """Look for due deliveries now (called after this process queued some)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop; deliveries still running are cancelled and handed back at once."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        running = list(self._running.values())
        for _, task in running:
            task.cancel()
        await asyncio.gather(*(task for _, task in running), return_exceptions=True)
        if running:
            try:
                await run_sync(self._release, [claimed for claimed, _ in running])
            except Exception:  # their leases lapse instead
                log.exception("deliveries: could not hand back %d deliveries", len(running))

    async def _deliver_forever(self) -> None:
        while True:
            try:
                claimed = await self._claim_some()
            except Exception:  # a bug or an odd database error must not end deliveries
                log.exception("deliveries: claiming failed")
                claimed = []
            if claimed and len(self._running) < _CONCURRENCY:
                continue  # there may be more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_interval)
            self._wake.clear()

    async def _claim_some(self) -> list[_Claimed]:
        now = time.monotonic()
        if self._running and now - self._renewed_at >= leases.renew_every(self.policy.lease):
            self._renewed_at = now
            await self._guarded(self._renew, [claimed for claimed, _ in self._running.values()])
        if now - self._pruned_at >= _PRUNE_EVERY:
            self._pruned_at = now
            await self._guarded(self._prune)
        if now - self._counted_at >= _COUNT_EVERY:
            self._counted_at = now
            pending = await self._guarded(self._count_pending)
            if pending is not None:
                DELIVERY_QUEUE.set(pending)
        free = _CONCURRENCY - len(self._running)
        if free <= 0:
            return []
        claimed: list[_Claimed] = await self._guarded(self._claim, free, set(self._running)) or []
        for delivery in claimed:
            task = asyncio.create_task(self._deliver_logged(delivery))
            self._running[delivery.id] = (delivery, task)
            task.add_done_callback(functools.partial(self._finished, delivery.id))
        return claimed

    async def _guarded(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run database work in a thread; while the database is down, say so once."""
        try:
            result = await run_sync(work, *args)
        except DBAPIError as error:
            if not self._database_down:
                log.warning("deliveries: database unavailable (%s)", type(error.orig).__name__)
            self._database_down = True
            return None
        if self._database_down:
            log.warning("deliveries: database available again")
        self._database_down = False
        return result

    def _finished(self, key: str, _: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        self._wake.set()  # a slot is free

    def _claim(self, limit: int, running: set[str]) -> list[_Claimed]:
        now = utcnow()
        lease_until = now + timedelta(seconds=self.policy.lease)
        table = models.HookDelivery
        due = (
            (table.status == "pending")
            & (table.next_attempt_at <= now)
            & (table.lease_until.is_(None) | (table.lease_until < now))
        )
        claimed: list[_Claimed] = []
        with self._db.session() as session:
            rows = session.scalars(
                select(table)
                .where(due)
                .order_by(table.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                if row.id in running:
                    continue
                if row.attempts >= self.policy.max_attempts:
                    # Every attempt ended with its process: give up rather than loop.
                    session.execute(
                        update(table)
                        .where(table.id == row.id, due)
                        .values(
                            status="failed",
                            claim=None,
                            lease_until=None,
                            finished_at=now,
                            last_error=row.last_error
                            or "no attempt finished: the server stopped during each one",
                        )
                    )
                    continue
                token = secrets.token_hex(8)
                # Conditional, so that of two processes that read the same row one wins.
                taken = session.execute(
                    update(table)
                    .where(table.id == row.id, due)
                    .values(lease_until=lease_until, claim=token, attempts=table.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(
                        _Claimed(
                            row.id,
                            token,
                            row.event_id,
                            row.hook_id,
                            row.point,
                            row.payload,
                            row.attempts + 1,
                            row.created_at,
                        )
                    )
        return claimed

    async def _deliver_logged(self, delivery: _Claimed) -> None:
        try:
            await self._deliver(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Counted as a failed attempt, so that a delivery that always breaks the
            # server's own code ends as failed instead of looping.
            log.exception("delivery %s failed unexpectedly", delivery.id)
            reason = f"internal error ({type(error).__name__}): the server log has details"
            await self._guarded(self._after_failure, delivery, reason)

    async def _deliver(self, delivery: _Claimed) -> None:
        point = self._points.get(delivery.point)
        if point is None:  # declared in another process, and not loaded here yet
            await self._guarded(
                self._retry, delivery, f"point {delivery.point!r} is not loaded here yet"
            )
            return
        hook = next(
            (found for found in await self._flows.hooks(point) if found.id == delivery.hook_id),
            None,
        )
        if hook is None:
            await self._guarded(
                self._finish, delivery, "cancelled", "the hook is no longer enabled"
            )
            return
        last = delivery.attempt >= self.policy.max_attempts
        queued = {
            **delivery.payload,
            "event_id": delivery.event_id,
            "delivery": {"id": delivery.id, "attempt": delivery.attempt},
        }
        try:
            # In a thread: a declared point's schema check is work of its own.
            event = await run_sync(point.parse_event, queued)
        except BadEvent as error:  # queued by a version whose events had another shape
            await self._guarded(self._finish, delivery, "failed", f"unreadable event: {error}")
            return
        result = await self._flows.run_hooks(point, [hook], event, self._annotated(delivery, last))
        if result.stop is None:
            await self._guarded(self._finish, delivery, "delivered", None)
            DELIVERY_LAG.observe((utcnow() - delivery.created_at).total_seconds())
        else:
            await self._guarded(self._after_failure, delivery, result.stop.failure.describe())

    def _annotated(self, delivery: _Claimed, last: bool) -> Recorder:
        """The invocation record, with which delivery and attempt it was."""

        def record(invocation: Invocation) -> None:
            at = invocation.started_at.timestamp()
            notes = [
                f"event {delivery.event_id}, delivery {delivery.id}, "
                f"attempt {delivery.attempt} of {self.policy.max_attempts}"
            ]
            if invocation.outcome != "ok":
                notes.append(
                    "no attempts left: the delivery is marked failed"
                    if last
                    else "the delivery will be retried"
                )
            lines = [{"at": at, "stream": "authhooks", "text": note} for note in notes]
            self._record(replace(invocation, console=[*invocation.console, *lines]))

        return record

    def _after_failure(self, delivery: _Claimed, error: str) -> None:
        if delivery.attempt >= self.policy.max_attempts:
            self._finish(delivery, "failed", error)
        else:
            self._retry(delivery, error)

    def _finish(self, delivery: _Claimed, status: str, error: str | None) -> None:
        with self._db.session() as session:
            session.execute(
                update(models.HookDelivery)
                .where(self._held(delivery))
                .values(
                    status=status,
                    claim=None,
                    lease_until=None,
                    last_error=error,
                    finished_at=utcnow(),
                )
            )

    def _retry(self, delivery: _Claimed, error: str) -> None:
        when = utcnow() + self.policy.retry_delay(delivery.attempt)
        with self._db.session() as session:
            session.execute(
                update(models.HookDelivery)
                .where(self._held(delivery))
                .values(next_attempt_at=when, claim=None, lease_until=None, last_error=error)
            )

    def _renew(self, running: list[_Claimed]) -> None:
        with self._db.session() as session:
            leases.renew(
                session,
                models.HookDelivery,
                [(delivery.id, delivery.claim) for delivery in running],
                self.policy.lease,
                models.HookDelivery.status == "pending",
            )

    def _release(self, running: list[_Claimed]) -> None:
        """Hand back deliveries this process will not finish: due again at once."""
        with self._db.session() as session:
            for delivery in running:
                session.execute(
                    update(models.HookDelivery)
                    .where(self._held(delivery))
                    .values(claim=None, lease_until=None, attempts=models.HookDelivery.attempts - 1)
                )

    def _count_pending(self) -> int:
        with self._db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(models.HookDelivery)
                    .where(models.HookDelivery.status == "pending")
                )
                or 0
            )

    def _prune(self) -> None:
        """Finished deliveries leave after ``keep_finished``: they hold users' details."""
        cutoff = utcnow() - self.policy.keep_finished
        with self._db.session() as session:
            session.execute(
                delete(models.HookDelivery).where(
                    models.HookDelivery.status != "pending",
                    models.HookDelivery.finished_at < cutoff,
                )
            )

    @staticmethod
    def _held(delivery: _Claimed) -> Any:
        return (
            (models.HookDelivery.id == delivery.id)
            & (models.HookDelivery.claim == delivery.claim)
            & (models.HookDelivery.status == "pending")
        )


def delivery_view(row: models.HookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "hook_id": row.hook_id,
        "point": row.point,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }
