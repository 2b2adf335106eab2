"""``authhooks test``: run a hook through the server's runner, and fail like a test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from authhooks.cli.common import (
    JsonOption,
    ProfileOption,
    SecretOption,
    connect,
    parse_assignments,
    read_text,
)
from authhooks.cli.hooks import NameArgument
from authhooks.cli.output import CliError, ExitCode, out, print_json


def run_test(
    name: NameArgument,
    event: Annotated[
        Path | None, typer.Option("--event", "-e", help="The event, as a JSON file.")
    ] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="The point's sample event (the default).")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Run this code instead, without saving it."),
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="Run this stored version.")
    ] = None,
    secret: SecretOption = None,
    replay: Annotated[
        str | None,
        typer.Option("--replay", help="Run on the captured event of this invocation id."),
    ] = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a hook in the sandbox: result, console lines, duration; exit 1 if it fails.

    Runs the deployed version on the point's sample event unless told otherwise.
    Secrets given here override the hook's for this run only. The exit code makes
    it a test step in CI.

    Example: authhooks test add-claims --file add-claims.py --secret API_KEY=test
    """
    if sum(option is not None for option in (event, replay)) + sample > 1:
        raise CliError("give one of --event, --sample and --replay")
    if file is not None and version is not None:
        raise CliError("give --file or --version, not both")
    body: dict[str, Any] = {}
    if event is not None:
        try:
            body["event"] = json.loads(read_text(event))
        except ValueError as error:
            raise CliError(f"{event}: not JSON ({error})") from None
        if not isinstance(body["event"], dict):
            raise CliError(f"{event}: the event must be a JSON object")
    if replay is not None:
        body["replay"] = replay
    if file is not None:
        body["script"] = read_text(file)
    if version is not None:
        body["version"] = version
    overrides = parse_assignments(secret)
    if overrides:
        body["secrets"] = overrides
    with connect(profile) as remote:
        hook = remote.hook(name)
        report = remote.call("POST", f"/hooks/{hook['id']}/test", json=body)
    if json_output:
        print_json(report)
    else:
        show_report(report)
    if report["outcome"] != "ok":
        raise typer.Exit(ExitCode.FAILED)


def show_report(report: dict[str, Any]) -> None:
    code = "unsaved code" if report["version"] is None else f"version {report['version']}"
    if report["outcome"] == "ok":
        out.print(f"[green]✔ ok[/green]  {report['duration_ms']:.1f} ms, {code}")
    else:
        out.print(
            f"[red]✘ {escape(report['outcome'])}[/red]  {report['duration_ms']:.1f} ms, {code}"
        )
    if report["console"]:
        out.print("[bold]console[/bold]")
        for line in report["console"]:
            show_line(line, indent="  ")
        if report.get("truncated"):
            out.print("  [yellow]… more lines were dropped (the cap is 200)[/yellow]")
    error = report.get("error")
    if error:
        where = f" (line {error['line']})" if error.get("line") else ""
        kind = error.get("type") or error["kind"]
        out.print(f"[bold red]error[/bold red] {escape(kind)}: {escape(error['message'])}{where}")
        for line in error.get("traceback") or []:
            out.print(f"  {escape(line)}", style="red")
    if report["outcome"] == "ok":
        out.print("[bold]result[/bold]")
        out.print_json(data=report["result"])


def show_line(line: dict[str, Any], indent: str = "") -> None:
    stream = line.get("stream", "stdout")
    style = "yellow" if stream == "stderr" else "dim" if stream == "authhooks" else ""
    text = escape(str(line.get("text", "")))
    out.print(f"{indent}{text}", style=style or None)
