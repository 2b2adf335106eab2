"""``authhooks logs``: recent invocations, or the live stream (``--follow``), each
with its console lines under it; a dropped connection is resumed where it stopped,
a stream whose access was taken away is not."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape

from authhooks.cli.common import JsonOption, ProfileOption, connect
from authhooks.cli.output import CliError, ExitCode, note, out, print_json
from authhooks.cli.points import known_point
from authhooks.cli.remote import Remote
from authhooks.cli.testing import show_line

_OUTCOME_STYLES = {"ok": "green", "timeout": "yellow"}
# How long to wait before reconnecting, unless the server said otherwise (``retry:``).
_RETRY = 2.0


@dataclass
class Event:
    kind: str = "message"
    data: str = ""
    id: str | None = None


def sse_events(lines: Iterator[str]) -> Iterator[Event | int]:
    """Server-Sent Events from a stream's lines; an ``int`` is a ``retry:`` in ms.
    An ``id:`` with no event (the stream's opening, heartbeats) still moves the resume point."""
    event = Event()
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                event.data = "\n".join(data)
                yield event
            elif event.id is not None:
                yield Event(kind="position", id=event.id)
            event, data = Event(), []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event.kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event.id = value
        elif name == "retry" and value.isdigit():
            yield int(value)


@dataclass
class Printer:
    """Invocations with their console lines beneath; live lines as they come."""

    names: dict[str, str]
    remote: Remote
    json_lines: bool = False
    # The live lines shown per running invocation, as (at, text): its record then
    # adds only the others (lines a reconnect missed, or from another process).
    shown: dict[str, set[tuple[Any, str]]] = field(default_factory=dict)
    # Invocations already printed whole: a live line arriving after its record
    # (relayed late from another process) is in the record already.
    finished: deque[str] = field(default_factory=lambda: deque(maxlen=1000))

    def name(self, hook_id: str) -> str:
        if hook_id not in self.names:  # created since the start: look again, once
            self.names.update({hook["id"]: hook["name"] for hook in self.remote.hooks()})
            self.names.setdefault(hook_id, hook_id)  # deleted meanwhile
        return self.names[hook_id]

    def console(self, line: dict[str, Any]) -> None:
        if self.json_lines:
            print_json({"event": "console", **line})
            return
        invocation = line.get("invocation_id", "")
        if invocation in self.finished:
            return
        if invocation not in self.shown:
            self.shown[invocation] = set()
            test = " [magenta]test[/magenta]" if line.get("test") else ""
            out.print(
                f"[dim]{_clock(line.get('at'))}[/dim] [bold]{escape(self.name(line['hook_id']))}"
                f"[/bold] [dim]{line['point']} {invocation}[/dim]{test} [blue]running[/blue]"
            )
        self.shown[invocation].add((line.get("at"), str(line.get("text", ""))))
        show_line(line, indent="  │ ")

    def record(self, record: dict[str, Any]) -> None:
        if self.json_lines:
            print_json({"event": "invocation", **record})
            return
        live = self.shown.pop(record["id"], None)  # lines already shown as they came
        self.finished.append(record["id"])
        style = _OUTCOME_STYLES.get(record["outcome"], "red")
        outcome = f"[{style}]{escape(record['outcome'])}[/{style}] {record['duration_ms']:.1f} ms"
        if live is None:
            test = " [magenta]test[/magenta]" if record.get("test") else ""
            out.print(
                f"[dim]{_clock(record['started_at'])}[/dim] "
                f"[bold]{escape(self.name(record['hook_id']))}[/bold] [dim]v{record['version']} "
                f"{record['point']} {record['id']}[/dim]{test} {outcome}"
            )
        for line in record["console"]:
            if (line.get("at"), str(line.get("text", ""))) not in (live or ()):
                show_line(line, indent="  │ ")
        if record["truncated"]:
            out.print("  │ [yellow]… lines past the cap were dropped[/yellow]")
        if record["error"]:
            out.print(f"  │ [red]{escape(record['error'])}[/red]")
        if live is not None:
            out.print(f"  └ {outcome}")


def _clock(stamp: Any) -> str:
    """``HH:MM:SS`` of an ISO 8601 time or a Unix time."""
    if isinstance(stamp, int | float):
        return time.strftime("%H:%M:%S", time.localtime(stamp))
    text = str(stamp or "")
    return text[11:19] if len(text) >= 19 else text


def logs(
    name: Annotated[
        str | None, typer.Argument(help="Only this hook's invocations.", show_default=False)
    ] = None,
    trigger: Annotated[
        str | None, typer.Option("--trigger", "-t", help="Only this point's invocations.")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="Only this outcome (ok, error, timeout…).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing invocations as they happen.")
    ] = False,
    take: Annotated[int, typer.Option(help="How many recent invocations to show.")] = 20,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show recent hook invocations with their console lines, or follow them live.

    Example: authhooks logs add-claims --follow
    """
    if not 1 <= take <= 100:
        raise CliError("--take is between 1 and 100")
    with connect(profile) as remote:
        names = {hook["id"]: hook["name"] for hook in remote.hooks()}
        params: dict[str, str] = {}
        if name is not None:
            hook_id = next((i for i, n in names.items() if n == name), None)
            params["hook_id"] = hook_id or remote.hook(name)["id"]
        if trigger is not None:
            params["point"] = known_point(trigger, remote)
        if outcome is not None:
            params["outcome"] = outcome
        printer = Printer(names, remote, json_lines=json_output and follow)
        if not follow:
            page = remote.call("GET", "/logs", params={**params, "take": str(take)})
            if json_output:
                print_json(page["logs"][::-1])  # oldest first, as printed
                return
            if not page["logs"]:
                note("no invocations")
            for record in reversed(page["logs"]):
                printer.record(record)
            return
        _follow(remote, params, printer)


def _follow(remote: Remote, params: dict[str, str], printer: Printer) -> None:
    position: str | None = None
    retry = _RETRY  # the server's advice (``retry:``)
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if position is not None:
            headers["Last-Event-ID"] = position
        try:
            with remote.stream("/logs/stream", params, headers) as response:
                if position is None:
                    note("following hook invocations (Ctrl-C to stop)")
                failures = 0
                for event in sse_events(response.iter_lines()):
                    if isinstance(event, int):
                        retry = event / 1000
                        continue
                    if event.id is not None:
                        position = event.id
                    if event.kind == "console":
                        printer.console(json.loads(event.data))
                    elif event.kind == "invocation":
                        printer.record(json.loads(event.data))
                    elif event.kind == "dropped":
                        reason = json.loads(event.data).get("reason", "")
                        note(f"[yellow]the server ended the stream: {escape(str(reason))}[/yellow]")
                        break
                    elif event.kind == "end":
                        # Access was taken away: reconnecting would only be refused.
                        ended = json.loads(event.data)
                        raise CliError(
                            f"the server ended the stream: {ended.get('message', '')} "
                            f"({ended.get('reason', '')})",
                            ExitCode.AUTH,
                        )
        except httpx.TransportError:
            pass  # the connection broke or went silent: resume below
        except CliError as error:
            # Once following, a server that is away or stopping is waited for.
            if error.code != ExitCode.UNREACHABLE or position is None:
                raise
        failures += 1
        wait = min(max(retry, 0.5) * 2 ** min(failures - 1, 6), 30.0)
        note(f"[yellow]reconnecting in {wait:g} s, from record {position}[/yellow]")
        time.sleep(wait)
