"""Hooks as code: ``export DIR`` writes every hook as ``hooks/NAME.json`` and its
code, ``hooks/NAME.py`` (Python) or ``hooks/NAME.js`` (JavaScript); ``deploy DIR``
makes the server match the directory.

The JSON holds a hook's settings, its language (``runtime``), its declared
dependencies when it has any, and the names of its secrets, each mapped to the
environment variable its value comes from (``{"SLACK_URL": "$SLACK_URL"}``),
never a value. A deploy checks the whole directory before it changes anything,
prints its plan, then applies it; a second deploy of the same directory
changes nothing. Secret values cannot be read back, so a deploy sets the
secrets a hook lacks and leaves existing values alone unless
``--update-secrets`` is given; ``--prune`` removes hooks (and secrets) that
the directory does not declare.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.progress import Progress

from authhooks.cli.common import ProfileOption, connect, read_text
from authhooks.cli.hooks import create_hook
from authhooks.cli.output import CliError, ExitCode, note, out
from authhooks.cli.points import ServerPoints
from authhooks.cli.remote import Remote
from authhooks.cli.secrets import put_secrets
from authhooks.hooks import limits
from authhooks.hooks.code_format import (
    LANGUAGE_NAMES,
    RUNTIME_BY_SUFFIX,
    SETTINGS,
    SUFFIX_BY_RUNTIME,
    FormatError,
    HookFile,
    is_hook_name,
    read_hooks,
)


@dataclass(frozen=True)
class LocalHook:
    name: str
    script: str
    runtime: str  # "python" or "node", as the code file's suffix says
    settings: HookFile
    secret_values: dict[str, str]

    def fields(self) -> dict[str, Any]:
        """What the API is sent to create the hook: settings, code, language and,
        when declared, dependencies."""
        fields = self.settings.model_dump(exclude={"secrets", "runtime", "dependencies"})
        fields.update(name=self.name, script=self.script, runtime=self.runtime)
        if self.settings.dependencies is not None:
            fields["dependencies"] = self.settings.dependencies
        if fields.get("schedule") is None:  # the schedule point's hooks only
            fields.pop("schedule", None)
        return fields


@dataclass
class Change:
    name: str
    kind: Literal["create", "update", "delete"]
    details: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)  # what to PATCH (update)
    secrets: dict[str, str] = field(default_factory=dict)  # to set
    drop_secrets: list[str] = field(default_factory=list)
    local: LocalHook | None = None
    remote: dict[str, Any] | None = None


def read_directory(directory: Path, points: ServerPoints | None = None) -> list[LocalHook]:
    """Every hook the directory declares, each checked; the first problem stops it all.

    ``points`` tells a point the server declares from none at all; without it, only
    built-in points are known."""
    folder = directory / "hooks"
    if not folder.is_dir():
        raise CliError(f"{folder}: no such directory (a deploy reads DIR/hooks/NAME.json)")
    points = points or ServerPoints(None)
    names = [
        path.name
        for path in folder.iterdir()
        if path.suffix in (".json", *RUNTIME_BY_SUFFIX) and not path.is_dir()
    ]

    def read(name: str) -> str:
        try:
            return read_text(folder / name)
        except CliError as error:
            raise FormatError(error.message) from None

    try:
        declared = read_hooks(
            names, read, lambda name: str(folder / name) if name else str(folder), points.check
        )
    except FormatError as error:
        raise CliError(str(error)) from None
    found: list[LocalHook] = []
    for hook in declared:
        path = folder / hook.json_file
        values = {}
        for secret, reference in hook.settings.secrets.items():
            variable = reference[1:]
            if variable not in os.environ:
                raise CliError(f"{path}: secrets.{secret}: ${variable} is not set")
            if len(os.environ[variable].encode()) > limits.MAX_SECRET_BYTES:
                raise CliError(
                    f"{path}: secrets.{secret}: ${variable} exceeds {limits.MAX_SECRET_BYTES} bytes"
                )
            values[secret] = os.environ[variable]
        found.append(LocalHook(hook.name, hook.script, hook.runtime, hook.settings, values))
    return found


def normal_dependencies(value: Any) -> Any:
    """Dependencies in one shape, to compare: Actions' ``[{"name", "version"}]`` as
    Auth0 Hooks' ``{"name": "version"}``, versions as the server keeps them (npm
    reads ``=1.2.3`` and ``v1.2.3`` as ``1.2.3``); anything else as it is."""
    if isinstance(value, list) and all(
        isinstance(item, dict) and set(item) == {"name", "version"} for item in value
    ):
        value = {item["name"]: item["version"] for item in value}
    if isinstance(value, dict):
        return {
            name: _BARE_VERSION.sub("", version) if isinstance(version, str) else version
            for name, version in value.items()
        }
    return value if value is not None else {}


_BARE_VERSION = re.compile(r"^\s*[=v]+(?=\d)")


def plan(
    remote: Remote, local: list[LocalHook], *, prune: bool, update_secrets: bool
) -> list[Change]:
    existing = {hook["name"]: hook for hook in remote.hooks()}
    changes: list[Change] = []
    for hook in local:
        current = existing.get(hook.name)
        wanted = hook.settings.model_dump(exclude={"secrets", "runtime", "dependencies"})
        if current is None:
            changes.append(
                Change(
                    hook.name,
                    "create",
                    [
                        f"{wanted['triggerId']}, {LANGUAGE_NAMES[hook.runtime]}, "
                        + ("enabled" if wanted["enabled"] else "disabled")
                    ],
                    secrets=hook.secret_values,
                    local=hook,
                )
            )
            continue
        change = Change(hook.name, "update", local=hook, remote=current)
        if current["triggerId"] != wanted["triggerId"]:
            raise CliError(
                f"{hook.name}: it is a {current['triggerId']} hook on the server and a "
                f"{wanted['triggerId']} hook here; a hook cannot change its point (rename one)",
                ExitCode.FAILED,
            )
        # A server older than JavaScript hooks sends no runtime: its hooks are Python.
        current_runtime = current.get("runtime", "python")
        if current["script"] != hook.script or current_runtime != hook.runtime:
            change.body["script"] = hook.script
            change.body["runtime"] = hook.runtime
            change.details.append(f"code (new version after {current['version']})")
            if current_runtime != hook.runtime:
                change.details.append(
                    f"language {LANGUAGE_NAMES.get(current_runtime, current_runtime)} → "
                    f"{LANGUAGE_NAMES[hook.runtime]}"
                )
        dependencies = hook.settings.dependencies
        if dependencies is not None or "dependencies" in current:
            # Declared here, or held there: the directory says what the hook depends on.
            have = normal_dependencies(current.get("dependencies"))
            if normal_dependencies(dependencies) != have:
                change.body["dependencies"] = dependencies if dependencies is not None else {}
                change.details.append("dependencies")
        for setting in SETTINGS[1:]:
            if current[setting] != wanted[setting]:
                change.body[setting] = wanted[setting]
                change.details.append(f"{setting} {current[setting]!r} → {wanted[setting]!r}")
        if current.get("schedule") != wanted["schedule"]:
            change.body["schedule"] = wanted["schedule"]
            change.details.append(f"schedule {_cron(current)} → {_cron(wanted)}")
        names = set(remote.call("GET", f"/hooks/{current['id']}/secrets"))
        for secret, value in hook.secret_values.items():
            if secret not in names or update_secrets:
                change.secrets[secret] = value
        if change.secrets:
            change.details.append("secrets " + ", ".join(sorted(change.secrets)))
        if prune:
            change.drop_secrets = sorted(names - set(hook.secret_values))
            if change.drop_secrets:
                change.details.append("remove secrets " + ", ".join(change.drop_secrets))
        if change.details:
            changes.append(change)
    if prune:
        declared = {hook.name for hook in local}
        for name, current in sorted(existing.items()):
            if name not in declared:
                changes.append(Change(name, "delete", [current["triggerId"]], remote=current))
    return changes


def _cron(settings: dict[str, Any]) -> str:
    schedule = settings.get("schedule")
    if not isinstance(schedule, dict):
        return "none"
    return repr(f"{schedule.get('cron')} ({schedule.get('timezone')})")


def apply(remote: Remote, change: Change) -> None:
    if change.kind == "delete":
        assert change.remote is not None
        remote.call("DELETE", f"/hooks/{change.remote['id']}")
        return
    local = change.local
    assert local is not None
    if change.kind == "create":
        create_hook(remote, local.fields(), change.secrets)
        return
    assert change.remote is not None
    hook_id = change.remote["id"]
    # Secrets before code and enabling: the new code may need them from its first call.
    if change.secrets:
        put_secrets(remote, hook_id, change.secrets)
    if change.body:
        remote.call("PATCH", f"/hooks/{hook_id}", json=change.body)
    if change.drop_secrets:
        remote.call("DELETE", f"/hooks/{hook_id}/secrets", json=change.drop_secrets)


def show_plan(changes: list[Change], unchanged: int) -> None:
    marks = {"create": "[green]+[/green]", "update": "[yellow]~[/yellow]", "delete": "[red]-[/red]"}
    for change in changes:
        out.print(f"{marks[change.kind]} {change.kind} [bold]{escape(change.name)}[/bold]")
        for detail in change.details:
            out.print(f"    {escape(detail)}")
    counts = {kind: sum(c.kind == kind for c in changes) for kind in ("create", "update", "delete")}
    summary = ", ".join(f"{count} to {kind}" for kind, count in counts.items() if count)
    out.print(f"plan: {summary or 'no changes'}; {unchanged} unchanged")


def deploy_directory(
    directory: Path, *, dry_run: bool, prune: bool, update_secrets: bool, profile: str | None
) -> None:
    # Everything is checked before anything changes (the server is asked only about
    # a point that is not built in).
    local = read_directory(directory, ServerPoints(profile))
    with connect(profile) as remote:
        changes = plan(remote, local, prune=prune, update_secrets=update_secrets)
        touched = {change.name for change in changes}
        show_plan(changes, sum(hook.name not in touched for hook in local))
        if dry_run or not changes:
            return
        done = 0
        with Progress(console=out, transient=True) as progress:
            task = progress.add_task("deploying", total=len(changes))
            for change in changes:
                try:
                    apply(remote, change)
                except CliError as error:
                    raise CliError(
                        f"{change.kind} {change.name}: {error.message} ({done} of "
                        f"{len(changes)} changes were applied; fix it and deploy again)",
                        error.code,
                    ) from None
                done += 1
                progress.advance(task)
    note(f"deployed: {done} change(s) applied")


def export(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Where to write hooks/NAME.json and NAME.py or NAME.js.", show_default=False
        ),
    ],
    profile: ProfileOption = None,
) -> None:
    """Write every hook as DIR/hooks/NAME.json (secret names, never values) and its
    code: NAME.py for a Python hook, NAME.js for a JavaScript one.

    Example: authhooks export ./identity && git -C ./identity diff
    """
    folder = directory / "hooks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"{folder}: {error.strerror or error}") from None
    with connect(profile) as remote:
        hooks = remote.hooks()
        files: dict[str, str] = {}
        for hook in hooks:
            # Names become file names: whatever the server sends, nothing is written
            # outside DIR/hooks, and nothing at all if one name would be.
            if not is_hook_name(hook["name"]):
                raise CliError(
                    f"the server has a hook named {hook['name']!r}, which is not a hook name "
                    "(letters, digits, - and _); nothing was exported",
                    ExitCode.FAILED,
                )
            names = sorted(remote.call("GET", f"/hooks/{hook['id']}/secrets"))
            files.update(hook_files(hook, names))
    # The directory mirrors the server: a hook deleted there leaves no files behind
    # that a later deploy would bring back.
    stale = sorted(
        path
        for suffix in [*RUNTIME_BY_SUFFIX, ".json"]
        for path in folder.glob(f"*{suffix}")
        if path.name not in files
    )
    try:
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        for path in stale:
            path.unlink()
    except OSError as error:
        raise CliError(f"{folder}: {error.strerror or error}") from None
    note(
        f"exported {len(hooks)} hook(s) to {folder}"
        + (
            f"; removed {len(stale)} stale file(s): " + ", ".join(p.name for p in stale)
            if stale
            else ""
        )
    )


def hook_files(hook: dict[str, Any], secret_names: list[str]) -> dict[str, str]:
    """A hook as the files that declare it: NAME.json, and NAME.py or NAME.js."""
    runtime = hook.get("runtime") or "python"  # a server older than JavaScript hooks
    if runtime not in SUFFIX_BY_RUNTIME:
        raise CliError(
            f"hook {hook['name']!r} is in a language this CLI does not know ({runtime!r}); "
            "nothing was exported",
            ExitCode.FAILED,
        )
    document: dict[str, Any] = {"triggerId": hook["triggerId"], "runtime": runtime}
    document.update({setting: hook[setting] for setting in SETTINGS[1:]})
    if hook.get("dependencies"):
        document["dependencies"] = hook["dependencies"]
    if hook.get("schedule"):
        document["schedule"] = hook["schedule"]
    document["secrets"] = {name: f"${name}" for name in secret_names}
    return {
        hook["name"] + SUFFIX_BY_RUNTIME[runtime]: hook["script"],
        f"{hook['name']}.json": json.dumps(document, indent=2) + "\n",
    }
