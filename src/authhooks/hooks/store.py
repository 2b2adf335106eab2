"""Hooks, their immutable versions and the flows they form.

A version is numbered 1..n per hook and never changes; saving code makes a
new version and deploys it; deploying points the hook at any version
(rollback or roll forward). A point's flow is its enabled hooks ordered by
``order``, ties by creation.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authhooks.egress.rules import Rule, parse_rule
from authhooks.errors import Conflict, InvalidInput, NotFound
from authhooks.hooks import limits, schedules
from authhooks.hooks import secrets as hook_secrets
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import bump_generation, count, page
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)

NAME = limits.HOOK_NAME
MAX_SCRIPT_BYTES = limits.MAX_SCRIPT_BYTES


@dataclass(frozen=True)
class FlowHook:
    """One enabled hook of a flow, with what an invocation needs."""

    id: str
    name: str
    version: int
    script: str
    timeout_ms: int
    on_error: str
    secrets: dict[str, str]
    capture_events: bool = False
    egress: tuple[Rule, ...] = ()  # what it may reach through the egress broker
    draft: str = ""  # version 0 only: tells one unsaved run's workers from another's
    runtime: str = "python"  # the version's language: "python" or "node"
    dependencies: dict[str, str] = field(default_factory=dict)  # declared, exact versions
    installed: str | None = None  # the key of its installed set in the dependency store

    @property
    def code(self) -> Code:
        return Code(self.script, self.runtime, dict(self.dependencies), installed=self.installed)

    @property
    def key(self) -> str:
        """The runtime's key for this hook version: unique, never reused. Version 0 is
        unsaved code (the runner's drafts), one key per run."""
        if self.version == 0:
            return f"{self.id}:draft:{self.draft}"
        return version_key(self.id, self.version)


def version_key(hook_id: str, number: int) -> str:
    """The runtime's key for version ``number`` of a hook: its pool of workers."""
    return f"{hook_id}:{number}"


@dataclass(frozen=True)
class Code:
    """What a version is made of: its script, the language it is written in, and
    its packages: declared (name -> exact version), resolved (name, version and
    integrity of every package installed, theirs included) and the installed set's
    key in the dependency store (hooks/dependencies.py)."""

    script: str
    runtime: str = "python"
    dependencies: dict[str, str] = field(default_factory=dict)
    resolved: list[dict[str, Any]] | None = None
    installed: str | None = None

    def version(self, hook_id: str, number: int, author: str) -> models.HookVersion:
        return models.HookVersion(
            hook_id=hook_id,
            number=number,
            script=self.script,
            created_at=utcnow(),
            author=author,
            runtime=self.runtime,
            dependencies=dict(self.dependencies),
            resolved=self.resolved,
            installed=self.installed,
        )


def code_of(version: models.HookVersion) -> Code:
    return Code(
        script=version.script,
        runtime=version.runtime,
        dependencies=dict(version.dependencies),
        resolved=version.resolved,
        installed=version.installed,
    )


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise InvalidInput(
            f"name {name!r} must be 1 to 64 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )


def new_hook_id() -> str:
    return "01" + secrets.token_hex(15)


def check_name_free(session: Session, name: str, hook_id: str | None = None) -> None:
    check_name(name)
    query = select(models.Hook.id).where(models.Hook.name == name)
    if hook_id is not None:
        query = query.where(models.Hook.id != hook_id)
    if session.scalar(query):
        raise Conflict(f"a hook named {name!r} exists already")


def create_hook(
    session: Session, *, hook_id: str, author: str, code: Code, **fields: Any
) -> models.Hook:
    """Store a hook with its first version deployed, and its schedule when it has
    one (``schedule``: the schedule point's hooks); Conflict on a taken name."""
    schedule = fields.pop("schedule", None)
    check_name_free(session, fields["name"])
    now = utcnow()
    hook = models.Hook(
        id=hook_id,
        version=1,
        last_version=1,
        runtime=code.runtime,
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(hook)
    session.add(code.version(hook.id, 1, author))
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a hook named {fields['name']!r} exists already") from None
    schedules.save(session, hook.id, hook.trigger_id, schedule)
    bump_generation(session)
    return hook


def check_editable(session: Session, hook: models.Hook) -> None:
    """Conflict when a git source keeps the hook: its repository is where it changes."""
    if hook.source_id is None:
        return
    source = session.get(models.GitSource, hook.source_id)
    name = source.name if source is not None else hook.source_id
    raise Conflict(
        f"hook {hook.name!r} is managed by git source {name!r} ({hook.source_id}): change it "
        "in its repository, or delete the source (its hooks stay) to change it here; "
        "its secrets can be set"
    )


def get_hook(session: Session, hook_id: str) -> models.Hook:
    hook = session.get(models.Hook, hook_id)
    if hook is None:
        raise NotFound(f"no hook with id {hook_id!r}")
    return hook


def list_hooks(
    session: Session,
    *,
    offset: int,
    limit: int,
    trigger_id: str | None = None,
    enabled: bool | None = None,
) -> tuple[list[tuple[models.Hook, Code]], int]:
    """A page of hooks, each with its current code, and how many match. One
    statement reads both: a hook deleted meanwhile is left out of the page
    rather than failing it, as reading each version after the hooks would."""
    current = (models.HookVersion.hook_id == models.Hook.id) & (
        models.HookVersion.number == models.Hook.version
    )
    query = select(models.Hook, models.HookVersion).join(models.HookVersion, current)
    if trigger_id is not None:
        query = query.where(models.Hook.trigger_id == trigger_id)
    if enabled is not None:
        query = query.where(models.Hook.enabled.is_(enabled))
    ordered = query.order_by(models.Hook.trigger_id, models.Hook.order, models.Hook.created_at)
    rows = session.execute(ordered.offset(offset).limit(limit)).tuples()
    return [(hook, code_of(version)) for hook, version in rows], count(session, ordered)


def current_code(session: Session, hook: models.Hook) -> Code:
    return code_of(get_version(session, hook.id, hook.version))


def add_version(session: Session, hook: models.Hook, code: Code, author: str) -> int:
    """A new immutable version, numbered atomically so that concurrent saves never collide."""
    number = session.execute(
        update(models.Hook)
        .where(models.Hook.id == hook.id)
        .values(last_version=models.Hook.last_version + 1)
        .returning(models.Hook.last_version)
    ).scalar_one()
    session.add(code.version(hook.id, int(number), author))
    return int(number)


def update_hook(session: Session, hook_id: str, changes: dict[str, Any]) -> models.Hook:
    """Change a hook's fields; ``schedule`` (the schedule point's hooks) replaces its
    schedule in the same transaction."""
    hook = get_hook(session, hook_id)
    changes = dict(changes)
    rescheduled = "schedule" in changes and schedules.save(
        session, hook.id, hook.trigger_id, changes.pop("schedule")
    )
    if changes.get("enabled") and not hook.enabled:
        schedules.restart(session, hook.id)
    if not rescheduled and all(getattr(hook, name) == value for name, value in changes.items()):
        return hook  # as it is: no change, and no new updated_at
    if "name" in changes:
        check_name_free(session, changes["name"], hook_id)
    for name, value in changes.items():
        setattr(hook, name, value)
    if "version" in changes:  # the hook is in the language its live version is
        hook.runtime = get_version(session, hook_id, hook.version).runtime
    hook.updated_at = utcnow()
    bump_generation(session)
    return hook


def disable_others(session: Session, hook: models.Hook) -> None:
    """Auth0's habit: one enabled hook per point."""
    session.execute(
        update(models.Hook)
        .where(models.Hook.trigger_id == hook.trigger_id, models.Hook.id != hook.id)
        .values(enabled=False, updated_at=utcnow())
    )


def delete_hook(session: Session, hook_id: str) -> None:
    session.delete(get_hook(session, hook_id))
    bump_generation(session)


def installed_keys(session: Session) -> set[str]:
    """The dependency store's entries some version uses (hooks/dependencies.py)."""
    found = session.scalars(
        select(models.HookVersion.installed).where(models.HookVersion.installed.is_not(None))
    )
    return {key for key in found if key is not None}


def get_version(session: Session, hook_id: str, number: int) -> models.HookVersion:
    version = session.get(models.HookVersion, (hook_id, number))
    if version is None:
        raise NotFound(f"hook {hook_id!r} has no version {number}")
    return version


def list_versions(session: Session, hook_id: str) -> list[models.HookVersion]:
    get_hook(session, hook_id)
    return list(
        session.scalars(
            select(models.HookVersion)
            .where(models.HookVersion.hook_id == hook_id)
            .order_by(models.HookVersion.number.desc())
        )
    )


def deploy(session: Session, hook_id: str, number: int) -> models.Hook:
    hook = get_hook(session, hook_id)
    hook.runtime = get_version(session, hook_id, number).runtime
    hook.version = number
    hook.updated_at = utcnow()
    bump_generation(session)
    return hook


def load_flows(session: Session, master_key: MasterKey) -> dict[str, tuple[FlowHook, ...]]:
    """Every point's enabled hooks in flow order, with deployed code and secrets
    (points without enabled hooks are left out)."""
    rows = session.execute(
        select(models.Hook, models.HookVersion)
        .join(
            models.HookVersion,
            (models.HookVersion.hook_id == models.Hook.id)
            & (models.HookVersion.number == models.Hook.version),
        )
        .where(models.Hook.enabled.is_(True))
        .order_by(models.Hook.trigger_id, models.Hook.order, models.Hook.created_at, models.Hook.id)
    ).all()
    flows: dict[str, list[FlowHook]] = {}
    for hook, version in rows:
        flows.setdefault(hook.trigger_id, []).append(
            FlowHook(
                id=hook.id,
                name=hook.name,
                version=hook.version,
                script=version.script,
                runtime=version.runtime,
                dependencies=dict(version.dependencies),
                installed=version.installed,
                timeout_ms=hook.timeout_ms,
                on_error=hook.on_error,
                secrets=hook_secrets.values(session, master_key, hook.id),
                capture_events=hook.capture_events,
                egress=_egress_rules(hook.name, hook.egress),
            )
        )
    return {point: tuple(hooks) for point, hooks in flows.items()}


def list_invocations(
    session: Session, hook_id: str, *, offset: int, limit: int
) -> tuple[list[models.HookInvocation], int]:
    get_hook(session, hook_id)
    query = (
        select(models.HookInvocation)
        .where(models.HookInvocation.hook_id == hook_id)
        .order_by(models.HookInvocation.started_at.desc())
    )
    return page(session, query, offset, limit)


def _egress_rules(hook_name: str, entries: list[str]) -> tuple[Rule, ...]:
    """A hook's stored allowlist; an entry today's rules refuse is left out, not fatal."""
    found = []
    for text in entries:
        try:
            found.append(parse_rule(text))
        except ValueError as error:
            log.warning("hook %s: egress entry %r is ignored: %s", hook_name, text, error)
    return tuple(found)
