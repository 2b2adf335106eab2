"""Each point's live flow in this server process, and the sandbox pools behind it.

Every change to hooks (a deploy or rollback, enabling, disabling, reordering,
secrets, a deletion) bumps the database's change counter in its transaction.
Each process reads the counter every ``interval`` seconds and, when it moved,
loads every point's flow anew, warms the versions it does not run yet,
switches to the new flows, and only then retires the versions that no longer
serve. The runtime drains a retired version: calls already running on it
finish there. So a change reaches every process within ``interval`` plus one
cold start, no request waits for that cold start, and no process keeps an old
or deleted version's workers. The process that made a change switches at its
next lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy.exc import DBAPIError

from authhooks.hooks.lifecycle import code_version
from authhooks.hooks.point_specs import PointCatalog
from authhooks.hooks.store import FlowHook, load_flows
from authhooks.masterkey import MasterKey
from authhooks.points.contract import Point
from authhooks.runtime.outcome import LoadError
from authhooks.runtime.supervisor import CodeVersion, Runtime
from authhooks.storage.database import Database

log = logging.getLogger(__name__)

Flows = dict[str, tuple[FlowHook, ...]]


class LiveFlows:
    def __init__(
        self,
        database: Database,
        master_key: MasterKey,
        runtime: Runtime,
        points: Mapping[str, Point[Any, Any]],
        interval: float,
        catalog: PointCatalog | None = None,
    ) -> None:
        self._db = database
        self._master_key = master_key
        self._runtime = runtime
        self._points = points
        self._interval = interval
        self._catalog = catalog  # declared points, loaded with the flows that use them
        self._flows: Flows | None = None
        self._generation: int | None = None
        # Loads asked for (by this process's changes, or the counter moving) and loads
        # done: a lookup made after a change waits until a load begun after it is done.
        self._wanted = 1
        self._done = 0
        self._lock = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None

    async def flow(self, point: str) -> tuple[FlowHook, ...]:
        """The enabled hooks of ``point``, in order, with deployed code and secrets."""
        if self._done != self._wanted or self._flows is None:
            await self._refresh()
        assert self._flows is not None
        return self._flows.get(point, ())

    def invalidate(self) -> None:
        """Load the flows again before the next lookup: this process changed them."""
        self._wanted += 1

    async def reload(self) -> None:
        """Load the flows and declared points now: for a point another process may
        have declared since the last check."""
        self._wanted += 1
        await self._refresh()

    async def start(self) -> None:
        """Load and warm every flow, then follow the changes other processes make."""
        await self._refresh()
        self._follower = asyncio.ensure_future(self._follow())

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                generation = await run_sync(self._db.generation)
            except DBAPIError as error:
                log.warning("flows: change check failed (%s)", type(error.orig).__name__)
                continue
            if generation != self._generation:
                self._wanted += 1
            if self._done != self._wanted:
                try:
                    await self._refresh()
                except DBAPIError as error:
                    log.warning("flows: reload failed (%s)", type(error.orig).__name__)

    async def _refresh(self) -> None:
        async with self._lock:
            target = self._wanted
            if self._done == target and self._flows is not None:
                return  # a load begun after this caller's change has finished meanwhile
            try:
                generation, flows, declared = await run_sync(self._load)
            except DBAPIError:
                if self._flows is None:
                    raise  # nothing to serve yet: the caller answers 503
                # What is loaded keeps serving while the database is away (as the
                # directory does); the follower loads again once it answers.
                self._done, self._generation = target, None
                log.warning("flows: database unavailable, serving the flows loaded before")
                return
            # What ran before is known by the points it ran at, which may go now.
            previous = self._versions(self._flows or {})
            if self._catalog is not None:
                self._catalog.use(declared)
            current = self._versions(flows)
            await asyncio.gather(
                *(self._warm(version) for key, version in current.items() if key not in previous)
            )
            self._flows, self._generation, self._done = flows, generation, target
            for key in previous.keys() - current.keys():
                self._runtime.retire(key)

    def _load(self) -> tuple[int, Flows, list[Point[Any, Any]]]:
        # The counter first: a change committed between the reads is loaded now and
        # seen again (harmlessly) at the next check, never missed.
        generation = self._db.generation()
        with self._db.session() as session:
            declared = self._catalog.load(session) if self._catalog is not None else []
            return generation, load_flows(session, self._master_key), declared

    def _versions(self, flows: Flows) -> dict[str, CodeVersion]:
        return {
            hook.key: code_version(self._points[point], hook.key, hook.code)
            for point, hooks in flows.items()
            if point in self._points
            for hook in hooks
        }

    async def _warm(self, version: CodeVersion) -> None:
        try:
            await self._runtime.prepare(version)
        except LoadError as error:
            # Its calls fail as they would anyway; the others' flows switch.
            log.warning("hook version %s does not load: %s", version.key, error)
