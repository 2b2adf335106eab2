"""Running a point's flow: its enabled hooks in order, each seeing the state the
previous one left, each invocation recorded (and its console lines published
live as they are written)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authhooks.hooks.store import FlowHook
from authhooks.points.base import BadOutput, Point
from authhooks.runtime.outcome import BadResult, ConsoleLine, Failure, HookRaised
from authhooks.runtime.supervisor import CodeVersion, Runtime, redactor


@dataclass(frozen=True)
class Invocation:
    """The record of one hook run, as stored and shown in the hook's logs."""

    id: str
    hook_id: str
    version: int
    point: str
    started_at: datetime
    duration_ms: float
    outcome: str  # "ok", or the failure kind
    error: str | None
    console: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False  # console lines were dropped past the cap
    test: bool = False  # a runner call, not traffic
    captured: bytes | None = None  # the sealed event, when the hook captures events


@dataclass(frozen=True)
class Refusal:
    """Why a blocking flow stopped: the hook, and its failure."""

    hook: FlowHook
    failure: Failure


@dataclass(frozen=True)
class FlowResult:
    state: Any
    refusal: Refusal | None = None


@dataclass(frozen=True)
class HookRun:
    """One hook's run within a flow: its record, the state after it, what it returned."""

    invocation: Invocation
    state: Any
    output: Any
    failure: Failure | None
    skipped: bool  # failed, and forgiven by on_error=continue


Recorder = Callable[[Invocation], None]
Publisher = Callable[[dict[str, Any]], None]  # a console line, as it is written
Sealer = Callable[[str, Mapping[str, Any]], bytes]  # (invocation id, event) -> ciphertext


def code_version(hook: FlowHook, point: Point) -> CodeVersion:
    return CodeVersion(hook.key, hook.script, point.entry)


def new_invocation_id() -> str:
    return "inv_" + secrets.token_hex(12)


async def run_hook(
    runtime: Runtime,
    point: Point,
    hook: FlowHook,
    event: Mapping[str, Any],
    state: Any,
    *,
    test: bool = False,
    publish: Publisher | None = None,
    seal: Sealer | None = None,
) -> HookRun:
    """Run one hook on ``event`` with the flow's ``state`` so far; never raises for the hook."""
    invocation_id = new_invocation_id()
    redact = redactor(hook.secrets.values())
    started = datetime.now(UTC)
    outcome = await runtime.invoke(
        code_version(hook, point),
        point.arguments(event, state, hook.secrets),
        secrets=hook.secrets.values(),
        timeout=hook.timeout_ms / 1000,
        on_console=_live(publish, invocation_id, hook, point, test) if publish else None,
        egress=hook.egress,
        caller=hook.id,
    )
    failure = outcome.failure
    notes: list[str] = []
    if failure is None:
        try:
            state, notes = point.merge(state, outcome.result)
        except BadOutput as error:
            failure = BadResult(redact(str(error)))
    notes = [redact(note) for note in notes]
    # on_error=continue forgives accidents (timeouts, crashes, bad output), never a
    # refusal the hook raised on purpose.
    on_purpose = isinstance(failure, HookRaised) and failure.is_hook_error
    skipped = failure is not None and hook.on_error == "continue" and not on_purpose
    console = [
        {"at": line.at, "stream": line.stream, "text": line.text} for line in outcome.console
    ]
    at = started.timestamp()
    console += [
        {"at": at, "stream": "egress", "text": redact(record.describe())}
        for record in outcome.egress
    ]
    console += [{"at": at, "stream": "authhooks", "text": note} for note in notes]
    if outcome.dropped_lines:
        note = f"{outcome.dropped_lines} console lines were dropped past the cap"
        console.append({"at": at, "stream": "authhooks", "text": note})
    if skipped:
        note = "the hook failed and was skipped (on_error=continue)"
        console.append({"at": at, "stream": "authhooks", "text": note})
    captured = None
    if seal is not None and hook.capture_events and point.blocking and not test:
        captured = seal(invocation_id, event)
    invocation = Invocation(
        id=invocation_id,
        hook_id=hook.id,
        version=hook.version,
        point=point.name,
        started_at=started,
        duration_ms=outcome.duration_ms,
        outcome="ok" if failure is None else failure.kind,
        error=_storable(failure.describe()) if failure is not None else None,
        console=console,
        truncated=outcome.dropped_lines > 0,
        test=test,
        captured=captured,
    )
    return HookRun(invocation, state, outcome.result, failure, skipped)


def _storable(text: str) -> str:
    """Text every database stores: PostgreSQL's text refuses NUL, and no UTF-8
    column takes half a surrogate pair. One record it refused would cost every
    record written with it."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode(errors="replace").decode()
    return text


def _live(
    publish: Publisher, invocation_id: str, hook: FlowHook, point: Point, test: bool
) -> Callable[[ConsoleLine], None]:
    def line(written: ConsoleLine) -> None:
        publish(
            {
                "invocation_id": invocation_id,
                "hook_id": hook.id,
                "version": hook.version,
                "point": point.name,
                "test": test,
                "at": written.at,
                "stream": written.stream,
                "text": written.text,
            }
        )

    return line


async def run_flow(
    runtime: Runtime,
    point: Point,
    hooks: Sequence[FlowHook],
    event: Mapping[str, Any],
    record: Recorder,
    *,
    publish: Publisher | None = None,
    seal: Sealer | None = None,
) -> FlowResult:
    """Run ``hooks`` for ``event``; stop at the first failing hook unless it may be skipped."""
    state = point.initial(event)
    for hook in hooks:
        run = await run_hook(runtime, point, hook, event, state, publish=publish, seal=seal)
        record(run.invocation)
        state = run.state
        if run.failure is not None and not run.skipped:
            return FlowResult(state, Refusal(hook, run.failure))
    return FlowResult(state)


FlowSource = Callable[[str], Awaitable[Sequence[FlowHook]]]


class FlowRunner:
    """What identity/ calls: run the flow of a point for an event, if it has hooks."""

    def __init__(
        self,
        runtime: Runtime,
        flows: FlowSource,
        record: Recorder,
        *,
        publish: Publisher | None = None,
        seal: Sealer | None = None,
    ) -> None:
        self.runtime = runtime
        self._flows = flows
        self._record = record
        self.publish = publish
        self.seal = seal

    async def hooks(self, point: Point) -> Sequence[FlowHook]:
        """The point's enabled hooks, in order."""
        return await self._flows(point.name)

    async def run(self, point: Point, event: Mapping[str, Any]) -> FlowResult | None:
        """None when the point has no enabled hooks (and the event need not be built further)."""
        hooks = await self._flows(point.name)
        if not hooks:
            return None
        return await self.run_hooks(point, hooks, event)

    async def run_hooks(
        self,
        point: Point,
        hooks: Sequence[FlowHook],
        event: Mapping[str, Any],
        record: Recorder | None = None,
    ) -> FlowResult:
        return await run_flow(
            self.runtime,
            point,
            hooks,
            event,
            record or self._record,
            publish=self.publish,
            seal=self.seal,
        )
