"""/api/v2/hooks: hooks, their versions, secrets, invocation logs, queued deliveries
and schedules.

Auth0's shape (``id``, ``name``, ``script``, ``triggerId``, ``enabled``,
``dependencies``) plus ``runtime``, ``resolved``, ``order``, ``timeout_ms``,
``on_error``, ``version`` and, for the schedule point's hooks, ``schedule``.
Dependencies are installed, then code is validated in the real sandbox, before
anything is stored, and a version is warmed in the runtime before it is deployed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from anyio.to_thread import run_sync
from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, model_validator
from sqlalchemy.orm import Session

from authhooks.api.auth import Caller, require, services
from authhooks.api.fields import FieldSelection, field_selection
from authhooks.api.models import Auth0Body, Out, Patch
from authhooks.api.models import Body as RequestBody
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.egress.rules import parse_rule
from authhooks.errors import InvalidInput, NotFound
from authhooks.flows import deliveries
from authhooks.flows.runner import Trial
from authhooks.gitsync.repository import commit_link
from authhooks.hooks import dependencies as hook_dependencies
from authhooks.hooks import limits, schedules, store
from authhooks.hooks import secrets as hook_secrets
from authhooks.hooks.lifecycle import infer_runtime
from authhooks.hooks.store import Code
from authhooks.points.cron import (
    DEFAULT_TIMEZONE,
    MAX_CRON_CHARS,
    MAX_TIMEZONE_CHARS,
    Schedule,
)
from authhooks.points.cron import schedule as checked_schedule
from authhooks.points.registry import POINTS
from authhooks.services import Services
from authhooks.storage import models

router = APIRouter(prefix="/hooks", tags=["hooks"], route_class=StrictJSONRoute)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=store.NAME.pattern)]
Script = Annotated[str, Field(min_length=1, max_length=store.MAX_SCRIPT_BYTES)]
TimeoutMs = Annotated[int, Field(ge=limits.MIN_TIMEOUT_MS, le=limits.MAX_TIMEOUT_MS)]
Order = Annotated[int, Field(ge=-limits.MAX_ORDER, le=limits.MAX_ORDER)]


def _egress_rules(value: list[str]) -> list[str]:
    """Each entry parsed, and kept in its canonical form (``host:port``)."""
    canonical: list[str] = []
    for text in value:
        rule = parse_rule(text)  # ValueError names what is wrong
        canonical.append(f"{rule.pattern}:{rule.port}")
    return list(dict.fromkeys(canonical))


Egress = Annotated[
    list[Annotated[str, Field(max_length=limits.MAX_EGRESS_RULE_CHARS)]],
    Field(max_length=limits.MAX_EGRESS_RULES),
    AfterValidator(_egress_rules),
]


def _declared(value: Any) -> Any:
    """Actions' ``[{"name", "version"}, ...]`` as Hooks' ``{"name": "version"}``."""
    if not isinstance(value, list):
        return value
    declared: dict[Any, Any] = {}
    for item in value:
        if not isinstance(item, dict) or not {"name", "version"} <= set(item):
            raise ValueError('each item must be {"name": ..., "version": ...}')
        extra = set(item) - {"name", "version", "registry_url"}
        if extra:
            raise ValueError(f"unknown field {sorted(extra)[0]!r} in {item.get('name')!r}")
        if item.get("registry_url"):
            raise ValueError(
                f"{item['name']!r}: registry_url cannot be set; packages come from the "
                "server's registry"
            )
        if not isinstance(item["name"], str) or not isinstance(item["version"], str):
            raise ValueError("a dependency's name and version must be strings")
        if item["name"] in declared:
            raise ValueError(f"{item['name']!r} is listed twice")
        declared[item["name"]] = item["version"]
    return declared


Dependencies = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=hook_dependencies.MAX_NAME_CHARS)],
        Annotated[str, Field(min_length=1, max_length=hook_dependencies.MAX_VERSION_CHARS)],
    ],
    BeforeValidator(_declared),
    Field(
        max_length=hook_dependencies.MAX_DECLARED,
        description=(
            'Packages by exact version: {"lodash": "4.17.21"} (Auth0 Hooks) or '
            '[{"name": "lodash", "version": "4.17.21"}] (Auth0 Actions).'
        ),
    ),
]
OnError = Literal["fail", "continue"]
# Auth0's API has no runtime field: a script sent without one is JavaScript when it
# reads like Auth0's (module.exports, exports.onExecute...), else Python.
Runtime = Literal["python", "node"]
NEXT_RUNS = 5  # how many of a schedule's next ticks GET .../schedule shows


class ScheduleIn(RequestBody):
    """When a hook of the schedule point runs (docs/hooks.md, "Scheduled hooks")."""

    cron: str = Field(
        max_length=MAX_CRON_CHARS,
        description="5 fields (minute hour day-of-month month day-of-week), or 6: "
        'the sixth is seconds. "*/5 * * * *": every five minutes.',
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        max_length=MAX_TIMEZONE_CHARS,
        description="The IANA time zone the expression is read in",
    )
    catch_up: bool = Field(
        default=False,
        description="Run once at start for ticks missed while no server was running",
    )

    def checked(self) -> Schedule:
        return checked_schedule(self.cron, self.timezone, self.catch_up)


class ScheduleOut(Out):
    cron: str
    timezone: str
    catch_up: bool


class HookCreate(RequestBody):
    name: Name
    script: Script
    triggerId: str
    runtime: Runtime | None = None
    enabled: bool = False
    order: Order = 0
    timeout_ms: TimeoutMs = 5000
    on_error: OnError = "fail"
    capture_events: bool = False
    egress: Egress = Field(default_factory=list)
    dependencies: Dependencies = Field(default_factory=dict)
    schedule: ScheduleIn | None = Field(
        default=None, description="Required for hooks of point schedule; refused for others."
    )


class HookUpdate(Patch, Auth0Body):
    # What a GET answers and no PATCH sets: sent back unchanged, it is fine.
    read_only = frozenset(
        {"id", "triggerId", "resolved", "version", "source_id", "created_at", "updated_at"}
    )
    # What a GET answers for a hook of any other point than schedule: no schedule.
    nullable = frozenset({"schedule"})

    name: Name | None = None
    script: Script | None = None
    runtime: Runtime | None = Field(
        default=None, description="The script's language; inferred from it when absent."
    )
    enabled: bool | None = None
    exclusive: bool | None = Field(
        default=None, description="With enabled=true: disable the point's other hooks (Auth0)."
    )
    order: Order | None = None
    timeout_ms: TimeoutMs | None = None
    on_error: OnError | None = None
    capture_events: bool | None = None
    egress: Egress | None = None
    dependencies: Dependencies | None = None
    schedule: ScheduleIn | None = Field(
        default=None, description="Replaces the schedule (hooks of point schedule only)."
    )


class ResolvedPackage(BaseModel):
    name: str
    version: str
    integrity: str | None = Field(
        description="The registry's hash of what was installed; null for a package "
        "that came inside another's archive"
    )


class HookOut(Out):
    id: str
    name: str
    script: str
    triggerId: str
    runtime: str
    enabled: bool
    order: int
    timeout_ms: int
    on_error: str
    capture_events: bool
    egress: list[str]
    dependencies: dict[str, str] = Field(description="As declared: name -> exact version")
    resolved: list[ResolvedPackage] = Field(
        description="Every package installed for them, theirs included"
    )
    version: int
    source_id: str | None = Field(
        default=None,
        description="The git source that keeps it (read-only here); null: made by hand",
    )
    schedule: ScheduleOut | None = Field(
        default=None, description="When it runs: hooks of point schedule; null for others"
    )
    created_at: datetime
    updated_at: datetime


class VersionOut(Out):
    number: int
    created_at: datetime
    author: str
    deployed: bool
    source_id: str | None = Field(
        default=None, description="The git source whose deployment made it; null: not git"
    )
    commit: str | None = Field(default=None, description="The commit it was deployed from")
    commit_url: str | None = Field(
        default=None, description="The commit's page, when the repository is on a known host"
    )
    script: str | None = None
    dependencies: dict[str, str] | None = None
    resolved: list[ResolvedPackage] | None = None


class InvocationOut(Out):
    id: str
    version: int
    point: str
    started_at: datetime
    duration_ms: float
    outcome: str
    error: str | None
    console: list[dict[str, Any]]


Secrets = Annotated[dict[str, str], Body(max_length=hook_secrets.MAX_SECRETS)]


def _out(hook: models.Hook, code: Code, schedule: dict[str, Any] | None = None) -> HookOut:
    return HookOut(
        id=hook.id,
        name=hook.name,
        script=code.script,
        triggerId=hook.trigger_id,
        runtime=hook.runtime,
        enabled=hook.enabled,
        order=hook.order,
        timeout_ms=hook.timeout_ms,
        on_error=hook.on_error,
        capture_events=hook.capture_events,
        egress=hook.egress,
        dependencies=code.dependencies,
        resolved=[ResolvedPackage.model_validate(package) for package in code.resolved or ()],
        version=hook.version,
        source_id=hook.source_id,
        schedule=ScheduleOut.model_validate(schedule) if schedule is not None else None,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _schedule_of(found: Services, hook_id: str) -> dict[str, Any] | None:
    with found.database.session() as session:
        return schedules.views(session, [hook_id]).get(hook_id)


def _shown(session: Session, hook: models.Hook) -> HookOut:
    """A hook as GET answers it: its current code and its schedule."""
    schedule = schedules.views(session, [hook.id]).get(hook.id)
    return _out(hook, store.current_code(session, hook), schedule)


@router.post("", status_code=201, response_model=HookOut)
async def create_hook(
    body: HookCreate,
    caller: Annotated[Caller, Depends(require("create:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> HookOut:
    code = Code(body.script, body.runtime or infer_runtime(body.script), body.dependencies)
    if body.triggerId not in POINTS:  # declared in another process just now, perhaps
        await found.live.catch_up()
    # Checked before the sandbox loads anything: a bad schedule is refused at once.
    schedule = body.schedule.checked() if body.schedule is not None else None
    schedules.check_for_point(body.triggerId, schedule)
    hook, code = await found.lifecycle.create(
        author=caller.author,
        code=code,
        name=body.name,
        trigger_id=body.triggerId,
        enabled=body.enabled,
        order=body.order,
        timeout_ms=body.timeout_ms,
        on_error=body.on_error,
        capture_events=body.capture_events,
        egress=body.egress,
        schedule=schedule,
    )
    return _out(hook, code, schedule.view() if schedule is not None else None)


@router.get("", response_model=list[HookOut] | dict[str, Any])
def list_hooks(
    _: Annotated[Caller, Depends(require("read:hooks"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
    trigger_id: Annotated[str | None, Query(alias="triggerId", max_length=64)] = None,
    enabled: bool | None = None,
) -> Any:
    with found.database.session() as session:
        rows, total = store.list_hooks(
            session, offset=page.offset, limit=page.per_page, trigger_id=trigger_id, enabled=enabled
        )
        scheduled = schedules.views(session, [hook.id for hook, _ in rows])
        items = [_out(hook, code, scheduled.get(hook.id)) for hook, code in rows]
    return selection.shaped(page.shape("hooks", items, total), "hooks")


@router.get("/{hook_id}", response_model=HookOut)
def get_hook(
    hook_id: str,
    _: Annotated[Caller, Depends(require("read:hooks"))],
    found: Annotated[Services, Depends(services)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
) -> Any:
    with found.database.session() as session:
        return selection.shaped(_shown(session, store.get_hook(session, hook_id)))


@router.patch("/{hook_id}", response_model=HookOut)
async def update_hook(
    hook_id: str,
    body: HookUpdate,
    caller: Annotated[Caller, Depends(require("update:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> HookOut:
    changes = body.model_dump(exclude_unset=True)
    if body.echoed:

        def shown() -> dict[str, Any]:
            with found.database.session() as session:
                return _shown(session, store.get_hook(session, hook_id)).model_dump(mode="json")

        changed = body.changed_read_only(await run_sync(shown))
        if changed:
            raise InvalidInput(f"{', '.join(changed)}: read-only, and not as stored")
    if "schedule" in changes:
        # Checked before a new version is stored: a refused schedule leaves nothing behind.
        schedule = body.schedule.checked() if body.schedule is not None else None

        def point() -> str:
            with found.database.session() as session:
                return store.get_hook(session, hook_id).trigger_id

        schedules.check_for_point(await run_sync(point), schedule)
        changes["schedule"] = schedule
    updated, code = await found.lifecycle.update(
        hook_id,
        changes,
        author=caller.author,
        script=changes.pop("script", None),
        runtime=changes.pop("runtime", None),
        dependencies=changes.pop("dependencies", None),
        exclusive=changes.pop("exclusive", False),
    )
    return _out(updated, code, await run_sync(_schedule_of, found, hook_id))


@router.delete("/{hook_id}", status_code=204)
async def delete_hook(
    hook_id: str,
    _: Annotated[Caller, Depends(require("delete:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    await found.lifecycle.delete(hook_id)
    return Response(status_code=204)


@router.get("/{hook_id}/versions", response_model=list[VersionOut])
def list_versions(
    hook_id: str,
    _: Annotated[Caller, Depends(require("read:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> list[VersionOut]:
    with found.database.session() as session:
        deployed = store.get_hook(session, hook_id).version
        repositories: dict[str, str | None] = {}
        return [
            VersionOut(
                number=v.number,
                created_at=v.created_at,
                author=v.author,
                deployed=v.number == deployed,
                **_origin(session, v, repositories),
            )
            for v in store.list_versions(session, hook_id)
        ]


def _origin(
    session: Session, version: models.HookVersion, repositories: dict[str, str | None]
) -> dict[str, Any]:
    """Where a version came from: its git source and commit, and the commit's page."""
    if version.source_id is None or version.commit is None:
        return {}
    if version.source_id not in repositories:
        source = session.get(models.GitSource, version.source_id)
        repositories[version.source_id] = source.repository if source is not None else None
    repository = repositories[version.source_id]
    return {
        "source_id": version.source_id,
        "commit": version.commit,
        "commit_url": commit_link(repository, version.commit) if repository else None,
    }


