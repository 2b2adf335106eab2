"""Scheduled hooks: each tick of a hook's cron schedule runs it once, across every
server process and node, never overlapping its own previous run.

Every process looks at the enabled schedules every ``poll_interval`` (sooner
when a tick is nearer) and claims a due tick with a compare-and-set UPDATE of
the schedule's row — ``WHERE hook_id = ? AND next_run_at = <the tick it read>
AND running_since IS NULL`` — which sets ``running_since``, a claim token and
the next tick at once. Of several processes that read the same row, exactly
one changes it: PostgreSQL re-reads the row after the winner commits, SQLite
lets one writer at a time; the same statement on both. The winner runs the
hook through the flow engine, so the run is recorded, streamed and counted as
any invocation is, then clears the claim and notes how the tick ended.

- **No overlap.** A tick that comes due while the previous run still holds
  the row is skipped: the row moves on to the next tick after now, and the
  skip is a record in the hook's log (outcome ``skipped``), a server log line
  and a metric.
- **Missed ticks.** A tick more than ``poll_interval + grace`` late had no
  server to run it. With ``catch_up`` the hook runs once, for the latest
  missed tick; without, the ticks are skipped (and logged as above). Either
  way the schedule goes on from its next tick after now.
- **A run whose process died** holds the row until its hook's timeout plus a
  margin has passed; then any process releases it.

A tick runs at most once: a process that stops mid-run does not hand the tick
back (unlike an asynchronous point's delivery, which runs at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from authhooks.flows.engine import FlowRunner, Recorder, new_invocation_id
from authhooks.hooks import schedules
from authhooks.hooks.store import FlowHook
from authhooks.logs.records import Invocation
from authhooks.observability.metrics import SCHEDULE_TICKS
from authhooks.points.contract import Point
from authhooks.points.cron import Schedule
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)

# Never sleep less than this between passes: a tick due "now" is claimed on the
# next pass, not in a busy loop.
_MIN_SLEEP = 0.02


@dataclass(frozen=True)
class SchedulePolicy:
    poll_interval: float = 1.0  # seconds between looks at the schedules, at most
    # A tick later than poll_interval + grace was missed: no server was running.
    grace: float = 5.0
    # A run held this long past its hook's timeout: its process stopped.
    stale_margin: float = 30.0


@dataclass(frozen=True)
class _Run:
    hook_id: str
    claim: str
    tick: datetime
    schedule: Schedule
    missed_since: datetime | None = None  # a catch-up run: the first tick missed


@dataclass(frozen=True)
class _Skip:
    hook_id: str
    version: int
    reason: str
    metric: str  # "overlap" or "missed"


@dataclass
class _Decided:
    runs: list[_Run] = field(default_factory=list)
    skips: list[_Skip] = field(default_factory=list)
    soonest: datetime | None = None  # the nearest tick of any schedule looked at


def iso(moment: datetime) -> str:
    """A tick as hooks and logs show it: ISO 8601, in UTC, with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


