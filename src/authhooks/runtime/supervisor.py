"""The supervisor: owns every worker's lifecycle, enforces limits from outside.

One pool of warm workers per code version, never shared between versions.
A call takes an idle worker (or starts one, up to a per-version cap, or
waits in a bounded queue), sends one ``invoke`` frame and waits for the
answer under a timer; a worker that times out, runs out of memory, crashes
or breaks the protocol is killed and its pool starts afresh. Workers are
recycled after a number of calls, an idle TTL and a maximum lifetime, and a
global cap evicts the least recently used idle worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authhooks.runtime.outcome import (
    BadResult,
    ConsoleLine,
    Crashed,
    Failure,
    HookRaised,
    LoadError,
    LoadFailed,
    Outcome,
    OutOfMemory,
    Overloaded,
    Timeout,
)
from authhooks.runtime.protocol import FrameReader, ProtocolError, decode, encode
from authhooks.runtime.sandbox import Limits, Sandbox, SandboxSettings, Spawned

log = logging.getLogger(__name__)

ConsoleCallback = Callable[[ConsoleLine], None]
_STREAMS = frozenset({"stdout", "stderr", "log"})
_RAW_TAIL = 4096
_MAX_TEXT = 4000


@dataclass(frozen=True)
class CodeVersion:
    """One immutable version of a hook's code: ``key`` is unique across all hooks."""

    key: str
    source: str
    entry: str


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


