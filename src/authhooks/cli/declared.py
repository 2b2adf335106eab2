"""``authhooks points``: the extensibility points; declaring, changing, deleting and
invoking the ones applications declare (docs/extend.md).

A spec is a JSON file, as ``POST /api/v2/points`` takes it: the server checks it
whole and says what is wrong. ``invoke`` prints what the point answered, and
exits 1 when a hook refused or failed, so that it works in scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from authhooks.cli.common import JsonOption, ProfileOption, connect, read_text
from authhooks.cli.output import CliError, ExitCode, note, out, print_json

app = typer.Typer(
    help="Points: list them; declare, change, delete and invoke your own (docs/extend.md).",
    no_args_is_help=True,
)

PointArgument = Annotated[str, typer.Argument(help="The point's id.", show_default=False)]
SpecArgument = Annotated[
    Path, typer.Argument(help="A JSON file: the point's spec.", show_default=False)
]
_SOURCES = {"server": "built in", "points_file": "points file", "api": "declared"}


def _json_file(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise CliError(f"{path}: not JSON: {error}") from None


def list_points(profile: ProfileOption = None, json_output: JsonOption = False) -> None:
    """List every point, built in or declared, with how many hooks each has.

    Example: authhooks points list
    """
    with connect(profile) as remote:
        listed = remote.every("/points", "points")
        hooks = remote.every("/hooks", "hooks")
    if json_output:
        print_json(listed)
        return
    counts: dict[str, int] = {}
    for hook in hooks:
        counts[hook["triggerId"]] = counts.get(hook["triggerId"], 0) + 1
    table = Table(box=None, pad_edge=False)
    for column in ("POINT", "KIND", "FROM", "HOOKS", "DESCRIPTION"):
        table.add_column(column)
    for point in listed:
        table.add_row(
            escape(point["id"]),
            "blocking" if point["blocking"] else "async",
            _SOURCES.get(point.get("source", ""), "?"),
            str(counts.get(point["id"], 0)),
            escape(point["description"]),
        )
    out.print(table)


def show(point: PointArgument, profile: ProfileOption = None) -> None:
    """Print a point as the server lists it (JSON): schemas, sample event, conventions.

    Example: authhooks points show price-quote
    """
    with connect(profile) as remote:
        print_json(remote.call("GET", f"/points/{point}"))


def declare(spec: SpecArgument, profile: ProfileOption = None) -> None:
    """Declare a point from a JSON spec file.

    Example: authhooks points declare price-quote.json
    """
    body = _json_file(spec)
    with connect(profile) as remote:
        created = remote.call("POST", "/points", json=body)
    note(
        f"declared {created['id']} ({'blocking' if created['blocking'] else 'async'}); "
        f"applications invoke it with the scope invoke:points:{created['id']}"
    )


def update(point: PointArgument, changes: SpecArgument, profile: ProfileOption = None) -> None:
    """Change a declared point: a JSON file of the keys to change (null removes one).

    Example: authhooks points update price-quote changes.json
    """
    body = _json_file(changes)
    with connect(profile) as remote:
        changed = remote.call("PATCH", f"/points/{point}", json=body)
    note(f"updated {point}")
    for mismatch in changed.get("mismatched_captures", []):
        note(
            f"[yellow]captured event {mismatch['invocation_id']} (hook {mismatch['hook_id']}) "
            f"no longer fits:[/yellow] {escape(mismatch['error'])}"
        )


def delete(
    point: PointArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Delete the point's hooks with it.")
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Delete a declared point (with --force, its hooks too).

    Example: authhooks points delete price-quote
    """
    with connect(profile) as remote:
        remote.call("DELETE", f"/points/{point}", params={"force": "true"} if force else None)
    note(f"deleted {point}")


def invoke(
    point: PointArgument,
    event: Annotated[
        str, typer.Argument(help="The event as JSON, or @FILE to read it from a file.")
    ] = "{}",
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Answer a retry with the same key only once."),
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Invoke a declared point with an event and print its answer; exit 1 when a hook
    refused or failed.

    Example: authhooks points invoke price-quote '{"sku": "A-1", "quantity": 3}'
    """
    text = read_text(Path(event[1:])) if event.startswith("@") else event
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"the event is not JSON: {error}") from None
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with connect(profile) as remote:
        response = remote.response(
            "POST", f"/points/{point}/invoke", json={"event": body}, headers=headers
        )
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code in (200, 202) and isinstance(answer, dict):
        print_json(answer)
        return
    if isinstance(answer, dict) and "error_description" in answer:  # a hook refused or failed
        raise CliError(f"{answer['error']}: {answer['error_description']}", ExitCode.FAILED)
    if isinstance(answer, dict) and "message" in answer:
        details = "".join(
            f"\n  at {error['pointer'] or '/'}: {error['message']}"
            for error in answer.get("errors", [])
        )
        raise CliError(answer["message"] + details, ExitCode.FAILED)
    raise CliError(f"the server answered {response.status_code}", ExitCode.FAILED)


app.command("list")(list_points)
app.command()(show)
app.command()(declare)
app.command()(update)
app.command()(delete)
app.command()(invoke)
