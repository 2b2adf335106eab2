"""Running a point's flow: its enabled hooks in order, each seeing the state the
previous one left, each invocation recorded (and its console lines published
live as they are written).

A hook may follow either of Auth0's conventions; the point's contract adapts
both (points/contract.py). Whichever it uses, its output is merged by the same
rules, and a deliberate refusal — a raised ``HookError`` or ``api.access.deny``
— becomes the same ``Denial``, which the point turns into its caller's error.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authhooks.hooks import lifecycle
from authhooks.hooks.captures import Sealer
from authhooks.hooks.store import FlowHook
from authhooks.logs.records import Invocation
from authhooks.points.contract import BadOutput, Denial, Denied, Point, Refusal
from authhooks.runtime.outcome import BadResult, ConsoleLine, Failure, HookRaised, Outcome
from authhooks.runtime.supervisor import CodeVersion, Entry, Runtime, redactor


@dataclass(frozen=True)
class Stop:
    """Why a blocking flow stopped: the hook, its failure, and what the caller answers."""

    hook: FlowHook
    failure: Failure
    refusal: Refusal


@dataclass(frozen=True)
class FlowResult:
    state: Any
    stop: Stop | None = None


@dataclass(frozen=True)
class HookRun:
    """One hook's run within a flow: its record, the state after it, what it returned."""

    invocation: Invocation
    state: Any
    output: Any
    failure: Failure | None
    denial: Denial | None  # its failure was a deliberate refusal
    skipped: bool  # failed, and forgiven by on_error=continue


Recorder = Callable[[Invocation], None]
Publisher = Callable[[dict[str, Any]], None]  # a console line, as it is written


def code_version(hook: FlowHook, point: Point[Any, Any]) -> CodeVersion:
    return lifecycle.code_version(point, hook.key, hook.code)


def new_invocation_id() -> str:
    return "inv_" + secrets.token_hex(12)


async def run_hook(
    runtime: Runtime,
    point: Point[Any, Any],
    hook: FlowHook,
    event: Any,
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

    def arguments(entry: Entry) -> dict[str, Any]:
        if entry.api is not None:  # the Actions convention's, in either language
            return {"event": point.actions.event(event, state, hook.secrets)}
        return point.hooks.arguments(event, state, hook.secrets)

    outcome = await runtime.invoke(
        code_version(hook, point),
        arguments,
        secrets=hook.secrets.values(),
        timeout=min(hook.timeout_ms, point.timeout_ms or hook.timeout_ms) / 1000,
        on_console=_live(publish, invocation_id, hook, point, test) if publish else None,
        egress=hook.egress,
        caller=hook.id,
    )
    failure = outcome.failure
    notes: list[str] = []
    output = outcome.result
    if failure is None:
        try:
            output = _output(point, state, outcome)
            state, notes = point.merge(state, output)
        except BadOutput as error:
            failure = BadResult(redact(str(error)))
        except Denied as denied:
            failure = _denied(denied.denial, redact)
    notes = [redact(note) for note in notes]
    denial = _denial(failure)
    # on_error=continue forgives accidents (timeouts, crashes, bad output), never a
    # refusal the hook made on purpose.
    skipped = failure is not None and hook.on_error == "continue" and denial is None
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
        captured = seal(invocation_id, point.dump_event(event))
    invocation = Invocation(
        id=invocation_id,
        hook_id=hook.id,
        version=hook.version,
        point=point.id,
        started_at=started,
        duration_ms=outcome.duration_ms,
        outcome="ok" if failure is None else failure.kind,
        error=_storable(failure.describe()) if failure is not None else None,
        console=console,
        truncated=outcome.dropped_lines > 0,
        test=test,
        captured=captured,
    )
    return HookRun(invocation, state, output, failure, denial, skipped)


def _output(point: Point[Any, Any], state: Any, outcome: Outcome) -> Any:
    """What the hook returned, in the Hooks convention's terms: an Actions hook's
    api calls applied (its own return value is ignored, as Auth0 does)."""
    if outcome.calls is None:
        return outcome.result
    calls = [(call.namespace, call.method, call.args) for call in outcome.calls]
    return point.actions.apply(state, calls)


def _denied(denial: Denial, redact: Callable[[str], str]) -> HookRaised:
    """An Actions refusal, recorded as the Hooks convention's raised error would be."""
    user_message = redact(denial.user_message) if denial.user_message is not None else None
    return HookRaised(
        type="api.access.deny",
        message=redact(denial.message),
        user_message=user_message,
        is_hook_error=True,
        code=denial.code,
    )


def _denial(failure: Failure | None) -> Denial | None:
    if isinstance(failure, HookRaised) and failure.is_hook_error:
        return Denial(failure.code or "access_denied", failure.message, failure.user_message)
    return None


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
    publish: Publisher, invocation_id: str, hook: FlowHook, point: Point[Any, Any], test: bool
) -> Callable[[ConsoleLine], None]:
    def line(written: ConsoleLine) -> None:
        publish(
            {
                "invocation_id": invocation_id,
                "hook_id": hook.id,
                "version": hook.version,
                "point": point.id,
                "test": test,
                "at": written.at,
                "stream": written.stream,
                "text": written.text,
            }
        )

    return line


async def run_flow(
    runtime: Runtime,
    point: Point[Any, Any],
    hooks: Sequence[FlowHook],
    event: Any,
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
            refusal = point.refuse(hook.name, run.denial, run.failure.kind)
            return FlowResult(state, Stop(hook, run.failure, refusal))
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

    async def hooks(self, point: Point[Any, Any]) -> Sequence[FlowHook]:
        """The point's enabled hooks, in order."""
        return await self._flows(point.id)

    async def run(self, point: Point[Any, Any], event: Callable[[], Any]) -> FlowResult | None:
        """None when the point has no enabled hooks; ``event`` builds the event, and is
        called only when there are hooks to give it to (most requests have none)."""
        hooks = await self._flows(point.id)
        if not hooks:
            return None
        return await self.run_hooks(point, hooks, event())

    async def run_hooks(
        self,
        point: Point[Any, Any],
        hooks: Sequence[FlowHook],
        event: Any,
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