class Scheduler:
    """Claims and runs this process's share of scheduled hooks' ticks."""

    def __init__(
        self,
        database: Database,
        flows: FlowRunner,
        point: Point[Any, Any],
        record: Recorder,
        policy: SchedulePolicy,
    ) -> None:
        self._db = database
        self._flows = flows
        self._point = point
        self._record = record
        self.policy = policy
        self._running: dict[str, tuple[_Run, asyncio.Task[None]]] = {}  # by claim
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._database_down = False

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._schedule_forever())

    def nudge(self) -> None:
        """Look at the schedules now (a schedule changed in this process)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop; runs in progress are cancelled and their rows released (their ticks
        are not run again: a tick runs at most once)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        running = list(self._running.values())
        for _, task in running:
            task.cancel()
        await asyncio.gather(*(task for _, task in running), return_exceptions=True)
        if running:
            try:
                await run_sync(self._release, [run for run, _ in running])
            except Exception:  # they go stale instead, and are released by another
                log.exception("schedules: could not release %d runs", len(running))

    async def _schedule_forever(self) -> None:
        while True:
            delay = self.policy.poll_interval
            try:
                delay = await self._pass()
            except DBAPIError as error:
                self._down(error)
            except Exception:  # a bug or an odd database error must not end schedules
                log.exception("schedules: a pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(delay, _MIN_SLEEP))
            self._wake.clear()

    async def _pass(self) -> float:
        """Claim the due ticks of the hooks this process runs; seconds until the next look."""
        live = {hook.id: hook for hook in await self._flows.hooks(self._point)}
        if not live:
            return self.policy.poll_interval
        mine = {run.claim for run, _ in self._running.values()}
        decided: _Decided = await run_sync(self._decide, set(live), mine)
        if self._database_down:
            log.warning("schedules: database available again")
            self._database_down = False
        for skip in decided.skips:
            self._skipped(skip)
        for run in decided.runs:
            hook = live[run.hook_id]
            SCHEDULE_TICKS.labels(hook.id, "caught_up" if run.missed_since else "run").inc()
            task = asyncio.create_task(self._run(hook, run))
            self._running[run.claim] = (run, task)
            task.add_done_callback(functools.partial(self._finished, run.claim))
        delay = self.policy.poll_interval
        if decided.soonest is not None:
            delay = min(delay, (decided.soonest - utcnow()).total_seconds())
        return delay

    def _down(self, error: DBAPIError) -> None:
        if not self._database_down:
            log.warning("schedules: database unavailable (%s)", type(error.orig).__name__)
        self._database_down = True

    def _finished(self, claim: str, _: asyncio.Task[None]) -> None:
        self._running.pop(claim, None)

    # --- deciding, in a thread --------------------------------------------------------

    def _decide(self, live: Collection[str], mine: Collection[str]) -> _Decided:
        now = utcnow()
        table = models.HookSchedule
        with self._db.session() as session:
            rows = session.execute(
                select(table, models.Hook.version, models.Hook.timeout_ms)
                .join(models.Hook, models.Hook.id == table.hook_id)
                .where(models.Hook.enabled.is_(True), table.hook_id.in_(list(live)))
                .order_by(table.hook_id)
            ).all()
        decided = _Decided()
        for row, version, timeout_ms in rows:
            running = row.running_since is not None
            if running and row.claim not in mine and self._stale(row, timeout_ms, now):
                running = not self._release_stale(row)
            next_run_at = self._decide_one(row, version, running, now, decided)
            if decided.soonest is None or next_run_at < decided.soonest:
                decided.soonest = next_run_at
        return decided

    def _decide_one(
        self,
        row: models.HookSchedule,
        version: int,
        running: bool,
        now: datetime,
        decided: _Decided,
    ) -> datetime:
        """What becomes of one schedule's due tick; its next tick as this pass leaves it."""
        tick = row.next_run_at
        if tick > now:
            return tick
        schedule = schedules.stored(row)
        upcoming = schedule.next_after(now)
        if running:
            # Never overlap: the run in progress keeps the row; this tick is skipped.
            if self._advance(row.hook_id, tick, upcoming, running=True):
                decided.skips.append(
                    _Skip(
                        row.hook_id,
                        version,
                        f"tick {iso(tick)} skipped: the run started at "
                        f"{iso(row.running_since or now)} is still going (runs never overlap); "
                        f"next tick {iso(upcoming)}",
                        "overlap",
                    )
                )
            return upcoming
        missed = now - tick > timedelta(seconds=self.policy.poll_interval + self.policy.grace)
        if missed and not schedule.catch_up:
            if self._advance(row.hook_id, tick, upcoming, running=False):
                decided.skips.append(
                    _Skip(
                        row.hook_id,
                        version,
                        f"ticks from {iso(tick)} to {iso(now)} missed while no server was "
                        f"running them, and not caught up (catch_up is off); next tick "
                        f"{iso(upcoming)}",
                        "missed",
                    )
                )
            return upcoming
        if missed:  # catch_up: once, for the latest tick missed, then on from now
            run = _Run(row.hook_id, "", schedule.latest_until(now), schedule, missed_since=tick)
            after = upcoming
        else:
            run = _Run(row.hook_id, "", tick, schedule)
            after = schedule.next_after(tick)
        claim = secrets.token_hex(8)
        if self._claim(row.hook_id, tick, after, claim, now):
            decided.runs.append(replace(run, claim=claim))
        return after

    def _claim(
        self, hook_id: str, tick: datetime, after: datetime, claim: str, now: datetime
    ) -> bool:
        """Take the tick, if no other process did and the hook is still enabled: one
        conditional UPDATE."""
        table = models.HookSchedule
        enabled = select(models.Hook.id).where(
            models.Hook.id == hook_id, models.Hook.enabled.is_(True)
        )
        with self._db.session() as session:
            taken = session.execute(
                update(table)
                .where(
                    table.hook_id == hook_id,
                    table.next_run_at == tick,
                    table.running_since.is_(None),
                    table.hook_id.in_(enabled),
                )
                .values(running_since=now, claim=claim, next_run_at=after)
                .execution_options(synchronize_session=False)
            )
            return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

    def _advance(self, hook_id: str, tick: datetime, upcoming: datetime, *, running: bool) -> bool:
        """Move past a tick that is not run; True for the one process that did."""
        table = models.HookSchedule
        held = table.running_since.is_not(None) if running else table.running_since.is_(None)
        with self._db.session() as session:
            moved = session.execute(
                update(table)
                .where(table.hook_id == hook_id, table.next_run_at == tick, held)
                .values(next_run_at=upcoming)
                .execution_options(synchronize_session=False)
            )
            return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    def _stale(self, row: models.HookSchedule, timeout_ms: int, now: datetime) -> bool:
        assert row.running_since is not None
        limit = timedelta(milliseconds=timeout_ms, seconds=self.policy.stale_margin)
        return now - row.running_since > limit

    def _release_stale(self, row: models.HookSchedule) -> bool:
        """Free a row held by a run whose process stopped; True when it is free now."""
        table = models.HookSchedule
        with self._db.session() as session:
            released = session.execute(
                update(table)
                .where(table.hook_id == row.hook_id, table.claim == row.claim)
                .values(running_since=None, claim=None, last_status="abandoned")
                .execution_options(synchronize_session=False)
            )
        if released.rowcount == 1:  # type: ignore[attr-defined]
            log.warning(
                "schedules: hook %s: the run started at %s never finished (its server "
                "process stopped?); released",
                row.hook_id,
                iso(row.running_since or utcnow()),
            )
            return True
        return False

    # --- running ----------------------------------------------------------------------

    async def _run(self, hook: FlowHook, run: _Run) -> None:
        status = "error"
        try:
            event = self._point.parse_event(
                {
                    "scheduled_at": iso(run.tick),
                    "hook": {"id": hook.id, "name": hook.name},
                    "schedule": {"cron": run.schedule.cron, "timezone": run.schedule.timezone},
                }
            )
            result = await self._flows.run_hooks(self._point, [hook], event, self._annotated(run))
            status = "ok" if result.stop is None else result.stop.failure.kind
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("schedules: hook %s: the run of tick %s failed", hook.id, iso(run.tick))
        try:
            await run_sync(self._finish, run, status)
        except DBAPIError as error:  # the row goes stale, and is released by then
            self._down(error)

    def _annotated(self, run: _Run) -> Recorder:
        """The invocation record, with the tick it ran for."""

        def record(invocation: Invocation) -> None:
            at = invocation.started_at.timestamp()
            notes = [f"scheduled_at {iso(run.tick)}"]
            if run.missed_since is not None:
                notes.append(
                    f"caught up: ticks from {iso(run.missed_since)} were missed while no "
                    "server was running them; this run is for the latest (catch_up)"
                )
            lines = [{"at": at, "stream": "authhooks", "text": note} for note in notes]
            self._record(replace(invocation, console=[*invocation.console, *lines]))

        return record

    def _skipped(self, skip: _Skip) -> None:
        """A tick not run: a record in the hook's log, a server log line, a metric."""
        SCHEDULE_TICKS.labels(skip.hook_id, f"skipped_{skip.metric}").inc()
        log.warning("schedules: hook %s: %s", skip.hook_id, skip.reason)
        now = utcnow()
        self._record(
            Invocation(
                id=new_invocation_id(),
                hook_id=skip.hook_id,
                version=skip.version,
                point=self._point.id,
                started_at=now,
                duration_ms=0.0,
                outcome="skipped",
                error=skip.reason,
                console=[{"at": now.timestamp(), "stream": "authhooks", "text": skip.reason}],
            )
        )

    def _finish(self, run: _Run, status: str) -> None:
        with self._db.session() as session:
            session.execute(
                update(models.HookSchedule)
                .where(
                    models.HookSchedule.hook_id == run.hook_id,
                    models.HookSchedule.claim == run.claim,
                )
                .values(running_since=None, claim=None, last_run_at=run.tick, last_status=status)
            )

    def _release(self, runs: list[_Run]) -> None:
        with self._db.session() as session:
            for run in runs:
                session.execute(
                    update(models.HookSchedule)
                    .where(
                        models.HookSchedule.hook_id == run.hook_id,
                        models.HookSchedule.claim == run.claim,
                    )
                    .values(running_since=None, claim=None, last_status="interrupted")
                )
