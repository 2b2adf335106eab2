"""The hook author's commands on hooks: scaffold (a point's template, in Auth0's
Hooks or Actions convention, ``--convention``, in Python or JavaScript,
``--lang``), create, ls, show, update, enable, disable, order, edit, rm, versions
and diff. ``deploy NAME --version N`` (cli/main.py, which also deploys
directories) calls ``deploy_version``.

A code file's suffix says its language (``.js``: JavaScript, ``.py``: Python), and
``create`` and ``update`` send it as the hook's ``runtime``; with another suffix
the server infers it from the code, as it does for Auth0's clients."""

from __future__ import annotations

import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from authhooks.cli.common import (
    DependencyOption,
    JsonOption,
    ProfileOption,
    SecretOption,
    connect,
    parse_assignments,
    parse_dependencies,
    read_env_file,
    read_text,
)
from authhooks.cli.output import CliError, ExitCode, note, out, print_json
from authhooks.cli.points import (
    LANGUAGE_NAMES,
    SUFFIX_BY_RUNTIME,
    Convention,
    Language,
    known_point,
    runtime_of_file,
    template,
)
from authhooks.cli.remote import Remote, unknown_hook
from authhooks.points.registry import POINTS

PointOption = Annotated[
    str,
    typer.Option(
        "--trigger",
        "-t",
        help="The extensibility point: "
        + ", ".join(POINTS)
        + ", or one the server declares (GET /api/v2/points).",
        show_default=False,
    ),
]
NameArgument = Annotated[str, typer.Argument(help="The hook's name.", show_default=False)]
ScheduleOption = Annotated[
    str | None,
    typer.Option(
        "--schedule",
        help="When a hook of point schedule runs: a cron expression of 5 fields, or 6 "
        "(the sixth is seconds), as '*/5 * * * *'.",
        show_default=False,
    ),
]
TimezoneOption = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        help="The IANA time zone --schedule is read in (default UTC).",
        show_default=False,
    ),
]


