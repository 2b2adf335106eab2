"""Queued deployments run, each once across every server process and node.

A process claims a queued deployment with a conditional UPDATE (after
``FOR UPDATE SKIP LOCKED`` on PostgreSQL): only one process's UPDATE
matches the row, so only one deploys it. The claim is a lease plus a token;
a process that dies leaves a lease that lapses, and another takes the
deployment up again; while the deployment runs, its process renews the
lease every third of its length (storage/leases.py, as hook deliveries do),
so a deployment longer than the lease is never taken from a process that is
alive. A source's deployments run one at a time, oldest
first, under a lock every process respects (``Database.exclusive``: a
PostgreSQL advisory lock, a file lock on SQLite). The process that queued a
deployment starts it at once; others look every poll interval, when they
also poll the sources that ask for it.

Each source keeps its newest ``keep`` deployments (AUTHHOOKS_GIT_KEEP_DEPLOYMENTS)
and the one that made its live hooks; older finished ones are deleted after each
deployment of the source and in a sweep every ten minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta

from anyio.to_thread import run_sync
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from authhooks.gitsync import sources
from authhooks.gitsync.deployer import Deployer
from authhooks.storage import leases, models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "failed", "superseded")
_SWEEP_EVERY = 600.0  # seconds between sweeps of every source's old deployments


class DeploymentWorker:
    def __init__(
        self,
        database: Database,
        deployer: Deployer,
        *,
        lease: float,
        poll_interval: float,
        keep: int = 100,
    ) -> None:
        self._db = database
        self._deployer = deployer
        self._lease = lease
        self._poll_interval = poll_interval
        self._keep = keep
        self._swept_at = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever())

    def nudge(self) -> None:
        """A deployment was queued here: look now, not at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _forever(self) -> None:
        while True:
            try:
                await run_sync(self._poll_sources)
                if time.monotonic() - self._swept_at >= _SWEEP_EVERY:
                    self._swept_at = time.monotonic()
                    await run_sync(self.prune)
                while (claimed := await run_sync(self._claim)) is not None:
                    task = asyncio.create_task(self._run(*claimed))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for git deployments failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    def _claim(self) -> tuple[str, str, str] | None:
        """(deployment id, source id, token) of a deployment this process now holds."""
        now = utcnow()
        table = models.GitDeployment
        claimable = (table.status == "queued") | (
            (table.status == "running") & (table.lease_until < now)
        )
        with self._db.session() as session:
            query = select(table.id, table.source_id).where(claimable).order_by(table.created_at)
            if not self._db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            row = session.execute(query.limit(1)).first()
            if row is None:
                return None
            token = secrets.token_hex(8)
            claimed = session.execute(
                update(table)
                .where(table.id == row.id, claimable)
                .values(
                    status="running",
                    claim=token,
                    lease_until=now + timedelta(seconds=self._lease),
                )
            ).rowcount  # type: ignore[attr-defined]
            return (row.id, row.source_id, token) if claimed == 1 else None

    async def _run(self, deployment_id: str, source_id: str, token: str) -> None:
        def still_mine(session: Session) -> bool:
            row = session.get(models.GitDeployment, deployment_id)
            return row is not None and row.claim == token

        # One at a time per source, in every process: a second push waits for the first.
        # The lease is renewed meanwhile, waiting included: this process is alive.
        renewing = asyncio.create_task(self._keep_lease(deployment_id, token))
        lock = contextlib.ExitStack()
        try:
            await run_sync(lock.enter_context, self._db.exclusive(f"git-source-{source_id}"))
            await self._deployer.run(deployment_id, still_mine)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("git deployment %s failed", deployment_id)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await run_sync(lock.close)
        try:
            await run_sync(self.prune, source_id)
        except Exception:
            log.exception("pruning git source %s's deployments failed", source_id)

    async def _keep_lease(self, deployment_id: str, token: str) -> None:
        while True:
            await asyncio.sleep(leases.renew_every(self._lease))
            try:
                held = await run_sync(self._renew, deployment_id, token)
            except Exception:  # the database is away: try again, the lease has slack
                log.warning("git deployment %s: renewing its lease failed", deployment_id)
                continue
            if not held:  # finished, or taken over: the deployer will not write
                return

    def _renew(self, deployment_id: str, token: str) -> int:
        table = models.GitDeployment
        with self._db.session() as session:
            return leases.renew(
                session, table, [(deployment_id, token)], self._lease, table.status == "running"
            )

    def prune(self, source_id: str | None = None) -> int:
        """Delete the finished deployments past each source's newest ``keep``, except
        the one its live hooks came from; how many were deleted."""
        table = models.GitDeployment
        deleted = 0
        with self._db.session() as session:
            ids = (
                [source_id]
                if source_id is not None
                else list(session.scalars(select(models.GitSource.id)))
            )
            for each in ids:
                live = session.scalar(
                    select(table.id)
                    .where(table.source_id == each, table.status == "succeeded")
                    .order_by(table.finished_at.desc())
                    .limit(1)
                )
                old = session.scalars(
                    select(table.id)
                    .where(table.source_id == each)
                    .order_by(table.created_at.desc(), table.id.desc())
                    .offset(self._keep)
                ).all()
                doomed = [row_id for row_id in old if row_id != live]
                for start in range(0, len(doomed), 500):
                    deleted += session.execute(
                        delete(table).where(
                            table.id.in_(doomed[start : start + 500]), table.status.in_(FINISHED)
                        )
                    ).rowcount  # type: ignore[attr-defined]
        return deleted

    def _poll_sources(self) -> None:
        """Queue a poll of each source whose interval has passed (one process wins each)."""
        now = utcnow()
        table = models.GitSource
        with self._db.session() as session:
            due = session.scalars(select(table).where(table.poll_interval.is_not(None))).all()
            for source in due:
                assert source.poll_interval is not None
                last = source.polled_at
                if last is not None and now - last < timedelta(seconds=source.poll_interval):
                    continue
                won = session.execute(
                    update(table)
                    .where(
                        table.id == source.id,
                        table.polled_at.is_(None) if last is None else table.polled_at == last,
                    )
                    .values(polled_at=now)
                ).rowcount  # type: ignore[attr-defined]
                if won == 1 and not _waiting(session, source.id):
                    sources.queue(session, source, trigger="poll")


def _waiting(session: Session, source_id: str) -> bool:
    table = models.GitDeployment
    return (
        session.scalar(
            select(table.id).where(table.source_id == source_id, table.status == "queued").limit(1)
        )
        is not None
    )


Nudge = Callable[[], None]
