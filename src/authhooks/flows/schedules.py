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
  metric counts it. The ticks skipped while one run went on are told once,
  when it ended: as a note in the next run's record when this process runs
  it, else as one record in the hook's log (outcome ``skipped``), and one
  server log line.
- **Missed ticks.** A tick more than ``poll_interval + grace`` late had no
  server to run it. With ``catch_up`` the hook runs once, for the latest
  missed tick; without, the missed ticks are skipped (and logged as above),
  except the latest when it is itself within ``poll_interval + grace``: that
  one is on time, and runs. Either way the schedule goes on from its next
  tick after now.
- **A run whose process died** holds the row until its hook's timeout plus a
  margin has passed, by the database's clock (``running_since`` is written
  and judged with it, so node clocks never meet); then any process releases
  it.
- **One bad row** (a schedule this node cannot compute, such as a time zone
  its tz database lacks) is skipped with a warning; a database error on one
  row ends nothing but that row's turn. A tick claimed is always run, or its
  claim released on close: never left to go stale.
- **At most ``max_running`` runs at once** in a process: past it, it claims
  nothing, and other processes take the due ticks.

A tick runs at most once: a process that stops mid-run does not hand the tick
back (unlike an asynchronous point's delivery, which runs at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy import func, select, update
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
from authhooks.storage.models import UTCDateTime, utcnow

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
    # Scheduled runs at once in this process, at most: past it, others claim.
    max_running: int = 8


@dataclass(frozen=True)
class _Run:
    hook_id: str
    claim: str
    tick: datetime
    schedule: Schedule
    missed_since: datetime | None = None  # a catch-up run: the first tick missed
    notes: tuple[str, ...] = ()  # what its record says besides: ticks skipped before it


@dataclass(frozen=True)
class _Skip:
    """Ticks not run, told once: a record in the hook's log and a server log line."""

    hook_id: str
    version: int
    reason: str


@dataclass
class _Streak:
    """Ticks skipped in a row while one run (``claim``) went on; told when it ends."""

    claim: str | None
    running_since: datetime
    version: int
    first: datetime
    last: datetime
    count: int = 0

    def told(self) -> str:
        ticks = f"tick {iso(self.first)}"
        if self.count > 1:
            ticks = f"{self.count} ticks, from {iso(self.first)} to {iso(self.last)},"
        return (
            f"{ticks} skipped while the previous run (started at {iso(self.running_since)}) "
            "was still going (runs never overlap)"
        )


@dataclass
class _Decided:
    runs: list[_Run] = field(default_factory=list)
    skips: list[_Skip] = field(default_factory=list)
    soonest: datetime | None = None  # the nearest tick of any schedule looked at
    full: bool = False  # a due tick was left for others: this process runs its most
    database_error: bool = False


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
        self._full = False  # the last pass stopped claiming at max_running
        # The pass in progress: its claims, until they are handed to tasks.
        self._pending: _Decided | None = None
        # Touched by _decide only (one pass at a time), and by close after the loop.
        self._streaks: dict[str, _Streak] = {}  # by hook
        self._unkept: dict[str, str] = {}  # hook -> why its schedule cannot be computed

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._schedule_forever())

    async def close(self) -> None:
        """Stop; runs in progress are cancelled and their rows released (their ticks
        are not run again: a tick runs at most once), and so are ticks claimed by a
        pass cut short, which never started."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        running = list(self._running.values())
        for _, task in running:
            task.cancel()
        await asyncio.gather(*(task for _, task in running), return_exceptions=True)
        claimed = [run for run, _ in running]
        if self._pending is not None:
            claimed += self._pending.runs
            self._pending = None
        if claimed:
            try:
                await run_sync(self._release, claimed)
            except Exception:  # they go stale instead, and are released by another
                log.exception("schedules: could not release %d runs", len(claimed))
        for hook_id, streak in self._streaks.items():
            self._skipped(_Skip(hook_id, streak.version, streak.told()))
        self._streaks.clear()

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
        room = self.policy.max_running - len(self._running)
        decided = self._pending = _Decided()
        try:
            await run_sync(self._decide, set(live), mine, room, decided)
        except DBAPIError as error:  # reading the schedules failed: nothing was claimed
            self._down(error)
        # Cancelled (close), the claims made are released by close. Else every
        # claim made is handed over at once, whatever the pass met after it.
        self._pending = None
        for run in decided.runs:
            hook = live[run.hook_id]
            SCHEDULE_TICKS.labels(hook.id, "caught_up" if run.missed_since else "run").inc()
            task = asyncio.create_task(self._run(hook, run))
            self._running[run.claim] = (run, task)
            task.add_done_callback(functools.partial(self._finished, run.claim))
        self._full = decided.full
        if self._database_down and not decided.database_error:
            log.warning("schedules: database available again")
            self._database_down = False
        for skip in decided.skips:
            self._skipped(skip)
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
        if self._full:  # room again for a tick left waiting
            self._full = False
            self._wake.set()

    # --- deciding, in a thread --------------------------------------------------------

    def _decide(
        self, live: Collection[str], mine: Collection[str], room: int, decided: _Decided
    ) -> None:
        """Claim, skip and release what is due, row by row, into ``decided`` (which
        the caller holds even when this is cut short)."""
        table = models.HookSchedule
        with self._db.session() as session:
            # The database's clock: what running_since is written with.
            db_now = session.scalar(select(func.now(type_=UTCDateTime())))
            rows = session.execute(
                select(table, models.Hook.version, models.Hook.timeout_ms)
                .join(models.Hook, models.Hook.id == table.hook_id)
                .where(models.Hook.enabled.is_(True), table.hook_id.in_(list(live)))
                .order_by(table.hook_id)
            ).all()
        assert db_now is not None
        for hook_id in set(self._streaks) - {row.hook_id for row, _, _ in rows}:
            del self._streaks[hook_id]  # disabled or gone: its skips were counted
        for row, version, timeout_ms in rows:
            try:
                self._decide_row(row, version, timeout_ms, mine, room, db_now, decided)
            except DBAPIError as error:
                decided.database_error = True
                self._down(error)
            except Exception as error:  # one row must not stop the others
                self._unkeepable(row, error)
            else:
                self._unkept.pop(row.hook_id, None)

    def _unkeepable(self, row: models.HookSchedule, error: Exception) -> None:
        """A row this node cannot follow: warned about once (per schedule and error),
        then passed over until it changes."""
        why = f"{row.cron!r} in {row.timezone!r}: {type(error).__name__}: {error}"
        if self._unkept.get(row.hook_id) != why:
            self._unkept[row.hook_id] = why
            log.warning(
                "schedules: hook %s: its schedule %s cannot be followed on this server; "
                "skipped until it changes (is the time zone known here? tzdata)",
                row.hook_id,
                why,
                exc_info=not isinstance(error, (zoneinfo.ZoneInfoNotFoundError, ValueError)),
            )

    def _decide_row(
        self,
        row: models.HookSchedule,
        version: int,
        timeout_ms: int,
        mine: Collection[str],
        room: int,
        db_now: datetime,
        decided: _Decided,
    ) -> None:
        running = row.running_since is not None
        if running and row.claim not in mine and self._stale(row, timeout_ms, db_now):
            running = not self._release_stale(row)
        streak = self._told_now(row, running)
        claimed = len(decided.runs)
        next_run_at = self._decide_one(row, version, running, room, decided, streak)
        if streak is not None and len(decided.runs) == claimed:  # no run of ours to note it
            decided.skips.append(_Skip(row.hook_id, streak.version, streak.told()))
        if next_run_at is not None and (decided.soonest is None or next_run_at < decided.soonest):
            decided.soonest = next_run_at

    def _told_now(self, row: models.HookSchedule, running: bool) -> _Streak | None:
        """The skips to tell in this pass: those of a run that ended, once the next
        tick is due (so that they go in its run's record)."""
        streak = self._streaks.get(row.hook_id)
        if streak is None or (running and row.claim == streak.claim):
            return None  # none, or the run they wait on is still going
        if not running and row.next_run_at > utcnow():
            return None  # told with the next tick
        return self._streaks.pop(row.hook_id)

    def _decide_one(
        self,
        row: models.HookSchedule,
        version: int,
        running: bool,
        room: int,
        decided: _Decided,
        streak: _Streak | None,
    ) -> datetime | None:
        """What becomes of one schedule's due tick; its next tick as this pass leaves
        it (None: a due tick left for other processes)."""
        now = utcnow()
        tick = row.next_run_at
        if tick > now:
            return tick
        schedule = schedules.stored(row)
        upcoming = schedule.next_after(now)
        if running:
            # Never overlap: the run in progress keeps the row; this tick is skipped,
            # counted now and told once that run ends.
            if self._advance(row.hook_id, tick, upcoming, running=True):
                SCHEDULE_TICKS.labels(row.hook_id, "skipped_overlap").inc()
                held = self._streaks.setdefault(
                    row.hook_id,
                    _Streak(row.claim, row.running_since or now, version, tick, tick),
                )
                held.last, held.count = tick, held.count + 1
            return upcoming
        window = timedelta(seconds=self.policy.poll_interval + self.policy.grace)
        skips_missed = False  # a run for the latest tick, the older ones missed
        notes = () if streak is None else (streak.told(),)
        if now - tick <= window:
            run = _Run(row.hook_id, "", tick, schedule, notes=notes)
            after = schedule.next_after(tick)
        elif schedule.catch_up:  # once, for the latest tick missed, then on from now
            run = _Run(row.hook_id, "", schedule.latest_until(now), schedule, tick, notes)
            after = upcoming
        else:
            skips_missed = True
            latest = schedule.latest_until(now)
            missed = (
                f"ticks from {iso(tick)} to {iso(now)} missed while no server was running "
                "them, and not caught up (catch_up is off)"
            )
            if now - latest > window:
                if self._advance(row.hook_id, tick, upcoming, running=False):
                    SCHEDULE_TICKS.labels(row.hook_id, "skipped_missed").inc()
                    reason = f"{missed}; next tick {iso(upcoming)}"
                    decided.skips.append(_Skip(row.hook_id, version, reason))
                return upcoming
            # The latest tick is on time: it runs, the older ones were missed.
            missed = (
                f"ticks from {iso(tick)} until {iso(latest)} missed while no server was "
                "running them, and not caught up (catch_up is off); this run is for "
                f"{iso(latest)}, on time"
            )
            run = _Run(row.hook_id, "", latest, schedule, notes=(*notes, missed))
            after = schedule.next_after(latest)
        if len(decided.runs) >= room:
            decided.full = True  # others claim it, or this process once a run ends
            return None
        claim = secrets.token_hex(8)
        if self._claim(row.hook_id, tick, after, claim):
            if skips_missed:
                SCHEDULE_TICKS.labels(row.hook_id, "skipped_missed").inc()
            if run.notes:
                log.warning("schedules: hook %s: %s", row.hook_id, "; ".join(run.notes))
            decided.runs.append(replace(run, claim=claim))
        return after

    def _claim(self, hook_id: str, tick: datetime, after: datetime, claim: str) -> bool:
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
                # The database's clock, as the stale check reads it.
                .values(running_since=func.now(), claim=claim, next_run_at=after)
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

    def _stale(self, row: models.HookSchedule, timeout_ms: int, db_now: datetime) -> bool:
        """Held past its timeout and margin, both times by the database's clock."""
        assert row.running_since is not None
        limit = timedelta(milliseconds=timeout_ms, seconds=self.policy.stale_margin)
        return db_now - row.running_since > limit

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
            notes = [f"scheduled_at {iso(run.tick)}", *run.notes]
            if run.missed_since is not None:
                notes.append(
                    f"caught up: ticks from {iso(run.missed_since)} were missed while no "
                    "server was running them; this run is for the latest (catch_up)"
                )
            lines = [{"at": at, "stream": "authhooks", "text": note} for note in notes]
            self._record(replace(invocation, console=[*invocation.console, *lines]))

        return record

    def _skipped(self, skip: _Skip) -> None:
        """Ticks not run: a record in the hook's log, a server log line (the metric
        counted each)."""
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