class _Unavailable(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


class Worker:
    """One sandboxed process serving one version; driven entirely from the event loop."""

    def __init__(self, spawned: Spawned, slot: int, limits: Limits) -> None:
        self.slot = slot
        self.calls = 0
        self.started = self.last_used = time.monotonic()
        self.alive = True
        self._spawned = spawned
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._frames = FrameReader()
        self._outbox = bytearray()
        self._writing = False
        self._pending: asyncio.Future[dict[str, Any]] | None = None
        self._call_id = 0
        self._console: list[ConsoleLine] = []
        self._on_console: ConsoleCallback | None = None
        self._log_frames = 0
        self._raw = bytearray()
        self._raw_in_call = 0
        self.exited = self._loop.create_future()
        for fd in (spawned.to_worker, spawned.from_worker, spawned.console):
            os.set_blocking(fd, False)
        self._pidfd = os.pidfd_open(spawned.process.pid)
        self._loop.add_reader(spawned.from_worker, self._read_frames)
        self._loop.add_reader(spawned.console, self._read_raw)
        self._loop.add_reader(self._pidfd, self._reap)

    @property
    def pid(self) -> int:
        return self._spawned.process.pid

    async def load(self, version: CodeVersion, seccomp_library: str, timeout: float) -> None:
        """Send the code; LoadError if it does not load, _Unavailable if the worker fails."""
        answer = await self._ask(
            {
                "op": "load",
                "source": version.source,
                "entry": version.entry,
                "limits": self._limits.for_worker(),
                "seccomp_library": seccomp_library,
            },
            timeout,
        )
        if answer.get("op") == "ready":
            return
        if answer.get("op") == "load_error":
            self.kill()
            line = answer.get("line")
            raise LoadError(
                LoadFailed(
                    type=_text(answer.get("type"), "Error"),
                    message=_text(answer.get("message"), "the code did not load"),
                    line=line if isinstance(line, int) else None,
                )
            )
        if answer.get("op") == "timeout":
            raise LoadError(
                LoadFailed("Timeout", f"the module's top level did not finish within {timeout:g} s")
            )
        raise _Unavailable(self._death(answer))

    async def call(
        self, args: Mapping[str, Any], timeout: float, on_console: ConsoleCallback | None
    ) -> tuple[Failure | None, Any, tuple[ConsoleLine, ...], int]:
        """(failure, result, console, dropped lines) of one invocation."""
        self._call_id += 1
        self._console = []
        self._on_console = on_console
        self._log_frames = 0
        self._raw_in_call = 0
        answer = await self._ask({"op": "invoke", "id": self._call_id, "args": args}, timeout)
        self._on_console = None
        console = tuple(self._console)
        dropped = answer.get("dropped_lines")
        dropped = dropped if isinstance(dropped, int) and dropped >= 0 else 0
        op, kind = answer.get("op"), answer.get("kind")
        if op == "result":
            return None, answer.get("value"), console, dropped
        if op == "error" and kind == "raised" and isinstance(answer.get("error"), dict):
            return _raised(answer["error"]), None, console, dropped
        if op == "error" and kind == "out_of_memory":
            self.kill()  # its heap is suspect: start the next call afresh
            return OutOfMemory(self._limits.memory_bytes), None, console, dropped
        if op == "error" and kind == "bad_result":
            return BadResult(_text(answer.get("message"), "unreadable")), None, console, dropped
        if op == "timeout":
            return Timeout(timeout), None, console, dropped
        return self._death(answer), None, console, dropped

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._spawned.process.pid, signal.SIGKILL)

    # --- plumbing -------------------------------------------------------------------------

    async def _ask(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self.alive:
            return {"op": "exit"}
        self._pending = pending = self._loop.create_future()
        self._send(encode(message))
        timer = self._loop.call_later(timeout, self._time_out, pending)
        try:
            answer: dict[str, Any] = await pending
            return answer
        finally:
            timer.cancel()
            self._pending = None

    def _time_out(self, pending: asyncio.Future[dict[str, Any]]) -> None:
        self.kill()
        if not pending.done():
            pending.set_result({"op": "timeout"})

    def _answer(self, message: dict[str, Any]) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.set_result(message)

    def _send(self, frame: bytes) -> None:
        self._outbox += frame
        self._flush()

    def _flush(self) -> None:
        fd = self._spawned.to_worker
        while self._outbox and self.alive:
            try:
                written = os.write(fd, self._outbox)
            except BlockingIOError:
                if not self._writing:
                    self._writing = True
                    self._loop.add_writer(fd, self._flush)
                return
            except OSError:
                self._broken("the worker closed its input")
                return
            del self._outbox[:written]
        if self._writing:
            self._writing = False
            self._loop.remove_writer(fd)

    def _read_frames(self) -> None:
        try:
            data = os.read(self._spawned.from_worker, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._spawned.from_worker)
            return
        try:
            messages = [decode(body) for body in self._frames.feed(data)]
        except ProtocolError as error:
            self._broken(f"it broke the protocol ({error})")
            return
        for message in messages:
            if message.get("op") == "log":
                self._log(message)
            elif message.get("op") in ("ready", "load_error") or message.get("id") == self._call_id:
                self._answer(message)
            else:
                self._broken("it sent a frame nobody asked for")

    def _log(self, message: dict[str, Any]) -> None:
        if message.get("id") != self._call_id or self._pending is None:
            return  # a background thread printing after its call ended
        self._log_frames += 1
        if self._log_frames > 4 * self._limits.lines + 100:
            self._broken("it flooded the console channel")
            return
        stream, text = message.get("stream"), message.get("line")
        if stream not in _STREAMS or not isinstance(text, str):
            self._broken("it sent a malformed console line")
            return
        if len(self._console) < self._limits.lines:
            line = ConsoleLine(time.time(), str(stream), text[: self._limits.line_chars])
            self._console.append(line)
            if self._on_console is not None:
                self._on_console(line)

    def _read_raw(self) -> None:
        try:
            data = os.read(self._spawned.console, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._spawned.console)
            return
        self._raw += data
        del self._raw[:-_RAW_TAIL]
        self._raw_in_call += len(data)
        if self._raw_in_call > 1 << 20:
            self._broken("it flooded its raw output")

    def _broken(self, reason: str) -> None:
        self.kill()
        self._answer({"op": "exit", "reason": reason})

    def _reap(self) -> None:
        self._loop.remove_reader(self._pidfd)
        process = self._spawned.process
        process.wait()
        self.alive = False
        for fd in (self._spawned.from_worker, self._spawned.console):
            self._loop.remove_reader(fd)
        if self._writing:
            self._loop.remove_writer(self._spawned.to_worker)
        for fd in (
            self._pidfd,
            self._spawned.to_worker,
            self._spawned.from_worker,
            self._spawned.console,
        ):
            os.close(fd)
        self._answer({"op": "exit"})
        if not self.exited.done():
            self.exited.set_result(process.returncode)

    def _death(self, answer: dict[str, Any]) -> Failure:
        reason = answer.get("reason")
        code = self._spawned.process.returncode
        if not isinstance(reason, str):
            if code is None:
                reason = "the worker stopped answering"
            elif code < 0 and -code == signal.SIGXCPU:
                reason = "the worker used up its CPU time limit"
            elif code < 0:
                reason = f"the worker was killed by {signal.Signals(-code).name}"
            else:
                reason = f"the worker exited with status {code}"
        output = self._raw.decode("utf-8", "replace")
        return Crashed(reason, output[-_MAX_TEXT:])


class _Pool:
    def __init__(self, version: CodeVersion) -> None:
        self.version = version
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()
        self.waiters: deque[asyncio.Future[Worker]] = deque()
        self.prepared = False
        self.retired = False
        self.load_failure: LoadFailed | None = None


class Runtime:
    """Runs hook code in sandboxed workers. Start it, then ``prepare``/``invoke``/``retire``."""

    def __init__(self, settings: RuntimeSettings | None = None) -> None:
        self.settings = settings or RuntimeSettings()
        self._sandbox: Sandbox | None = None
        self._pools: dict[str, _Pool] = {}
        self._free_slots = list(range(self.settings.max_workers, 0, -1))
        self._live: set[Worker] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Discover the sandbox (interpreter, libraries, uid mode); raises SandboxUnavailable."""
        if self.settings.cpu is not None:
            os.sched_setaffinity(0, {self.settings.cpu})
        self._sandbox = await asyncio.to_thread(
            Sandbox, self.settings.sandbox, self.settings.limits
        )
        self._reaper = asyncio.create_task(self._reap_forever())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for pool in list(self._pools.values()):
            self._retire_pool(pool)
        await asyncio.gather(*(worker.exited for worker in list(self._live)))

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("Runtime.start() has not run")
        return self._sandbox

    async def prepare(self, version: CodeVersion) -> None:
        """Start a warm worker for ``version`` and keep one warm; LoadError if it cannot load."""
        pool = self._pool(version)
        pool.prepared = True
        if pool.load_failure is not None:
            raise LoadError(pool.load_failure)
        if not pool.workers:
            try:
                worker = await self._spawn(pool)
            except _Unavailable as error:
                raise LoadError(LoadFailed("Unavailable", error.failure.describe())) from None
            self._release(pool, worker)

    async def check(self, version: CodeVersion) -> LoadFailed | None:
        """Load the code in a throwaway worker: None if it loads, else why not."""
        pool = _Pool(version)
        try:
            worker = await self._spawn(pool)
        except LoadError as error:
            return error.failure
        except _Unavailable as error:
            return LoadFailed("Unavailable", error.failure.describe())
        worker.kill()
        return None

    def retire(self, key: str) -> None:
        """Stop every worker of a version; the next invoke of it starts afresh."""
        pool = self._pools.pop(key, None)
        if pool is not None:
            self._retire_pool(pool)

    async def invoke(
        self,
        version: CodeVersion,
        args: Mapping[str, Any],
        *,
        secrets: Iterable[str] = (),
        timeout: float | None = None,
        on_console: ConsoleCallback | None = None,
    ) -> Outcome:
        """Call ``version``'s entry function with ``args`` as keyword arguments.

        ``secrets`` are values to redact from console lines and errors; the caller
        places them in ``args`` wherever the hook expects them.
        """
        began = time.perf_counter()
        seconds = min(timeout or self.settings.default_timeout, self.settings.max_timeout)
        pool = self._pool(version)
        try:
            worker = await self._acquire(pool)
        except LoadError as error:
            return Outcome(failure=error.failure, duration_ms=_since(began))
        except _Unavailable as error:
            return Outcome(failure=error.failure, duration_ms=_since(began))
        try:
            failure, result, console, dropped = await worker.call(args, seconds, on_console)
        finally:
            self._release(pool, worker)
        redact = _redactor(secrets)
        return Outcome(
            result=result,
            failure=_redacted_failure(failure, redact) if failure else None,
            console=tuple(ConsoleLine(line.at, line.stream, redact(line.text)) for line in console),
            duration_ms=_since(began),
            dropped_lines=dropped,
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
        return pool

    async def _acquire(self, pool: _Pool) -> Worker:
        if pool.load_failure is not None:
            raise LoadError(pool.load_failure)
        while pool.idle:
            worker = pool.idle.pop()  # the most recently used: warmest caches
            if worker.alive:
                return worker
        if len(pool.workers) < self.settings.max_workers_per_version and self._make_room():
            return await self._spawn(pool)
        if not pool.workers:
            raise _Unavailable(Overloaded("every sandbox worker is busy; try again shortly"))
        if len(pool.waiters) >= self.settings.max_queue_per_version:
            raise _Unavailable(Overloaded("too many calls of this hook are already waiting"))
        waiter: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        pool.waiters.append(waiter)
        return await waiter

    def _release(self, pool: _Pool, worker: Worker) -> None:
        worker.calls += 1
        worker.last_used = now = time.monotonic()
        worn = (
            worker.calls >= self.settings.max_calls_per_worker
            or now - worker.started >= self.settings.max_lifetime
        )
        if not worker.alive or worn or pool.retired:
            worker.kill()
            self._refill(pool)
            return
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        pool.idle.append(worker)

    def _refill(self, pool: _Pool) -> None:
        """Start a replacement when someone waits for this pool or it must stay warm."""
        if pool.retired or pool.load_failure is not None:
            return
        if pool.waiters or (pool.prepared and not any(w.alive for w in pool.workers)):
            self._in_background(self._replace(pool))

    async def _replace(self, pool: _Pool) -> None:
        if not self._make_room():
            return
        try:
            worker = await self._spawn(pool)
        except (LoadError, _Unavailable) as error:
            while pool.waiters:
                waiter = pool.waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(error)
            return
        self._release(pool, worker)
        worker.calls -= 1  # handing over is not a call

    def _make_room(self) -> bool:
        if len(self._live) < self.settings.max_workers:
            return True
        idle = [w for pool in self._pools.values() for w in pool.idle if w.alive]
        if not idle:
            return False
        oldest = min(idle, key=lambda worker: worker.last_used)
        oldest.kill()
        return True  # its slot frees when it is reaped; _spawn waits for one

    async def _spawn(self, pool: _Pool) -> Worker:
        while not self._free_slots:  # an evicted worker's slot frees once it is reaped
            exits = [worker.exited for worker in self._live]
            await asyncio.wait(exits, return_when=asyncio.FIRST_COMPLETED)
        slot = self._free_slots.pop()
        try:
            spawned = self.sandbox.spawn(slot)
        except OSError as error:
            self._free_slots.append(slot)
            raise _Unavailable(Crashed(f"the sandbox did not start: {error}")) from None
        worker = Worker(spawned, slot, self.settings.limits)
        self._live.add(worker)
        pool.workers.add(worker)
        worker.exited.add_done_callback(lambda _: self._forget(pool, worker))
        try:
            await worker.load(
                pool.version, str(self.sandbox.seccomp_library), self.settings.start_timeout
            )
        except LoadError as error:
            pool.load_failure = error.failure
            raise
        except BaseException:
            worker.kill()
            raise
        return worker

    def _forget(self, pool: _Pool, worker: Worker) -> None:
        self._live.discard(worker)
        pool.workers.discard(worker)
        with contextlib.suppress(ValueError):
            pool.idle.remove(worker)
        self._free_slots.append(worker.slot)
        self._refill(pool)
        unused = not pool.workers and not pool.waiters and not pool.prepared
        if unused and self._pools.get(pool.version.key) is pool:
            del self._pools[pool.version.key]

    def _retire_pool(self, pool: _Pool) -> None:
        pool.retired = True
        for worker in list(pool.workers):
            worker.kill()
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_Unavailable(Overloaded("the version was retired")))

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reap_interval)
            now = time.monotonic()
            for pool in list(self._pools.values()):
                for worker in list(pool.idle):
                    idle_for = now - worker.last_used
                    if (
                        idle_for >= self.settings.idle_ttl
                        or now - worker.started >= self.settings.max_lifetime
                    ):
                        pool.idle.remove(worker)
                        worker.kill()  # a prepared pool is refilled when it is reaped

    def _in_background(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _raised(error: dict[str, Any]) -> HookRaised:
    lines = error.get("traceback")
    traceback = (
        tuple(_text(line, "")[:500] for line in lines[:50]) if isinstance(lines, list) else ()
    )
    user_message = error.get("user_message")
    return HookRaised(
        type=_text(error.get("type"), "Exception")[:200],
        message=_text(error.get("message"), ""),
        user_message=_text(user_message, "") if user_message is not None else None,
        is_hook_error=error.get("hook_error") is True,
        traceback=traceback,
    )


def _text(value: Any, default: str) -> str:
    return value[:_MAX_TEXT] if isinstance(value, str) else default


def _redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    # Longest first, so a secret containing another is replaced whole.
    values = sorted({value for value in secrets if len(value) >= 4}, key=len, reverse=True)
    if not values:
        return lambda text: text

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "[redacted]")
        return text

    return redact


def _redacted_failure(failure: Failure, redact: Callable[[str], str]) -> Failure:
    if isinstance(failure, HookRaised):
        return HookRaised(
            failure.type,
            redact(failure.message),
            redact(failure.user_message) if failure.user_message is not None else None,
            failure.is_hook_error,
            tuple(redact(line) for line in failure.traceback),
        )
    if isinstance(failure, Crashed):
        return Crashed(redact(failure.reason), redact(failure.output))
    if isinstance(failure, BadResult):
        return BadResult(redact(failure.reason))
    return failure


def _since(began: float) -> float:
    return (time.perf_counter() - began) * 1000
