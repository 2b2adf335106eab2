"""The test runner: run a hook — its deployed version, a stored one, or unsaved
code — against an event, in the real sandbox with the real limits, and say
what it did. Nothing is saved but the run's log record, marked as a test.

The event is given, or the point's sample, or a captured production event
(``replay``). Secrets are the hook's own, overridden by any sent with the
request (those are used for this run only, never stored).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets as secrets_module
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from anyio.to_thread import run_sync

from authhooks.egress.rules import parse_rule
from authhooks.errors import InvalidInput
from authhooks.flows.engine import Publisher, code_version, run_hook
from authhooks.hooks import captures, store
from authhooks.hooks import secrets as hook_secrets
from authhooks.hooks.lifecycle import infer_runtime
from authhooks.logs.writer import InvocationLog
from authhooks.masterkey import MasterKey
from authhooks.points.contract import BadEvent, Point, Preview
from authhooks.points.registry import POINTS
from authhooks.runtime.outcome import Failure, HookRaised, LoadFailed
from authhooks.runtime.supervisor import Runtime, redactor
from authhooks.storage.database import Database


@dataclass(frozen=True)
class Trial:
    """What the runner is asked to run."""

    version: int | None = None  # a stored version; the deployed one by default
    script: str | None = None  # unsaved code instead of a version
    event: dict[str, Any] | None = None  # the point's sample by default
    replay: str | None = None  # an invocation whose captured event to use
    secrets: dict[str, str] | None = None  # overrides, for this run only


@dataclass(frozen=True)
class Report:
    invocation_id: str
    version: int | None  # None for unsaved code
    outcome: str
    result: Any
    error: dict[str, Any] | None
    console: list[dict[str, Any]]
    duration_ms: float
    truncated: bool


# Runner calls at once per server process: they share the sandbox's worker cap
# with production traffic, which must not be crowded out.
MAX_CONCURRENT_RUNS = 4


class Runner:
    def __init__(
        self,
        database: Database,
        master_key: MasterKey,
        runtime: Runtime,
        log: InvocationLog,
        publish: Publisher | None,
        preview: Preview,
    ) -> None:
        self._db = database
        self._master_key = master_key
        self._runtime = runtime
        self._log = log
        self._publish = publish
        self._preview = preview
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_RUNS)

    async def run(self, hook_id: str, trial: Trial) -> Report:
        """NotFound for an unknown hook, version or invocation; InvalidInput for a bad
        request (an event of the wrong shape, a replay of another point)."""
        hook, point, raw = await run_sync(self._prepare, hook_id, trial)
        try:
            event = point.parse_event(raw)
        except BadEvent as error:
            raise InvalidInput(str(error)) from None
        async with self._slots:
            run = await run_hook(
                self._runtime,
                point,
                hook,
                event,
                point.initial(event),
                test=True,
                publish=self._publish,
            )
        if hook.version == 0:
            self._runtime.retire(code_version(hook, point).key)  # drafts are not kept warm
            # Which code ran, for the record: a draft leaves no version behind.
            digest = hashlib.sha256(hook.script.encode()).hexdigest()
            note = {
                "at": run.invocation.started_at.timestamp(),
                "stream": "authhooks",
                "text": f"test run of unsaved code, sha256 {digest}",
            }
            run = replace(
                run, invocation=replace(run.invocation, console=[*run.invocation.console, note])
            )
        self._log.record(run.invocation)
        await self._log.flush()  # so that the answer's invocation_id can be read at once
        invocation = run.invocation
        result = None
        if run.failure is None:
            # Secret values never leave the server, not even inside a would-be claim.
            result = _redacted(
                point.preview(event, run.state, run.output, self._preview),
                redactor(hook.secrets.values()),
            )
        return Report(
            invocation_id=invocation.id,
            version=hook.version or None,
            outcome=invocation.outcome,
            result=result,
            error=_error(run.failure) if run.failure is not None else None,
            console=invocation.console,
            duration_ms=invocation.duration_ms,
            truncated=invocation.truncated,
        )

    def _prepare(self, hook_id: str, trial: Trial) -> tuple[store.FlowHook, Point[Any, Any], Any]:
        with self._db.session() as session:
            row = store.get_hook(session, hook_id)
            point = POINTS.get(row.trigger_id)
            if point is None:  # a declared point the server no longer declares
                raise InvalidInput(
                    f"the hook's point {row.trigger_id!r} is not declared on this server"
                )
            if trial.script is not None:
                # Unsaved code, in the language it is written in, with the packages of
                # the deployed version.
                deployed = store.code_of(store.get_version(session, hook_id, row.version))
                version = 0
                code = replace(deployed, script=trial.script, runtime=infer_runtime(trial.script))
            else:
                version = trial.version if trial.version is not None else row.version
                code = store.code_of(store.get_version(session, hook_id, version))
            secrets = hook_secrets.values(session, self._master_key, hook_id)
            secrets.update(trial.secrets or {})
            if trial.replay is not None:
                record, event = captures.captured_event(session, self._master_key, trial.replay)
                # A capture is replayed by the hook that captured it: another hook's
                # code must not get the users' details its owner chose to keep.
                if record.hook_id != row.id:
                    raise InvalidInput(
                        f"invocation {trial.replay!r} is another hook's ({record.point}); "
                        "a hook replays its own captured events"
                    )
            else:
                event = trial.event if trial.event is not None else dict(point.sample_event)
            hook = store.FlowHook(
                id=row.id,
                name=row.name,
                version=version,
                script=code.script,
                runtime=code.runtime,
                dependencies=dict(code.dependencies),
                installed=code.installed,
                timeout_ms=row.timeout_ms,
                on_error="fail",  # the runner shows failures, it does not forgive them
                secrets=secrets,
                egress=tuple(parse_rule(text) for text in row.egress),
                draft=secrets_module.token_hex(8) if version == 0 else "",
            )
            return hook, point, event


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(key)): _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value


def _error(failure: Failure) -> dict[str, Any]:
    error: dict[str, Any] = {"kind": failure.kind, "message": failure.describe()}
    if isinstance(failure, HookRaised):
        error["type"] = failure.type
        error["traceback"] = list(failure.traceback)
    if isinstance(failure, LoadFailed) and failure.line is not None:
        error["line"] = failure.line
    return error
