"""The supervisor: owns every worker's lifecycle, enforces limits from outside.

One pool of warm workers per code version, never shared between versions.
A call takes an idle worker (or starts one, up to a per-version cap, or
waits in a bounded queue), sends one ``invoke`` frame and waits for the
answer under a timer; a worker that times out, runs out of memory, crashes,
breaks the protocol or keeps running after its call is killed, and its pool
starts afresh. Workers are recycled after a number of calls, an idle TTL and
a maximum lifetime; a global cap evicts the least recently used idle worker.
Nothing here ever waits without a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from authhooks.egress.broker import Broker, EgressRecord
from authhooks.egress.rules import Rule
from authhooks.observability.metrics import SANDBOX_WORKERS, SANDBOX_WORKERS_KILLED
from authhooks.runtime.outcome import (
    ApiCall,
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
from authhooks.runtime.protocol import (
    HEADER,
    LOG_ENVELOPE_BYTES,
    LOG_HEAD,
    MAX_BYTES_PER_CHAR,
    MAX_DEPTH,
    MAX_FRAME_BYTES,
    MAX_TEXT,
    MAX_TRACEBACK_LINES,
    REDACTION_ROOM,
    FrameReader,
    ProtocolError,
    encode,
)
from authhooks.runtime.sandbox import (
    SLOTS,
    Limits,
    Sandbox,
    SandboxSettings,
    Spawned,
    claim_lock,
    lower_autogroup,
)

log = logging.getLogger(__name__)

ConsoleCallback = Callable[[ConsoleLine], None]
Redact = Callable[[str], str]
_RAW_TAIL = 4096
# CPU an idle worker may use between two reaper passes before it is deemed to be
# running code after its call ended (a background thread, say).
_IDLE_CPU_SECONDS = 0.05
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Retired versions remembered, so that a late call of one leaves no warm worker behind.
_REMEMBERED_RETIREMENTS = 10_000


@dataclass(frozen=True)
class Entry:
    """A function a version may define. With an ``api`` (namespace -> method names),
    it is also passed an ``api`` object whose method calls are recorded, in order,
    and returned with its result: what Auth0's Actions convention needs, known
    here only as names."""

    function: str
    api: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class CodeVersion:
    """One immutable version of a hook's code: ``key`` is unique across all hooks.
    ``entry`` names the function to call, or lists the functions it may define,
    in order of preference: the first one the code defines is the one called."""

    key: str
    source: str
    entry: str | tuple[Entry, ...]

    @property
    def entries(self) -> tuple[Entry, ...]:
        return (Entry(self.entry),) if isinstance(self.entry, str) else self.entry


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


def claim_cpu() -> int | None:
    """A CPU no other server process of this user on this host has claimed (held for
    this process's life); PermissionError if the lock directory is not private."""
    # Per user: another user's servers would have their directory refused.
    claimed = claim_lock(f"authhooks-cpus-{os.geteuid()}", sorted(os.sched_getaffinity(0)))
    return claimed[0] if claimed is not None else None  # its descriptor is never closed


_ALIVE = SANDBOX_WORKERS.labels("alive")
_STARTING = SANDBOX_WORKERS.labels("starting")


class _Unavailable(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


class Worker:
    """One sandboxed process serving one version; driven entirely from the event loop."""

    def __init__(
        self, spawned: Spawned, slot: int, limits: Limits, egress: int | None = None
    ) -> None:
        self.slot = slot
        self.egress = egress  # the number of its door to the egress broker, if it has one
        self.calls = 0
        self.started = self.last_used = time.monotonic()
        self.alive = True
        self.idle_cpu: float | None = None  # the reaper's last reading while idle
        self._spawned = spawned
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        # No frame a worker may send is larger than an answer; a console line's
        # is far smaller. Both are refused from their header on when larger.
        self._frames = FrameReader(limits.result_bytes)
        self._log_bytes = LOG_ENVELOPE_BYTES + MAX_BYTES_PER_CHAR * (
            limits.line_chars + REDACTION_ROOM
        )
        self._max_log_frames = 4 * limits.lines + 100
        self._outbox = bytearray()
        self._writing = False
        self._loading = False
        self._pending: asyncio.Future[dict[str, Any]] | None = None
        self._call_id = 0
        self.entry: Entry | None = None  # the entry its code defines, once loaded
        self._console: list[ConsoleLine] = []
        self._on_console: ConsoleCallback | None = None
        self._redact: Redact = _unchanged
        self._log_frames = 0
        self._raw = bytearray()
        self._raw_in_call = 0
        self._child: int | None = None
        self.exited: asyncio.Future[int | None] = self._loop.create_future()
        self._pidfd = os.pidfd_open(spawned.process.pid)
        for fd in (spawned.to_worker, spawned.from_worker, spawned.console):
            os.set_blocking(fd, False)
        self._loop.add_reader(spawned.from_worker, self._read_frames)
        self._loop.add_reader(spawned.console, self._read_raw)
        self._loop.add_reader(self._pidfd, self._reap)

    @property
    def pid(self) -> int:
        return self._spawned.process.pid

    async def load(self, version: CodeVersion, seccomp_library: str, timeout: float) -> None:
        """Send the code; LoadError if it does not load, _Unavailable if the worker fails."""
        self._loading = True
        try:
            answer = await self._ask(
                {
                    "op": "load",
                    "source": version.source,
                    "entries": [
                        {"function": entry.function, "api": entry.api} for entry in version.entries
                    ],
                    "limits": self._limits.for_worker(),
                    "seccomp_library": seccomp_library,
                    "egress": self.egress,
                },
                timeout,
            )
        finally:
            self._loading = False
        if answer.get("op") == "ready":
            found = [entry for entry in version.entries if entry.function == answer.get("entry")]
            if found:
                self.entry = found[0]
                return
            self._broken("it reported an entry it was not offered")
            raise _Unavailable(Crashed("the worker broke the protocol at load"))
        self.kill("load_failed")
        if answer.get("op") == "load_error":
            line = answer.get("line")
            raise LoadError(
                LoadFailed(
                    type=_text(answer.get("type"), "Error"),
                    message=_text(answer.get("message"), "the code did not load"),
                    line=line if isinstance(line, int) else None,
                )
            )
        if answer.get("op") == "timeout":
            # Not cached as a load failure: a busy machine may be the cause.
            raise _Unavailable(Crashed(f"the worker did not load within {timeout:g} s"))
        raise _Unavailable(self._death(answer))

    async def call(
        self,
        frame: bytes,
        timeout: float,
        on_console: ConsoleCallback | None,
        redact: Redact,
    ) -> tuple[Failure | None, Any, tuple[ApiCall, ...] | None, tuple[ConsoleLine, ...], int]:
        """(failure, result, api calls, console, dropped lines) of one invocation of ``frame``."""
        self._console = []
        self._on_console = on_console
        self._redact = redact
        self._log_frames = 0
        self._raw_in_call = 0
        answer = await self._ask_frame(frame, timeout)
        self._on_console = None
        console = tuple(self._console)
        dropped = answer.get("dropped_lines")
        dropped = dropped if isinstance(dropped, int) and dropped >= 0 else 0
        op, kind = answer.get("op"), answer.get("kind")
        if op == "result":
            api = self.entry.api if self.entry is not None else None
            if api is None:
                return None, answer.get("value"), None, console, dropped
            calls = _api_calls(answer.get("calls"), api)
            if calls is None:
                return BadResult("its api calls came back malformed"), None, None, console, dropped
            return None, answer.get("value"), calls, console, dropped
        if op == "error" and kind == "raised" and isinstance(answer.get("error"), dict):
            return _raised(answer["error"], redact), None, None, console, dropped
        if op == "error" and kind == "out_of_memory":
            self.kill("out_of_memory")  # its heap is suspect: start the next call afresh
            return OutOfMemory(self._limits.memory_bytes), None, None, console, dropped
        if op == "error" and kind == "bad_result":
            reason = _text(redact(_raw(answer.get("message"))), "unreadable")
            return BadResult(reason), None, None, console, dropped
        if op == "timeout":
            return Timeout(timeout), None, None, console, dropped
        self.kill("crashed")
        return self._death(answer), None, None, console, dropped

    def next_frame(self, encoded_args: bytes) -> bytes:
        """The invoke frame for the next call, around arguments already encoded as JSON."""
        self._call_id += 1
        body = b'{"op":"invoke","id":%d,"args":%s}' % (self._call_id, encoded_args)
        return HEADER.pack(len(body)) + body

    def kill(self, reason: str) -> None:
        """SIGKILL the worker and everything under its bwrap process; ``reason`` (a
        fixed word) is what the metrics count it under."""
        if not self.alive:
            return
        self.alive = False
        SANDBOX_WORKERS_KILLED.labels(reason).inc()
        child = self.child_pid()
        for pid in (self._spawned.process.pid, child):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def child_pid(self) -> int | None:
        """The host pid of the worker's Python process (bwrap's only child)."""
        if self._child is None:
            pid = self._spawned.process.pid
            with contextlib.suppress(OSError, ValueError):
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                self._child = int(children[0]) if children else None
        return self._child

    def cpu_seconds(self) -> float | None:
        """CPU time the worker's Python process has used so far."""
        child = self.child_pid()
        if child is None:
            return None
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # --- plumbing -------------------------------------------------------------------------

    async def _ask(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        return await self._ask_frame(encode(message), timeout)

    async def _ask_frame(self, frame: bytes, timeout: float) -> dict[str, Any]:
        if not self.alive:
            return {"op": "exit"}
        self._pending = pending = self._loop.create_future()
        self._send(frame)
        timer = self._loop.call_later(timeout, self._time_out, pending)
        try:
            answer: dict[str, Any] = await pending
            return answer
        finally:
            timer.cancel()
            self._pending = None

    def _time_out(self, pending: asyncio.Future[dict[str, Any]]) -> None:
        self.kill("timeout")
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
        if self._pending is None:
            self._broken("it spoke while nobody asked")
            return
        try:
            for body in self._frames.feed(data):
                self._take(body)
                if not self.alive:
                    return
        except ProtocolError as error:
            self._broken(f"it broke the protocol ({error})")

    def _take(self, body: bytes) -> None:
        """One frame, held to the caps the worker was given before any JSON parser
        sees it: a console line's is parsed as one string, and only the one answer
        to the question asked is parsed as a whole."""
        if self._pending is None or self._pending.done():
            self._broken("it spoke after its answer")
            return
        head = LOG_HEAD.match(body)
        if head is not None:
            self._console_frame(body, head)
            return
        message = decode_answer(body)
        op = message.get("op")
        if self._loading and op in ("ready", "load_error"):
            self._answer(message)
        elif not self._loading and message.get("id") != self._call_id:
            self._broken("it sent a frame for another call")
        elif op in ("result", "error") and not self._loading:
            self._answer(message)
        else:
            self._broken("it sent a frame nobody asked for")

    def _console_frame(self, body: bytes, head: re.Match[bytes]) -> None:
        """A frame that begins as a console line's (``head``): the rest must be the
        line, one JSON string, no longer than the worker sends."""
        if self._loading:
            self._broken("it sent a frame nobody asked for")
            return
        if int(head[1]) != self._call_id:
            self._broken("it sent a frame for another call")
            return
        self._log_frames += 1
        if self._log_frames > self._max_log_frames:
            self._broken("it flooded the console channel")
            return
        if len(body) > self._log_bytes:
            self._broken("it sent a console line over its length limit")
            return
        line = body[head.end() : -1]
        try:
            text = orjson.loads(line) if line[:1] == b'"' and body[-1:] == b"}" else None
        except orjson.JSONDecodeError:
            text = None
        if not isinstance(text, str):
            self._broken("it sent a malformed console line")
            return
        self._log(head[2].decode(), text)

    def _log(self, stream: str, text: str) -> None:
        if len(self._console) < self._limits.lines:
            text = self._redact(text)[: self._limits.line_chars]
            line = ConsoleLine(time.time(), stream, text)
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
        self.kill("protocol")
        self._answer({"op": "exit", "reason": reason})

    def _reap(self) -> None:
        self._loop.remove_reader(self._pidfd)
        process = self._spawned.process
        process.wait()
        self.kill("exited")  # the Python process too, should it outlive bwrap
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
            # bwrap exits with 128 + N when the worker died of signal N.
            signum = -code if code is not None and code < 0 else None
            if code is not None and code > 128:
                signum = code - 128
            if code is None:
                reason = "the worker stopped answering"
            elif signum == signal.SIGXCPU:
                reason = "the worker used up its CPU time limit"
            elif signum == signal.SIGSYS:
                reason = "the worker made a system call of a foreign architecture"
            elif signum is not None:
                reason = f"the worker was killed by {signal.Signals(signum).name}"
            else:
                reason = f"the worker exited with status {code}"
        output = self._redact(self._raw.decode("utf-8", "replace"))
        return Crashed(reason, output[-MAX_TEXT:])


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
            except _Unavailable as error:
                raise LoadError(LoadFailed("Unavailable", error.failure.describe())) from None
            self._release(pool, worker, counted=False)

    async def check(self, version: CodeVersion) -> LoadFailed | None:
        """Load the code in a throwaway worker: None if it loads, else why not."""
        pool = _Pool(version)
        try:
            worker = await self._start(pool)
        except LoadError as error:
            return error.failure
        except _Unavailable as error:
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
        args: Mapping[str, Any] | Callable[[str], Mapping[str, Any]],
        *,
        secrets: Iterable[str] = (),
        timeout: float | None = None,
        on_console: ConsoleCallback | None = None,
        egress: Sequence[Rule] = (),
        caller: str = "",
    ) -> Outcome:
        """Call ``version``'s entry function with ``args`` as keyword arguments.

        ``args`` may instead be a function of the entry's name (when the version
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
        except (LoadError, _Unavailable) as error:
            return Outcome(failure=error.failure, duration_ms=_since(began))
        entry = worker.entry or version.entries[0]
        if encoded_args is None:
            try:
                encoded_args = _encode_args(args(entry.function))  # type: ignore[operator]
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
            raise _Unavailable(Overloaded("too many calls of this hook are already waiting"))
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
                spawned = self.sandbox.spawn(slot, egress)
            except BaseException as error:
                if self._broker is not None:
                    self._broker.close(slot)
                self._free_slots.append(slot)
                if isinstance(error, OSError):
                    raise _Unavailable(Crashed(f"the sandbox did not start: {error}")) from None
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
                raise _Unavailable(Crashed(f"the sandbox did not start: {error}")) from None
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
            raise _Unavailable(Overloaded("every sandbox worker is busy; try again shortly"))
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
        except (LoadError, _Unavailable) as error:
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
                waiter.set_exception(_Unavailable(Overloaded("the server is shutting down")))

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


# orjson refuses JSON nested deeper than 1,024 levels. Parsed inside this many
# arrays, a frame nested deeper than MAX_DEPTH is refused by that same check,
# in C: walking a frame of tiny lists in Python took a second per 4 MiB.
_PADDING = 1024 - MAX_DEPTH


def decode_answer(body: bytes) -> dict[str, Any]:
    """The message in a frame from a worker (hook code may have written it): a JSON
    object of at most MAX_DEPTH levels, holding text only. orjson refuses lone
    surrogates, NaN and infinities itself."""
    try:
        value = orjson.loads(b"[" * _PADDING + body + b"]" * _PADDING)
    except orjson.JSONDecodeError as error:
        raise ProtocolError(f"frame is not JSON nested at most {MAX_DEPTH} deep: {error}") from None
    for _ in range(_PADDING):
        # Each level holds one item unless the body closed the padding early, as
        # in `{}],[{}`, which is not one JSON value.
        if len(value) != 1:
            raise ProtocolError("frame is not one JSON value")
        value = value[0]
    if not isinstance(value, dict):
        raise ProtocolError("frame is not a JSON object")
    return value


def _raised(error: dict[str, Any], redact: Redact) -> HookRaised:
    lines = error.get("traceback")
    if not isinstance(lines, list):
        lines = []
    user_message = error.get("user_message")
    return HookRaised(
        type=_text(error.get("type"), "Exception")[:200],
        message=_text(redact(_raw(error.get("message"))), ""),
        user_message=_text(redact(_raw(user_message)), "") if user_message is not None else None,
        is_hook_error=error.get("hook_error") is True,
        code=_code(error.get("code")),
        traceback=tuple(
            _text(redact(_raw(line)), "")[:500] for line in lines[:MAX_TRACEBACK_LINES]
        ),
    )


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


def _api_calls(value: Any, api: Mapping[str, tuple[str, ...]]) -> tuple[ApiCall, ...] | None:
    """The calls a worker reports, if each names a method the entry's api has."""
    if not isinstance(value, list):
        return None
    calls = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], list)):
            return None
        namespace, method, args = item
        if not isinstance(namespace, str) or method not in api.get(namespace, ()):
            return None
        calls.append(ApiCall(namespace, method, tuple(args)))
    return tuple(calls)


def _raw(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _code(value: Any) -> str | None:
    """A wire code as a hook error class declares it: a short snake_case word."""
    if isinstance(value, str) and _CODE.fullmatch(value):
        return value
    return None


def _text(value: Any, default: str) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else default


def _unchanged(text: str) -> str:
    return text


def redactor(secrets: Iterable[str]) -> Redact:
    """A function replacing each secret value (four characters or more) with ***."""
    # Longest first, so a secret containing another is replaced whole.
    values = sorted({value for value in secrets if len(value) >= 4}, key=len, reverse=True)
    if not values:
        return _unchanged

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "***")
        return text

    return redact


def _since(began: float) -> float:
    return (time.perf_counter() - began) * 1000