@router.get("/{hook_id}/versions/{number}", response_model=VersionOut)
def get_version(
    hook_id: str,
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    _: Annotated[Caller, Depends(require("read:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> VersionOut:
    with found.database.session() as session:
        hook = store.get_hook(session, hook_id)
        version = store.get_version(session, hook_id, number)
        return VersionOut(
            number=version.number,
            created_at=version.created_at,
            author=version.author,
            deployed=version.number == hook.version,
            **_origin(session, version, {}),
            script=version.script,
            dependencies=version.dependencies,
            resolved=[ResolvedPackage.model_validate(p) for p in version.resolved or ()],
        )


@router.post("/{hook_id}/versions/{number}/deploy", response_model=HookOut)
async def deploy_version(
    hook_id: str,
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    _: Annotated[Caller, Depends(require("update:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> HookOut:
    deployed, code = await found.lifecycle.deploy(hook_id, number)
    return _out(deployed, code, await run_sync(_schedule_of, found, hook_id))


class ScheduleStatus(Out):
    cron: str
    timezone: str
    catch_up: bool
    next_runs: list[datetime] = Field(
        description=f"The next {NEXT_RUNS} ticks, in UTC; empty while the hook is disabled"
    )
    last_run_at: datetime | None = Field(description="The tick the last run was for")
    last_status: str | None = Field(
        description="How the last run ended: ok or the failure kind; interrupted (its "
        "server stopped), abandoned (its server died), error (the server's own fault)"
    )
    running_since: datetime | None = Field(description="When the run in progress started")
    note: str | None = Field(
        default=None,
        description="Why next_runs is empty though the hook is enabled: its schedule "
        "cannot be followed on this server (a time zone it does not know)",
    )


@router.get("/{hook_id}/schedule", response_model=ScheduleStatus)
def get_schedule(
    hook_id: str,
    _: Annotated[Caller, Depends(require("read:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> ScheduleStatus:
    """A hook of the schedule point's schedule, its next ticks and its last run."""
    with found.database.session() as session:
        hook = store.get_hook(session, hook_id)
        row = schedules.find(session, hook_id)
        if row is None:
            raise NotFound(
                f"hook {hook.name!r} has no schedule: only hooks of point 'schedule' have one"
            )
        schedule = schedules.stored(row)
        next_runs: list[datetime] = []
        note = None
        if hook.enabled:
            # From the stored next tick, which the scheduler runs (or skips) next.
            try:
                next_runs = [row.next_run_at, *schedule.next_runs(row.next_run_at, NEXT_RUNS - 1)]
            except Exception as error:  # a row this server cannot follow: shown as stored
                note = (
                    f"the schedule cannot be followed on this server ({type(error).__name__}: "
                    f"{error}): is time zone {row.timezone!r} known here? Replace the schedule."
                )
        return ScheduleStatus(
            **schedule.view(),
            next_runs=next_runs,
            last_run_at=row.last_run_at,
            last_status=row.last_status,
            running_since=row.running_since,
            note=note,
        )


@router.get("/{hook_id}/secrets", response_model=dict[str, str])
def list_secrets(
    hook_id: str,
    _: Annotated[Caller, Depends(require("read:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> dict[str, str]:
    with found.database.session() as session:
        store.get_hook(session, hook_id)
        return dict.fromkeys(hook_secrets.names(session, hook_id), hook_secrets.HIDDEN)


@router.post("/{hook_id}/secrets", status_code=201, response_model=dict[str, str])
def add_secrets(
    hook_id: str,
    body: Secrets,
    _: Annotated[Caller, Depends(require("update:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> dict[str, str]:
    return _change_secrets(
        found, hook_id, lambda session: hook_secrets.add(session, found.master_key, hook_id, body)
    )


@router.patch("/{hook_id}/secrets", response_model=dict[str, str])
def update_secrets(
    hook_id: str,
    body: Secrets,
    _: Annotated[Caller, Depends(require("update:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> dict[str, str]:
    return _change_secrets(
        found,
        hook_id,
        lambda session: hook_secrets.update(session, found.master_key, hook_id, body),
    )


@router.delete("/{hook_id}/secrets", status_code=204)
def delete_secrets(
    hook_id: str,
    body: Annotated[list[str], Body(min_length=1, max_length=hook_secrets.MAX_SECRETS)],
    _: Annotated[Caller, Depends(require("update:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    _change_secrets(found, hook_id, lambda session: hook_secrets.remove(session, hook_id, body))
    return Response(status_code=204)


@router.get("/{hook_id}/logs", response_model=list[InvocationOut] | dict[str, Any])
def list_logs(
    hook_id: str,
    _: Annotated[Caller, Depends(require("read:logs"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
) -> Any:
    with found.database.session() as session:
        rows, total = store.list_invocations(
            session, hook_id, offset=page.offset, limit=page.per_page
        )
        items = [InvocationOut.model_validate(row) for row in rows]
    return page.shape("logs", items, total)


class RunnerRequest(RequestBody):
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    script: Script | None = None
    event: dict[str, Any] | None = None
    replay: str | None = Field(default=None, min_length=1, max_length=64)
    secrets: dict[str, Annotated[str, Field(max_length=hook_secrets.MAX_VALUE_BYTES)]] | None = (
        Field(default=None, max_length=hook_secrets.MAX_SECRETS)
    )

    @model_validator(mode="after")
    def _one_of_each(self) -> RunnerRequest:
        if self.version is not None and self.script is not None:
            raise ValueError("send version or script, not both")
        if self.event is not None and self.replay is not None:
            raise ValueError("send event or replay, not both")
        return self


class RunnerError(BaseModel):
    kind: str
    message: str
    type: str | None = None
    traceback: list[str] | None = None
    line: int | None = None


class RunnerReport(BaseModel):
    invocation_id: str
    version: int | None = Field(description="null for unsaved code")
    outcome: str
    result: Any
    error: RunnerError | None
    console: list[dict[str, Any]]
    duration_ms: float
    truncated: bool


@router.post("/{hook_id}/test", response_model=RunnerReport)
async def run_hook_test(
    hook_id: str,
    body: RunnerRequest,
    _: Annotated[Caller, Depends(require("update:hooks"))],
    found: Annotated[Services, Depends(services)],
) -> RunnerReport:
    """Run the hook — deployed, a stored version, or unsaved code — on an event (the
    point's sample, one given, or a captured one), in the sandbox; nothing is saved
    but the run's log record, marked as a test."""
    if body.secrets:
        hook_secrets.check(body.secrets)
    report = await found.runner.run(
        hook_id,
        Trial(
            version=body.version,
            script=body.script,
            event=body.event,
            replay=body.replay,
            secrets=body.secrets,
        ),
    )
    return RunnerReport.model_validate(report, from_attributes=True)


class DeliveryOut(Out):
    id: str
    event_id: str
    hook_id: str
    point: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@router.get("/{hook_id}/deliveries", response_model=list[DeliveryOut] | dict[str, Any])
def list_deliveries(
    hook_id: str,
    _: Annotated[Caller, Depends(require("read:logs"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
    status: Literal["pending", "delivered", "failed", "cancelled"] | None = None,
) -> Any:
    """The queued runs of an asynchronous point's hook, newest first."""
    with found.database.session() as session:
        store.get_hook(session, hook_id)
        rows, total = deliveries.list_deliveries(
            session, hook_id, status=status, offset=page.offset, limit=page.per_page
        )
        items = [DeliveryOut.model_validate(deliveries.delivery_view(row)) for row in rows]
    return page.shape("deliveries", items, total)


def _change_secrets(found: Services, hook_id: str, change: Any) -> dict[str, str]:
    with found.database.session() as session:
        store.get_hook(session, hook_id)
        change(session)
        names = hook_secrets.names(session, hook_id)
    found.lifecycle.secrets_changed()
    return dict.fromkeys(names, hook_secrets.HIDDEN)
