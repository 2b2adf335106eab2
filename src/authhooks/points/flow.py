"""Running a point's flow: its enabled hooks in order, each seeing the state the
previous one left, each invocation recorded."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authhooks.hooks.store import FlowHook
from authhooks.points.base import BadOutput, Point
from authhooks.runtime.outcome import BadResult, Failure, HookRaised
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


@dataclass(frozen=True)
class Refusal:
    """Why a blocking flow stopped: the hook, and its failure."""

    hook: FlowHook
    failure: Failure


@dataclass(frozen=True)
class FlowResult:
    state: Any
    refusal: Refusal | None = None


Recorder = Callable[[Invocation], None]


def code_version(hook: FlowHook, point: Point) -> CodeVersion:
    return CodeVersion(hook.key, hook.script, point.entry)


async def run_flow(
    runtime: Runtime,
    point: Point,
    hooks: Sequence[FlowHook],
    event: Mapping[str, Any],
    record: Recorder,
) -> FlowResult:
    """Run ``hooks`` for ``event``; stop at the first failing hook unless it may be skipped."""
    state = point.initial(event)
    for hook in hooks:
        redact = redactor(hook.secrets.values())
        started = datetime.now(UTC)
        outcome = await runtime.invoke(
            code_version(hook, point),
            point.arguments(event, state, hook.secrets),
            secrets=hook.secrets.values(),
            timeout=hook.timeout_ms / 1000,
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
        console += [{"at": started.timestamp(), "stream": "authhooks", "text": n} for n in notes]
        if skipped:
            note = "the hook failed and was skipped (on_error=continue)"
            console.append({"at": started.timestamp(), "stream": "authhooks", "text": note})
        record(
            Invocation(
                id="inv_" + secrets.token_hex(12),
                hook_id=hook.id,
                version=hook.version,
                point=point.name,
                started_at=started,
                duration_ms=outcome.duration_ms,
                outcome="ok" if failure is None else failure.kind,
                error=failure.describe() if failure is not None else None,
                console=console,
            )
        )
        if failure is not None and not skipped:
            return FlowResult(state, Refusal(hook, failure))
    return FlowResult(state)


FlowSource = Callable[[str], Awaitable[Sequence[FlowHook]]]


class FlowRunner:
    """What identity/ calls: run the flow of a point for an event, if it has hooks."""

    def __init__(self, runtime: Runtime, flows: FlowSource, record: Recorder) -> None:
        self.runtime = runtime
        self._flows = flows
        self._record = record

    async def hooks(self, point: Point) -> Sequence[FlowHook]:
        """The point's enabled hooks, in order."""
        return await self._flows(point.name)

    async def run(self, point: Point, event: Mapping[str, Any]) -> FlowResult | None:
        """None when the point has no enabled hooks (and the event need not be built further)."""
        hooks = await self._flows(point.name)
        if not hooks:
            return None
        return await run_flow(self.runtime, point, hooks, event, self._record)
