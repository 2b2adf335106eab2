"""The supervisor: owns every worker's lifecycle, enforces limits from outside.

One pool of warm workers per code version, never shared between versions.
A call takes an idle worker (or starts one, up to a per-version cap, or
waits in a bounded queue) and makes the call through it
(``worker_handle.Worker``: one ``invoke`` frame, the answer under a timer); a
worker that times out, runs out of memory, crashes, breaks the protocol or
keeps running after its call is killed, and its pool starts afresh. Workers
are recycled after a number of calls, an idle TTL and a maximum lifetime; a
global cap evicts the least recently used idle worker. A version that no
longer serves is drained: its calls finish, then its workers go. Nothing here
ever waits without a deadline.

The runtime's public names are importable from here (``__all__``), whichever
of its modules defines them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authhooks.egress.broker import Broker, EgressRecord
from authhooks.egress.rules import Rule
from authhooks.observability.metrics import SANDBOX_WORKERS
from authhooks.runtime.outcome import (
    Crashed,
    LoadError,
    LoadFailed,
    Outcome,
    Overloaded,
)
from authhooks.runtime.protocol import MAX_FRAME_BYTES
from authhooks.runtime.sandbox import (
    SLOTS,
    Limits,
    Sandbox,
    SandboxSettings,
    SandboxUnavailable,
    claim_lock,
    lower_autogroup,
)
from authhooks.runtime.worker_handle import (
    CodeVersion,
    ConsoleCallback,
    Entry,
    Unavailable,
    Worker,
    redactor,
)

__all__ = [
    "CodeVersion",
    "ConsoleCallback",
    "Entry",
    "Runtime",
    "RuntimeSettings",
    "claim_cpu",
    "redactor",
]

log = logging.getLogger(__name__)

# CPU an idle worker may use between two reaper passes before it is deemed to be
# running code after its call ended (a background thread, say).
_IDLE_CPU_SECONDS = 0.05
# Retired versions remembered, so that a late call of one leaves no warm worker behind.
_REMEMBERED_RETIREMENTS = 10_000


@dataclass(frozen=True)
class RuntimeSettings:
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    limits: Limits = field(default_factory=Limits)
    default_timeout: float = 5.0
    max_timeout: float = 20.0
    start_timeout: float = 10.0
    max_workers: int = 64
    max_workers_per_version: int = 4
    max_queue_per_version: int = 64
    max_calls_per_worker: int = 10_000
    idle_ttl: float = 600.0
    max_lifetime: float = 3600.0
    reap_interval: float = 5.0
    # Pin this process, and so every worker it starts, to one CPU. A call wakes
    # its worker and is woken back: on one CPU each wake-up costs ~20 us, across
    # CPUs ~100-400 us on small VMs. Worth it with one server process per core.
    cpu: int | None = None
    # Where versions' installed dependency sets are (CodeVersion.installed names one).
    dependency_root: Path | None = None


def claim_cpu() -> int | None:
    """A CPU no other server process of this user on this host has claimed (held for
    this process's life); PermissionError if the lock directory is not private."""
    # Per user: another user's servers would have their directory refused.
    claimed = claim_lock(f"authhooks-cpus-{os.geteuid()}", sorted(os.sched_getaffinity(0)))
    return claimed[0] if claimed is not None else None  # its descriptor is never closed


_ALIVE = SANDBOX_WORKERS.labels("alive")
_STARTING = SANDBOX_WORKERS.labels("starting")


class _Pool:
    def __init__(self, version: CodeVersion) -> None:
        self.version = version
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()
        self.starting = 0
        self.waiters: deque[asyncio.Future[Worker]] = deque()
        self.prepared = False
        # Its last worker was evicted to make room for another hook's: kept warm
        # again only once a call needs it, or prepared pools beyond the worker
        # cap would evict each other for ever.
        self.evicted = False
        # No longer serving (a newer version, or its hook disabled or deleted): its
        # running and queued calls finish on it, then its workers go.
        self.draining = False
        self.closed = False  # the runtime is shutting down
        self.refilling = False
        self.load_failure: LoadFailed | None = None

    def size(self) -> int:
        """Workers alive or starting: what the per-version cap counts."""
        return sum(1 for worker in self.workers if worker.alive) + self.starting

    def waiting(self) -> int:
        return sum(1 for waiter in self.waiters if not waiter.done())

    def hand_over(self, worker: Worker) -> bool:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return True
        return False


class Runtime:
    """Runs hook code in sandboxed workers. Start it, then ``prepare``/``invoke``/``retire``."""

    def __init__(
        self, settings: RuntimeSettings | None = None, broker: Broker | None = None
    ) -> None:
        self.settings = settings or RuntimeSettings()
        self._broker = broker
        if self.settings.max_workers > SLOTS:
            raise ValueError(f"max_workers cannot exceed {SLOTS}")
        self._sandbox: Sandbox | None = None
        self._pools: dict[str, _Pool] = {}
        self._free_slots = list(range(SLOTS - 1, -1, -1))
        self._live: set[Worker] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Versions retired since: a late call of one gets a pool that drains at once.
        self._retired: dict[str, None] = {}

    async def start(self) -> None:
        """Discover the sandbox (interpreter, libraries, uid mode); raises SandboxUnavailable."""
        if self.settings.cpu is not None:
            os.sched_setaffinity(0, {self.settings.cpu})
        self._sandbox = await asyncio.to_thread(
            Sandbox, self.settings.sandbox, self.settings.limits
        )
        self._in_background(self._reap_forever())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pool in list(self._pools.values()):
            self._close_pool(pool)
        for worker in list(self._live):
            worker.kill("shutdown")
        await asyncio.gather(*(worker.exited for worker in list(self._live)))
        if self._broker is not None:
            await self._broker.shutdown()
        if self._sandbox is not None:
            self._sandbox.close()

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("Runtime.start() has not run")
        return self._sandbox

    async def prepare(self, version: CodeVersion) -> None:
        """Start a warm worker for ``version`` and keep one warm; LoadError if it cannot load."""
        pool = self._pool(version)
        pool.prepared = True
        pool.evicted = False
        pool.draining = False  # serving again (a rollback to it, say)
        self._retired.pop(version.key, None)
        if pool.load_failure is not None:
            raise LoadError(pool.load_failure)
        if pool.size() == 0:
            try:
                worker = await self._start(pool)
            except Unavailable as error:
                raise LoadError(LoadFailed("Unavailable", error.failure.describe())) from None
            self._release(pool, worker, counted=False)

    async def check(self, version: CodeVersion) -> LoadFailed | None:
        """Load the code in a throwaway worker: None if it loads, else why not."""
        pool = _Pool(version)
        try:
            worker = await self._start(pool)
        except LoadError as error:
            return error.failure
        except Unavailable as error:
            return LoadFailed("Unavailable", error.failure.describe())
        worker.kill("checked")
        return None

    def retire(self, key: str) -> None:
        """Drain a version that no longer serves: calls running on it finish there,
        calls queued for it are served by its workers, and each worker goes once
        nothing waits for it. A later call of it (from a caller that looked up the
        old flow) is still served, on a worker that goes after that call."""
        self._retired[key] = None
        if len(self._retired) > _REMEMBERED_RETIREMENTS:
            del self._retired[next(iter(self._retired))]
        pool = self._pools.get(key)
        if pool is None:
            return
        pool.prepared = False
        pool.draining = True
        for worker in list(pool.idle):
            pool.idle.remove(worker)
            worker.kill("retired")
        self._forget_if_unused(pool)

    async def invoke(
        self,
        version: CodeVersion,
        args: Mapping[str, Any] | Callable[[Entry], Mapping[str, Any]],
        *,
        secrets: Iterable[str] = (),
        timeout: float | None = None,
        on_console: ConsoleCallback | None = None,
        egress: Sequence[Rule] = (),
        caller: str = "",
    ) -> Outcome:
        """Call ``version``'s entry function with ``args`` as keyword arguments.

        ``args`` may instead be a function of the entry (when the version
        offers several, the arguments depend on which one its code defines).
        ``secrets`` are values to redact from console lines and errors; the caller
        places them in ``args`` wherever the hook expects them. ``egress`` is what
        the call may reach through the egress broker, counted against ``caller``
        (the hook) for its rate limit. Arguments that are not JSON, or too large,
        raise ValueError, and no call is made.
        """
        began = time.perf_counter()
        encoded_args = None if callable(args) else _encode_args(args)
        seconds = min(timeout or self.settings.default_timeout, self.settings.max_timeout)
        pool = self._pool(version)
        try:
            worker = await self._acquire(pool)
        except (LoadError, Unavailable) as error:
            return Outcome(failure=error.failure, duration_ms=_since(began))
        entry = worker.entry or version.entries[0]
        if encoded_args is None:
            try:
                encoded_args = _encode_args(args(entry))  # type: ignore[operator]
            except BaseException:
                self._release(pool, worker, counted=False)
                raise
        if self._broker is not None:
            self._broker.begin(
                worker.slot, caller or version.key, egress, time.monotonic() + seconds
            )
        records: list[EgressRecord] = []
        try:
            failure, result, calls, console, dropped = await worker.call(
                worker.next_frame(encoded_args), seconds, on_console, redactor(secrets)
            )
        except BaseException:
            worker.kill("cancelled")  # cancelled mid-call: its answer would reach the next caller
            raise
        finally:
            try:
                if self._broker is not None:
                    records = await self._broker.end(worker.slot)
            finally:
                self._release(pool, worker)
        return Outcome(
            result, failure, console, _since(began), dropped, tuple(records), entry.function, calls
        )

    def worker_pids(self, key: str) -> list[int]:
        """The host pids of a version's live workers (the bwrap processes); for tests and tools."""
        pool = self._pools.get(key)
        return sorted(worker.pid for worker in pool.workers if worker.alive) if pool else []

    # --- pools --------------------------------------------------------------------------

    def _pool(self, version: CodeVersion) -> _Pool:
        pool = self._pools.get(version.key)
        if pool is None:
            pool = self._pools[version.key] = _Pool(version)
            pool.draining = version.key in self._retired
        return pool

    async def _acquire(self, pool: _Pool) -> Worker:
        pool.evicted = False  # in use again: worth keeping warm
        if pool.load_failure is not None:
            raise LoadError(pool.load_failure)
        while pool.idle:
            worker = pool.idle.pop()  # the most recently used: warmest caches
            if worker.alive:
                return worker
        if pool.size() < self.settings.max_workers_per_version:
            return await self._start(pool)
        if pool.waiting() >= self.settings.max_queue_per_version:
            raise Unavailable(Overloaded("too many calls of this hook are already waiting"))
        waiter: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        pool.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Handed a worker in the same turn the caller gave up: give it back.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(pool, waiter.result(), counted=False)
            raise

    def _release(self, pool: _Pool, worker: Worker, *, counted: bool = True) -> None:
        if counted:
            worker.calls += 1
        worker.last_used = now = time.monotonic()
        worker.idle_cpu = None
        worn = (
            worker.calls >= self.settings.max_calls_per_worker
            or now - worker.started >= self.settings.max_lifetime
        )
        if not worker.alive or worn or pool.closed:
            worker.kill("shutdown" if pool.closed else "worn_out")  # refilled once it has exited
            return
        if pool.hand_over(worker):
            return
        if pool.draining:
            worker.kill("retired")
        else:
            pool.idle.append(worker)

    async def _start(self, pool: _Pool) -> Worker:
        """A new loaded worker for ``pool``; counts against the caps from the first moment."""
        pool.starting += 1  # counted until it joins pool.workers
        _STARTING.inc()
        starting = True
        try:
            self._make_room()
            slot = self._free_slots.pop()
            door: socket.socket | None = None
            egress: int | None = None
            try:
                if self._broker is not None:
                    door = self._broker.open(slot)
                    egress = door.fileno()
                installed = self._installed(pool.version)
                if installed is not None and not installed.is_dir():
                    # Removed from under the server: said without its path.
                    raise SandboxUnavailable(
                        "this version's dependencies are no longer in the dependency store "
                        "(save the hook's code again to install them)"
                    )
                spawned = self.sandbox.spawn(slot, egress, pool.version.language, installed)
            except BaseException as error:
                if self._broker is not None:
                    self._broker.close(slot)
                self._free_slots.append(slot)
                if isinstance(error, OSError | SandboxUnavailable):
                    raise Unavailable(Crashed(f"the sandbox did not start: {error}")) from None
                raise
            finally:
                if door is not None:
                    door.close()  # the worker has its own copy, under the same number
            try:
                worker = Worker(spawned, slot, self.settings.limits, egress=egress)
            except OSError as error:
                spawned.process.kill()
                spawned.process.wait()
                for fd in (spawned.to_worker, spawned.from_worker, spawned.console):
                    os.close(fd)
                if self._broker is not None:
                    self._broker.close(slot)
                self._free_slots.append(slot)
                raise Unavailable(Crashed(f"the sandbox did not start: {error}")) from None
            self._lower_priority(worker)
            self._live.add(worker)
            _ALIVE.inc()
            pool.workers.add(worker)
            pool.starting -= 1
            _STARTING.dec()
            starting = False
            worker.exited.add_done_callback(lambda _: self._forget(pool, worker))
            try:
                await worker.load(
                    pool.version, str(self.sandbox.seccomp_library), self.settings.start_timeout
                )
            except LoadError as error:
                pool.load_failure = error.failure
                raise
            except BaseException:
                worker.kill("load_failed")
                raise
            return worker
        finally:
            if starting:
                pool.starting -= 1
                _STARTING.dec()

    def _installed(self, version: CodeVersion) -> Path | None:
        """Where the version's dependencies are installed, if it has any."""
        root = self.settings.dependency_root
        if version.installed is None or root is None:
            return None
        return root / version.installed

    def _lower_priority(self, worker: Worker, attempts: int = 20) -> None:
        """Lower the worker's autogroup priority, trying again shortly while the
        kernel rate-limits it (a server not running as root)."""
        if not worker.alive or lower_autogroup(worker.pid, self.settings.limits.nice):
            return
        if attempts > 1:
            asyncio.get_running_loop().call_later(0.11, self._lower_priority, worker, attempts - 1)

    def _make_room(self) -> None:
        """Stay under the global cap: evict the least recently used idle worker, or refuse."""
        alive = sum(1 for worker in self._live if worker.alive)
        starting = sum(pool.starting for pool in self._pools.values())
        if alive + starting <= self.settings.max_workers:  # this start is counted already
            return
        idle = [(worker, pool) for pool in self._pools.values() for worker in pool.idle]
        idle = [(worker, pool) for worker, pool in idle if worker.alive]
        if not idle or not self._free_slots:
            raise Unavailable(Overloaded("every sandbox worker is busy; try again shortly"))
        worker, pool = min(idle, key=lambda pair: pair[0].last_used)
        pool.idle.remove(worker)
        worker.kill("evicted")
        pool.evicted = pool.size() == 0  # its last: not worth starting again unasked

    def _forget(self, pool: _Pool, worker: Worker) -> None:
        if self._broker is not None:
            self._broker.close(worker.slot)
        if worker in self._live:
            self._live.discard(worker)
            _ALIVE.dec()
        pool.workers.discard(worker)
        with contextlib.suppress(ValueError):
            pool.idle.remove(worker)
        self._free_slots.append(worker.slot)
        self._refill(pool)
        self._forget_if_unused(pool)

    def _forget_if_unused(self, pool: _Pool) -> None:
        unused = pool.size() == 0 and not pool.waiting() and not pool.prepared
        if unused and self._pools.get(pool.version.key) is pool:
            del self._pools[pool.version.key]

    def _refill(self, pool: _Pool) -> None:
        """Start one replacement when calls wait for this pool (draining or not) or it
        must stay warm."""
        if pool.closed or pool.load_failure is not None or pool.refilling:
            return
        warm = pool.prepared and not pool.evicted
        needed = pool.waiting() > 0 or (warm and pool.size() == 0)
        if needed and pool.size() < self.settings.max_workers_per_version:
            pool.refilling = True
            self._in_background(self._refill_once(pool))

    async def _refill_once(self, pool: _Pool) -> None:
        try:
            worker = await self._start(pool)
        except (LoadError, Unavailable) as error:
            while pool.waiters:
                waiter = pool.waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(error)
            return
        finally:
            pool.refilling = False
        self._release(pool, worker, counted=False)
        self._refill(pool)

    def _close_pool(self, pool: _Pool) -> None:
        """Shutdown: every worker goes now, and calls still queued are refused."""
        pool.closed = True
        for worker in list(pool.workers):
            worker.kill("shutdown")
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Unavailable(Overloaded("the server is shutting down")))

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reap_interval)
            self._reap_once()

    def _reap_once(self) -> None:
        now = time.monotonic()
        for pool in list(self._pools.values()):
            for worker in list(pool.idle):
                expired = (
                    now - worker.last_used >= self.settings.idle_ttl
                    or now - worker.started >= self.settings.max_lifetime
                )
                used = worker.cpu_seconds()
                busy_while_idle = (
                    worker.idle_cpu is not None
                    and used is not None
                    and used - worker.idle_cpu > _IDLE_CPU_SECONDS
                )
                worker.idle_cpu = used
                if expired or busy_while_idle:
                    pool.idle.remove(worker)
                    # A prepared pool is refilled once it has exited.
                    worker.kill("idle" if expired else "busy_while_idle")

    def _in_background(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _encode_args(args: Mapping[str, Any]) -> bytes:
    try:
        encoded = json.dumps(
            args, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as error:
        raise ValueError(f"hook arguments cannot be sent: {error}") from None
    if len(encoded) > MAX_FRAME_BYTES - 64:
        raise ValueError(f"hook arguments exceed {MAX_FRAME_BYTES - 64} bytes")
    return encoded


def _since(began: float) -> float:
    return (time.perf_counter() - began) * 1000