def scaffold(
    trigger: PointOption,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    convention: Annotated[
        Convention,
        typer.Option(
            "--convention",
            "-c",
            help="Auth0 Hooks (def credentials_exchange(client, ...); in JavaScript, "
            "module.exports = function (client, ..., cb)) or Actions "
            "(def on_execute_credentials_exchange(event, api); in JavaScript, "
            "exports.onExecuteCredentialsExchange = async (event, api) => ...).",
        ),
    ] = Convention.hooks,
    lang: Annotated[
        Language | None,
        typer.Option(
            "--lang",
            "-l",
            help="The hook's language (default: js when --output ends in .js, else python).",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Print a new hook for a point: its signature, documented, with an example.

    Built-in points' templates come with this command and need no server; a point
    the server declares is looked up there (with --profile).

    Examples: authhooks scaffold -t credentials-exchange --convention actions -o add-claims.py;
    authhooks scaffold -t credentials-exchange --lang js -o add-claims.js
    """
    wanted = runtime_of_file(output) if output is not None else None
    language = lang or (Language.js if wanted == "node" else Language.python)
    if output is not None and wanted is not None and wanted != language.runtime:
        raise CliError(
            f"{output}: {LANGUAGE_NAMES[language.runtime]} code in a {output.suffix} file "
            f"would be read as {LANGUAGE_NAMES[wanted]}; name it NAME{language.suffix}"
        )
    code = template(trigger, convention, language, profile)
    if output is None:
        sys.stdout.write(code)
        return
    if output.exists() and not force:
        raise CliError(f"{output} exists; give --force to overwrite it")
    try:
        output.write_text(code)
    except OSError as error:
        raise CliError(f"{output}: {error.strerror or error}") from None
    note(
        f"wrote the {trigger} template ({LANGUAGE_NAMES[language.runtime]}, "
        f"{convention.value}) to {output}"
    )


def create(
    trigger: PointOption,
    name: Annotated[str, typer.Option("--name", "-n", help="A unique, URL-safe name.")],
    file: Annotated[
        Path,
        typer.Argument(
            help="The hook's code: NAME.py (Python) or NAME.js (JavaScript).",
            show_default=False,
        ),
    ],
    secret: SecretOption = None,
    secrets_file: Annotated[
        Path | None, typer.Option("--secrets-file", help="Secrets from a .env file.")
    ] = None,
    enable: Annotated[bool, typer.Option("--enable", help="Put it in its point's flow.")] = False,
    order: Annotated[int, typer.Option(help="Its place in the flow (lower runs first).")] = 0,
    timeout_ms: Annotated[int, typer.Option(help="Its time limit per call.")] = 5000,
    on_error: Annotated[
        str, typer.Option(help="fail: refuse the request when it fails; continue: skip it.")
    ] = "fail",
    egress: Annotated[
        list[str] | None,
        typer.Option(help="A host it may call, as HOST[:PORT] (repeatable).", show_default=False),
    ] = None,
    capture_events: Annotated[
        bool,
        typer.Option("--capture-events", help="Keep its events (encrypted) for `test --replay`."),
    ] = False,
    dependency: DependencyOption = None,
    schedule: ScheduleOption = None,
    timezone: TimezoneOption = None,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up", help="With --schedule: run once at start for ticks missed while down."
        ),
    ] = False,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a hook from a file (disabled unless --enable), with its secrets.

    The file's suffix gives the hook's language: .js is JavaScript, .py Python.
    A hook of point schedule needs --schedule.

    Examples: authhooks create -t credentials-exchange --name add-claims \\
    --secret API_KEY=k-123 --enable add-claims.js;
    authhooks create -t schedule --name nightly --schedule '30 2 * * *' \\
    --timezone Europe/Paris --enable nightly.py
    """
    if schedule is None and (timezone is not None or catch_up):
        raise CliError("--timezone and --catch-up go with --schedule")
    script = read_text(file)
    secrets = read_env_file(secrets_file) if secrets_file else {}
    secrets.update(parse_assignments(secret))
    with connect(profile) as remote:
        hook = create_hook(
            remote,
            {
                "name": name,
                "script": script,
                **runtime_field(file),
                "triggerId": known_point(trigger, remote),
                "enabled": enable,
                "order": order,
                "timeout_ms": timeout_ms,
                "on_error": on_error,
                "egress": egress or [],
                "capture_events": capture_events,
                "dependencies": parse_dependencies(dependency),
                **_schedule_field(schedule, timezone, catch_up or None),
            },
            secrets,
        )
    if json_output:
        print_json(hook)
        return
    state = "enabled" if hook["enabled"] else "disabled"
    note(
        f"created hook {escape(name)} ({hook['id']}) for {trigger}, "
        f"{LANGUAGE_NAMES.get(hook.get('runtime', ''), 'Python')}, version "
        f"{hook['version']}, {state}" + (f", {len(secrets)} secret(s)" if secrets else "")
    )


def _schedule_field(
    cron: str | None, timezone: str | None, catch_up: bool | None, current: Any = None
) -> dict[str, Any]:
    """``{"schedule": ...}`` from the options given, over ``current`` (the hook's); or
    nothing when none is given."""
    if cron is None and timezone is None and catch_up is None:
        return {}
    schedule: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
    given = {"cron": cron, "timezone": timezone, "catch_up": catch_up}
    schedule.update({key: value for key, value in given.items() if value is not None})
    return {"schedule": schedule}


def runtime_field(file: Path) -> dict[str, str]:
    """``{"runtime": ...}`` as the file's suffix says, or nothing for the server to infer."""
    runtime = runtime_of_file(file)
    return {"runtime": runtime} if runtime else {}


def create_hook(remote: Remote, fields: dict[str, Any], secrets: dict[str, str]) -> Any:
    """Create a hook, add its secrets, then enable it if asked: it never runs without
    them. All or nothing: if a step fails, the hook is deleted again."""
    hook = remote.call("POST", "/hooks", json={**fields, "enabled": False})
    try:
        if secrets:
            remote.call("POST", f"/hooks/{hook['id']}/secrets", json=secrets)
        if fields.get("enabled"):
            hook = remote.call("PATCH", f"/hooks/{hook['id']}", json={"enabled": True})
    except BaseException as failure:
        try:
            remote.call("DELETE", f"/hooks/{hook['id']}")
        except Exception:
            raise CliError(
                f"{_message(failure)}; and hook {fields['name']!r} could not be deleted "
                "again: it is left disabled",
                ExitCode.FAILED,
            ) from None
        raise
    return hook


def _message(failure: BaseException) -> str:
    return failure.message if isinstance(failure, CliError) else "interrupted"


def ls(
    trigger: Annotated[
        str | None, typer.Option("--trigger", "-t", help="Only this point's hooks.")
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", "-a", help="Disabled hooks too.")] = False,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """List hooks by point, in flow order (enabled ones unless --all).

    Example: authhooks ls -t credentials-exchange --all
    """
    with connect(profile) as remote:
        hooks = remote.hooks(known_point(trigger, remote) if trigger else None)
    hooks = [hook for hook in hooks if show_all or hook["enabled"]]
    hooks.sort(key=flow_order)
    if json_output:
        print_json([{k: v for k, v in hook.items() if k != "script"} for hook in hooks])
        return
    if not hooks:
        note("no hooks" + ("" if show_all else " enabled (--all lists disabled ones too)"))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("POINT", "ORDER", "NAME", "ENABLED", "VERSION", "LANGUAGE"):
        table.add_column(column)
    table.add_column("ID", no_wrap=True, min_width=32)
    for hook in hooks:
        table.add_row(
            hook["triggerId"],
            str(hook["order"]),
            escape(hook["name"]),
            "[green]yes[/green]" if hook["enabled"] else "[dim]no[/dim]",
            str(hook["version"]),
            language_of(hook),
            hook["id"],
        )
    out.print(table)


def language_of(hook: dict[str, Any]) -> str:
    runtime = str(hook.get("runtime") or "python")  # a server older than JavaScript hooks
    return LANGUAGE_NAMES.get(runtime, runtime)


def flow_order(hook: dict[str, Any]) -> tuple[int, int, str]:
    """Points in their declared order; within one, the order its flow runs in."""
    points = list(POINTS)
    place = points.index(hook["triggerId"]) if hook["triggerId"] in points else len(points)
    return place, hook["order"], hook["created_at"]


def show(
    name: NameArgument, profile: ProfileOption = None, json_output: JsonOption = False
) -> None:
    """Show a hook's settings and its deployed code.

    Example: authhooks show add-claims
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        secrets = remote.call("GET", f"/hooks/{hook['id']}/secrets")
    if json_output:
        print_json({**hook, "secrets": sorted(secrets)})
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    dependencies = hook.get("dependencies")
    for label, value in [
        ("name", hook["name"]),
        ("id", hook["id"]),
        ("point", hook["triggerId"]),
        ("language", language_of(hook)),
        ("enabled", "yes" if hook["enabled"] else "no"),
        ("order", hook["order"]),
        ("version", hook["version"]),
        ("timeout", f"{hook['timeout_ms']} ms"),
        ("on error", hook["on_error"]),
        ("egress", ", ".join(hook["egress"]) or "none"),
        ("captures events", "yes" if hook["capture_events"] else "no"),
        *([("schedule", _schedule_text(hook["schedule"]))] if hook.get("schedule") else []),
        ("secrets", ", ".join(sorted(secrets)) or "none"),
        *(
            [("dependencies", _dependencies(dependencies, hook.get("runtime")))]
            if dependencies
            else []
        ),
        ("updated", hook["updated_at"]),
    ]:
        table.add_row(f"[bold]{label}[/bold]", escape(str(value)))
    out.print(table)
    out.print()
    lexer = "javascript" if hook.get("runtime") == "node" else "python"
    out.print(Syntax(hook["script"], lexer, line_numbers=True, theme="ansi_dark"))


def _schedule_text(schedule: dict[str, Any]) -> str:
    """``*/5 * * * * (Europe/Paris), catching up``."""
    text = f"{schedule.get('cron')} ({schedule.get('timezone')})"
    return text + (", catching up missed ticks" if schedule.get("catch_up") else "")


def _dependencies(declared: Any, runtime: str | None) -> str:
    """``{"lodash": "4.17.21"}`` (Auth0 Hooks) or ``[{"name", "version"}]`` (Actions),
    as its package manager writes them: ``lodash@4.17.21``, ``python-slugify==8.0.4``."""
    at = "==" if runtime == "python" else "@"
    if isinstance(declared, dict):
        pairs = [f"{name}{at}{version}" for name, version in declared.items()]
    elif isinstance(declared, list):
        pairs = [
            f"{item.get('name')}{at}{item.get('version')}" if isinstance(item, dict) else str(item)
            for item in declared
        ]
    else:
        return str(declared)
    return ", ".join(pairs)


def update(
    name: NameArgument,
    file: Annotated[
        Path | None,
        typer.Argument(help="The new code (optional with --schedule).", show_default=False),
    ] = None,
    dependency: DependencyOption = None,
    schedule: ScheduleOption = None,
    timezone: TimezoneOption = None,
    catch_up: Annotated[
        bool | None,
        typer.Option(
            "--catch-up/--no-catch-up",
            help="Run once at start for ticks missed while down (hooks of point schedule).",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Save a file as the hook's new version and deploy it (.js: JavaScript, .py: Python);
    or change a scheduled hook's schedule.

    With --dependency, the version's packages are exactly those given; without,
    it keeps the deployed version's. --schedule, --timezone and --catch-up change
    what they name of the schedule and keep the rest.

    Examples: authhooks update add-claims add-claims.py --dependency python-slugify==8.0.4;
    authhooks update nightly --schedule '0 3 * * *'
    """
    if file is None and dependency:
        raise CliError("--dependency goes with a file: the new version's code")
    with connect(profile) as remote:
        hook = remote.hook(name)
        rescheduled = _schedule_field(schedule, timezone, catch_up, hook.get("schedule"))
        if file is None and not rescheduled:
            raise CliError("give the new code's file, or the schedule to change (--schedule)")
        if file is None:
            updated = remote.call("PATCH", f"/hooks/{hook['id']}", json=rescheduled)
            note(f"{escape(hook['name'])}: runs on {escape(_schedule_text(updated['schedule']))}")
            return
        declared = parse_dependencies(dependency) if dependency else None
        save_code(remote, hook, read_text(file), runtime_field(file), declared, rescheduled)


def save_code(
    remote: Remote,
    hook: dict[str, Any],
    script: str,
    runtime: dict[str, str] | None = None,
    dependencies: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Save ``script`` (and ``dependencies``, when given) as a new version; ``runtime``
    is its language when the file says it, else the server infers it from the code.
    ``settings`` (a schedule, say) are changed in the same request."""
    unchanged = dependencies is None or _canonical(dependencies) == _canonical(
        hook.get("dependencies") or {}
    )
    if script == hook["script"] and unchanged:
        note(f"{escape(hook['name'])}: the code is unchanged; version {hook['version']} stays")
        if settings:
            remote.call("PATCH", f"/hooks/{hook['id']}", json=settings)
            note(f"{escape(hook['name'])}: changed {', '.join(sorted(settings))}")
        return
    body: dict[str, Any] = {"script": script, **(runtime or {}), **(settings or {})}
    if dependencies is not None:
        body["dependencies"] = dependencies
    updated = remote.call("PATCH", f"/hooks/{hook['id']}", json=body)
    note(f"{escape(hook['name'])}: saved and deployed version {updated['version']}")


def enable(
    name: NameArgument,
    exclusive: Annotated[
        bool, typer.Option("--exclusive", help="Disable the point's other hooks.")
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Put a hook in its point's flow.

    Example: authhooks enable add-claims --exclusive
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        body: dict[str, Any] = {"enabled": True}
        if exclusive:
            body["exclusive"] = True
        remote.call("PATCH", f"/hooks/{hook['id']}", json=body)
    note(
        f"enabled {escape(name)}" + (" (the point's other hooks are disabled)" if exclusive else "")
    )


def disable(name: NameArgument, profile: ProfileOption = None) -> None:
    """Take a hook out of its point's flow (it keeps its code and secrets).

    Example: authhooks disable add-claims
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        remote.call("PATCH", f"/hooks/{hook['id']}", json={"enabled": False})
    note(f"disabled {escape(name)}")


def order(
    trigger: Annotated[str, typer.Argument(help="The point.", show_default=False)],
    names: Annotated[
        list[str], typer.Argument(help="Hook names, first to run first.", show_default=False)
    ],
    profile: ProfileOption = None,
) -> None:
    """Set the order of a point's flow.

    The named hooks run first, in the order given, then the point's other hooks
    as they were.

    Example: authhooks order credentials-exchange check-tier add-claims
    """
    if len(set(names)) != len(names):
        raise CliError("a hook is named twice")
    with connect(profile) as remote:
        hooks = sorted(remote.hooks(known_point(trigger, remote)), key=flow_order)
        by_name = {hook["name"]: hook for hook in hooks}
        for name in names:
            if name not in by_name:
                everywhere = [hook["name"] for hook in remote.hooks()]
                if name in everywhere:
                    raise CliError(f"hook {name!r} is not a {trigger} hook", ExitCode.FAILED)
                raise CliError(unknown_hook(name, list(by_name)), ExitCode.FAILED)
        wanted = [by_name[name] for name in names]
        wanted += [hook for hook in hooks if hook["name"] not in names]
        for place, hook in enumerate(wanted, 1):
            if hook["order"] != place * 10:
                remote.call("PATCH", f"/hooks/{hook['id']}", json={"order": place * 10})
    note(f"{trigger}: " + " → ".join(escape(hook["name"]) for hook in wanted))


def edit(name: NameArgument, profile: ProfileOption = None) -> None:
    """Open the hook's code in $EDITOR; save a new version when it changed.

    Example: EDITOR=nano authhooks edit add-claims
    """
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with connect(profile) as remote:
        hook = remote.hook(name)
        # A fixed prefix: the name comes from the server, and a name such as
        # "../x" would put the file outside the temporary directory. The suffix is
        # the code's language, which editors go by.
        suffix = SUFFIX_BY_RUNTIME.get(str(hook.get("runtime")), ".py")
        with tempfile.NamedTemporaryFile(
            "w", suffix=suffix, prefix="authhooks-edit-", delete=False
        ) as file:
            file.write(hook["script"])
            path = Path(file.name)
        keep = False
        try:
            try:
                finished = subprocess.run([*shlex.split(editor), str(path)], check=False)
            except OSError as error:
                raise CliError(f"cannot run the editor {editor!r}: {error.strerror}") from None
            if finished.returncode != 0:
                raise CliError(f"the editor exited with {finished.returncode}; nothing saved")
            script = read_text(path)
            try:
                save_code(remote, hook, script)
            except CliError as error:
                keep = True
                raise CliError(
                    f"{error.message} (your edit is kept in {path})", error.code
                ) from None
        finally:
            if not keep:
                path.unlink(missing_ok=True)


def rm(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    profile: ProfileOption = None,
) -> None:
    """Delete a hook with its versions, secrets and logs.

    Example: authhooks rm add-claims --yes
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(f"not deleting {name!r} without --yes (no terminal to ask on)")
            typer.confirm(
                f"Delete hook {name!r} ({hook['triggerId']}, {hook['version']} version(s)), "
                "its secrets and its logs?",
                abort=True,
                err=True,
            )
        remote.call("DELETE", f"/hooks/{hook['id']}")
    note(f"deleted {escape(name)}")


def versions(
    name: NameArgument, profile: ProfileOption = None, json_output: JsonOption = False
) -> None:
    """List a hook's versions; the deployed one is marked.

    Example: authhooks versions add-claims
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        listed = remote.call("GET", f"/hooks/{hook['id']}/versions")
    if json_output:
        print_json(listed)
        return
    # The commit column only when a git source made one of them (docs/git.md).
    from_git = any(entry.get("commit") for entry in listed)
    table = Table(box=None, pad_edge=False)
    for column in ("VERSION", "CREATED", "AUTHOR", "DEPLOYED", *(["COMMIT"] if from_git else [])):
        table.add_column(column)
    for entry in listed:
        row = [
            str(entry["number"]),
            entry["created_at"],
            escape(str(entry["author"])),
            "[green]●[/green]" if entry["deployed"] else "",
        ]
        if from_git:
            row.append(escape(_commit_cell(entry.get("commit"), entry.get("commit_url"))))
        table.add_row(*row)
    out.print(table)


def _commit_cell(commit: str | None, url: str | None) -> str:
    """A version's commit, short, with its page when the repository's host has one."""
    if not commit:
        return ""
    return f"{commit[:12]} {url}" if url else commit[:12]


def deploy_version(remote: Remote, name: str, number: int) -> None:
    hook = remote.hook(name)
    remote.call("POST", f"/hooks/{hook['id']}/versions/{number}/deploy")
    note(f"{escape(name)}: version {number} deployed (was {hook['version']})")


def diff(
    name: NameArgument,
    first: Annotated[int | None, typer.Argument(help="From this version.")] = None,
    second: Annotated[int | None, typer.Argument(help="To this version.")] = None,
    profile: ProfileOption = None,
) -> None:
    """Show what changed between two versions of a hook.

    N M: from version N to M. N: from N to the deployed version. No numbers: from
    the version before the deployed one to the deployed one.

    Example: authhooks diff add-claims 2 3
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        deployed = hook["version"]
        if first is None:
            first, second = max(deployed - 1, 1), deployed
        elif second is None:
            second = deployed
        texts = [
            remote.call("GET", f"/hooks/{hook['id']}/versions/{number}")["script"]
            for number in (first, second)
        ]
    lines = list(
        difflib.unified_diff(
            texts[0].splitlines(keepends=True),
            texts[1].splitlines(keepends=True),
            fromfile=f"{name} v{first}",
            tofile=f"{name} v{second}",
        )
    )
    if not lines:
        note(f"versions {first} and {second} have the same code")
        return
    for line in lines:
        style = _diff_style(line)
        out.print(escape(line.rstrip("\n")), style=style)


def _diff_style(line: str) -> Literal["bold", "green", "red", "cyan", "none"]:
    if line.startswith(("+++", "---")):
        return "bold"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    if line.startswith("@@"):
        return "cyan"
    return "none"


def register(app: typer.Typer) -> None:
    for command in (scaffold, create, ls, show, update, enable, disable, order, edit, rm):
        app.command()(command)
    app.command()(versions)
    app.command()(diff)


def _canonical(declared: dict[str, str]) -> dict[str, str]:
    """Names and versions as the server keeps them, near enough to tell a change:
    PyPA's normalised names, versions without pip's ``==`` or npm's ``=``/``v``."""
    return {
        re.sub(r"[-_.]+", "-", name).lower(): version.strip().lstrip("=v").strip()
        for name, version in declared.items()
    }
