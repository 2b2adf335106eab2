"""The server's handle on one sandboxed worker process; ``worker.py`` is what
runs inside it.

A ``Worker`` is driven entirely from the event loop. It sends the ``load`` and
``invoke`` frames and waits for each answer under a timer. It holds every frame
the worker sends to the caps the worker was given before any JSON parser sees
it: a console line's is taken apart by its fixed layout, and only the one
answer to the question asked is parsed whole (``decode_answer``). A worker
that breaks a cap, speaks out of turn or outlives its timer is killed (SIGKILL,
with everything under its bwrap process) and reaped through a pidfd. What it
answers becomes a result or a typed failure (``outcome``), with the call's
secrets redacted (``redactor``). What a worker loads is a ``CodeVersion``;
which worker serves which call is the supervisor's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from authhooks.observability.metrics import SANDBOX_WORKERS_KILLED
from authhooks.runtime.outcome import (
    ApiCall,
    BadResult,
    ConsoleLine,
    Crashed,
    Failure,
    HookRaised,
    LoadError,
    LoadFailed,
    OutOfMemory,
    Timeout,
)
from authhooks.runtime.protocol import (
    HEADER,
    LOG_ENVELOPE_BYTES,
    LOG_HEAD,
    MAX_BYTES_PER_CHAR,
    MAX_DEPTH,
    MAX_TEXT,
    MAX_TRACEBACK_LINES,
    REDACTION_ROOM,
    FrameReader,
    ProtocolError,
    encode,
)
from authhooks.runtime.sandbox import Limits, Spawned

ConsoleCallback = Callable[[ConsoleLine], None]
Redact = Callable[[str], str]
_RAW_TAIL = 4096
# Reads of a pipe left behind by a worker that has exited: a pipe holds at most
# 1 MiB, in reads of 64 KiB.
_DRAIN_READS = 17
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


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
    language: str = "python"  # "python" or "node"
    # Its declared dependencies (name -> exact version), and the key of their
    # installed set under RuntimeSettings.dependency_root, bound read-only into
    # its workers.
    dependencies: Mapping[str, str] = field(default_factory=dict)
    installed: str | None = None

    @property
    def entries(self) -> tuple[Entry, ...]:
        return (Entry(self.entry),) if isinstance(self.entry, str) else self.entry


class Unavailable(Exception):
    """The worker cannot serve the call (it did not start, died or broke the
    protocol, or its pool is full); ``failure`` says why."""

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
        """Send the code; LoadError if it does not load, Unavailable if the worker fails."""
        self._loading = True
        try:
            answer = await self._ask(
                {
                    "op": "load",
                    "source": version.source,
                    "entries": [
                        {"function": entry.function, "api": entry.api} for entry in version.entries
                    ],
                    "dependencies": dict(version.dependencies),
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
            raise Unavailable(Crashed("the worker broke the protocol at load"))
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
            raise Unavailable(Crashed(f"the worker did not load within {timeout:g} s"))
        raise Unavailable(self._death(answer))

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
        death = self._death(answer)
        if _OUT_OF_MEMORY.search(death.output):
            # V8 ends the process itself at its heap cap, or when RLIMIT_DATA refuses
            # it memory: the Node.js worker's MemoryError.
            self.kill("out_of_memory")
            return OutOfMemory(self._limits.memory_bytes), None, None, console, dropped
        self.kill("crashed")
        return death, None, None, console, dropped

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

    def _read_frames(self) -> bool:
        """Read and take what the worker sent; whether there may be more to read."""
        try:
            data = os.read(self._spawned.from_worker, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._spawned.from_worker)
            return False
        if self._pending is None:
            self._broken("it spoke while nobody asked")
            return False
        try:
            for body in self._frames.feed(data):
                self._take(body)
                if not self.alive:
                    return False
        except ProtocolError as error:
            self._broken(f"it broke the protocol ({error})")
            return False
        return True

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

    def _read_raw(self) -> bool:
        """Keep the tail of the worker's raw output; whether there may be more to read."""
        try:
            data = os.read(self._spawned.console, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._spawned.console)
            return False
        self._raw += data
        del self._raw[:-_RAW_TAIL]
        self._raw_in_call += len(data)
        if self._raw_in_call > 1 << 20:
            self._broken("it flooded its raw output")
        return True

    def _broken(self, reason: str) -> None:
        self.kill("protocol")
        self._answer({"op": "exit", "reason": reason})

    def _reap(self) -> None:
        self._loop.remove_reader(self._pidfd)
        process = self._spawned.process
        process.wait()
        # What it wrote before it ended is read first, or it would race the exit:
        # an answer sent just before, and the last words of its raw output (what
        # tells a Node.js worker that ran out of memory from any other crash).
        for read in (self._read_frames, self._read_raw):
            for _ in range(_DRAIN_READS):
                if not read():
                    break
        self.kill("exited")  # the worker process too, should it outlive bwrap
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

    def _death(self, answer: dict[str, Any]) -> Crashed:
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


# How a Node.js worker that ran out of memory ends: V8 and Node.js say so at the
# heap's cap, or when RLIMIT_DATA refuses them memory; where V8 does not check,
# the worker's own allocator says so first (runtime/node/confine.c).
_OUT_OF_MEMORY = re.compile(
    r"JavaScript heap out of memory|Allocation failed - process out of memory"
    r"|Fatal (?:process out of memory|javascript OOM)|what\(\): +std::bad_alloc"
    r"|authhooks: out of memory"
)
# orjson refuses JSON nested deeper than 1,024 levels. Parsed inside this many
# arrays, a frame nested deeper than MAX_DEPTH is refused by that same check,
# in C: walking a frame of tiny lists in Python took a second per 4 MiB.
_PADDING = 1024 - MAX_DEPTH


def decode_answer(body: bytes) -> dict[str, Any]:
    """The message in a frame from a worker (hook code may have written it): a JSON
    object of at most MAX_DEPTH levels, holding text only. orjson refuses lone
    surrogates, NaN and infinities itself."""
    # Nesting needs brackets: a frame with no more of them than the cap (every
    # answer of an ordinary hook) cannot be too deep, and is parsed as it is; the
    # padding costs tens of microseconds, paid only by frames that could be.
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ProtocolError(f"frame is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise ProtocolError("frame is not a JSON object")
        return value
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
