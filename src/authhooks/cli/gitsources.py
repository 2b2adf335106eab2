"""``authhooks git``: repositories whose pushes deploy hooks (docs/git.md).

A source's webhook secret is printed once, when the source is made or its secret
rotated, and never again; its credentials go in (a token read from stdin or a
prompt, an SSH key read from a file, never from the command line) and never
come out. ``git sync --wait`` follows the deployment to its end, and exits 1
when it fails, so that it works as a CI step."""

from __future__ import annotations

import difflib
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from authhooks.cli.common import JsonOption, ProfileOption, connect, read_text
from authhooks.cli.output import CliError, ExitCode, note, out, print_json
from authhooks.cli.remote import Remote

app = typer.Typer(
    help="Git sources: repositories whose pushes deploy hooks (docs/git.md).",
    no_args_is_help=True,
)

SourceArgument = Annotated[str, typer.Argument(help="The source's name.", show_default=False)]
_FINISHED = ("succeeded", "failed")
_STATUS_STYLES = {"succeeded": "green", "failed": "red", "running": "yellow", "queued": "yellow"}
# How often `git sync --wait` asks how the deployment is going.
_POLL = 0.5


def find_source(remote: Remote, name: str) -> dict[str, Any]:
    """The source called ``name``; an error suggesting the closest names otherwise."""
    every = remote.every("/git-sources", "git sources")
    for source in every:
        if source["name"] == name:
            return source
    names = [source["name"] for source in every]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        message = f"no git source named {name!r}; did you mean " + " or ".join(map(repr, close))
        raise CliError(message + "?", ExitCode.FAILED)
    raise CliError(
        f"no git source named {name!r} (`authhooks git list` lists the {len(names)} there are)",
        ExitCode.FAILED,
    )


def _recent(remote: Remote, source_id: str, take: int) -> list[dict[str, Any]]:
    found = remote.call(
        "GET", f"/git-sources/{source_id}/deployments", params={"page": 0, "per_page": take}
    )
    if not isinstance(found, list):
        raise CliError("the deployments' answer is not a list", ExitCode.FAILED)
    return found


def short(commit: str | None) -> str:
    return commit[:12] if commit else "-"


def _status(status: str) -> str:
    style = _STATUS_STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else escape(status)


def _read_token() -> str:
    """A token from stdin when it is piped, else asked for without echo."""
    if sys.stdin is None or not sys.stdin.isatty():
        token = (sys.stdin.read() if sys.stdin is not None else "").strip()
    else:
        token = typer.prompt("Token", hide_input=True, err=True).strip()
    if not token:
        raise CliError("--token-from-stdin: no token was given")
    return token


def _show_secret(source: dict[str, Any]) -> None:
    out.print(f"webhook URL:    {escape(source['webhook_url'])}")
    out.print(f"webhook secret: {escape(source['webhook_secret'])}")
    note(
        "The secret is shown this once: set it on your git host's push webhook now "
        "(`authhooks git rotate-secret` makes a new one)."
    )


def add(
    name: SourceArgument,
    repository: Annotated[
        str,
        typer.Argument(
            help="https://..., ssh://... or git@host:owner/repo.git", show_default=False
        ),
    ],
    branch: Annotated[str, typer.Option("--branch", "-b", help="The branch to deploy.")] = "main",
    path: Annotated[
        str, typer.Option("--path", help="The folder holding hooks/ (default: the root).")
    ] = "",
    token_from_stdin: Annotated[
        bool,
        typer.Option(
            "--token-from-stdin",
            help="An https token, read from stdin (asked for on a terminal).",
        ),
    ] = False,
    ssh_key: Annotated[
        Path | None,
        typer.Option("--ssh-key", help="A file holding the SSH deploy key.", show_default=False),
    ] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(
            "--known-hosts",
            help="For an ssh repository: a file of the host's keys, as in known_hosts "
            "(ssh-keyscan HOST prints them; check them against the host's published ones).",
            show_default=False,
        ),
    ] = None,
    poll_interval: Annotated[
        int | None,
        typer.Option(
            "--poll-interval",
            help="Also poll the branch every this many seconds (60 to 604800).",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Connect a repository; prints its webhook URL and secret, shown this once.

    Example: authhooks git add identity-hooks https://github.com/acme/identity-hooks.git;
    gh auth token | authhooks git add private-hooks https://github.com/acme/p.git --token-from-stdin
    """
    if token_from_stdin and ssh_key is not None:
        raise CliError("give --token-from-stdin or --ssh-key, not both")
    body: dict[str, Any] = {"name": name, "repository": repository, "branch": branch, "path": path}
    if token_from_stdin:
        body["credentials"] = {"token": _read_token()}
    elif ssh_key is not None:
        body["credentials"] = {"ssh_private_key": read_text(ssh_key)}
    if known_hosts is not None:
        body["ssh_known_hosts"] = read_text(known_hosts)
    if poll_interval is not None:
        body["poll_interval"] = poll_interval
    with connect(profile) as remote:
        source = remote.call("POST", "/git-sources", json=body)
    if json_output:
        print_json(source)
        return
    note(f"added git source {escape(name)} ({source['id']})")
    _show_secret(source)


def list_sources(profile: ProfileOption = None, json_output: JsonOption = False) -> None:
    """List the git sources, with each one's last deployment.

    Example: authhooks git list
    """
    with connect(profile) as remote:
        listed = remote.every("/git-sources", "git sources")
        last = {source["id"]: _recent(remote, source["id"], 1) for source in listed}
    if json_output:
        print_json([{**s, "last_deployment": next(iter(last[s["id"]]), None)} for s in listed])
        return
    if not listed:
        note("no git sources (`authhooks git add` connects a repository)")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "REPOSITORY", "BRANCH", "PATH", "HOOKS", "LAST DEPLOYMENT"):
        table.add_column(column)
    for source in listed:
        recent = last[source["id"]]
        table.add_row(
            escape(source["name"]),
            escape(source["repository"]),
            escape(source["branch"]),
            escape(source["path"] or "/"),
            str(len(source["hooks"])),
            f"{_status(recent[0]['status'])} {short(recent[0]['commit'])}" if recent else "none",
        )
    out.print(table)


def _deployments_table(deployments: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("CREATED", "STATUS", "TRIGGER", "COMMIT", "AUTHOR", "MESSAGE", "CHANGES"):
        table.add_column(column)
    for deployment in deployments:
        message = (deployment["message"] or "").splitlines()
        table.add_row(
            str(deployment["created_at"]),
            _status(deployment["status"]),
            escape(deployment["trigger"]),
            short(deployment["commit"]),
            escape(deployment["author"] or "-"),
            escape(message[0] if message else "-"),
            escape(_changes_summary(deployment)),
        )
    return table


def _changes_summary(deployment: dict[str, Any]) -> str:
    if deployment["status"] == "failed":
        return "failed: " + (deployment["error"] or "no reason given")
    changes = deployment["changes"]
    if not changes:
        return "-" if deployment["status"] in _FINISHED else ""
    return ", ".join(f"{change['action']} {change['hook']}" for change in changes)


def show(
    name: SourceArgument, profile: ProfileOption = None, json_output: JsonOption = False
) -> None:
    """Show a git source: its settings, its hooks and its recent deployments.

    Example: authhooks git show identity-hooks
    """
    with connect(profile) as remote:
        source = find_source(remote, name)
        recent = _recent(remote, source["id"], 10)
    if json_output:
        print_json({**source, "deployments": recent})
        return
    details = Table(box=None, show_header=False, pad_edge=False)
    credentials = source["credentials"]
    poll = source["poll_interval"]
    for label, value in [
        ("name", source["name"]),
        ("id", source["id"]),
        ("repository", source["repository"]),
        ("branch", source["branch"]),
        ("path", source["path"] or "/ (the repository's root)"),
        ("webhook URL", source["webhook_url"]),
        ("credentials", credentials["kind"] if credentials else "none"),
        ("polling", f"every {poll} s" if poll else "no (webhooks only)"),
        ("hooks", ", ".join(hook["name"] for hook in source["hooks"]) or "none"),
        ("created", source["created_at"]),
    ]:
        details.add_row(f"[bold]{label}[/bold]", escape(str(value)))
    out.print(details)
    out.print()
    if recent:
        out.print("[bold]Recent deployments[/bold] (newest first)")
        out.print(_deployments_table(recent))
    else:
        out.print("no deployments yet (`authhooks git sync` deploys the branch now)")


def deployments(
    name: SourceArgument,
    take: Annotated[int, typer.Option("--take", "-n", help="How many, newest first.")] = 20,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a source's deployments, newest first: commit, author, status, changes.

    Example: authhooks git deployments identity-hooks --take 5
    """
    if take < 1:
        raise CliError("--take: give 1 or more")
    with connect(profile) as remote:
        source = find_source(remote, name)
        found: list[dict[str, Any]] = []
        page = 0
        while len(found) < take:
            per_page = min(100, take)
            batch = remote.call(
                "GET",
                f"/git-sources/{source['id']}/deployments",
                params={"page": page, "per_page": per_page},
            )
            found += batch
            if len(batch) < per_page:
                break
            page += 1
    found = found[:take]
    if json_output:
        print_json(found)
    elif found:
        out.print(_deployments_table(found))
    else:
        note(f"{escape(name)} has no deployments yet")


def report(deployment: dict[str, Any]) -> None:
    """A finished deployment: its commit, and its changes or its error."""
    commit = deployment["commit"]
    head = f"deployment {deployment['id']}: {_status(deployment['status'])}"
    if commit:
        head += f" at {short(commit)}"
        if deployment["message"]:
            head += f" ({escape(deployment['message'].splitlines()[0])})"
    out.print(head)
    if deployment["commit_url"]:
        out.print(f"  {escape(deployment['commit_url'])}")
    if deployment["status"] == "failed":
        out.print(f"  error: {escape(deployment['error'] or 'no reason given')}")
        return
    if not deployment["changes"]:
        out.print("  no changes")
    for change in deployment["changes"]:
        details = "; ".join(str(item) for item in change.get("details") or [])
        line = f"  {change['action']} {change['hook']}"
        out.print(escape(line + (f": {details}" if details else "")))


def sync(
    name: SourceArgument,
    wait: Annotated[
        bool,
        typer.Option("--wait", "-w", help="Wait for the deployment to finish; exit 1 if it fails."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="With --wait: give up after this many seconds.")
    ] = 600.0,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Deploy the branch's head now (the deployment runs on the server).

    Example: authhooks git sync identity-hooks --wait
    """
    with connect(profile) as remote:
        source = find_source(remote, name)
        deployment = remote.call("POST", f"/git-sources/{source['id']}/sync")
        if not wait:
            if json_output:
                print_json(deployment)
            else:
                note(
                    f"{escape(name)}: deployment {deployment['id']} queued "
                    f"(`authhooks git deployments {escape(name)}` shows how it went)"
                )
            return
        path = f"/git-sources/{source['id']}/deployments/{deployment['id']}"
        deadline = time.monotonic() + timeout
        while deployment["status"] not in _FINISHED:
            if time.monotonic() > deadline:
                raise CliError(
                    f"deployment {deployment['id']} still {deployment['status']} after "
                    f"{timeout:g} s (it goes on on the server)",
                    ExitCode.FAILED,
                )
            time.sleep(_POLL)
            deployment = remote.call("GET", path)
    if json_output:
        print_json(deployment)
    else:
        report(deployment)
    if deployment["status"] == "failed":
        raise typer.Exit(ExitCode.FAILED)


def rotate_secret(
    name: SourceArgument, profile: ProfileOption = None, json_output: JsonOption = False
) -> None:
    """Make a new webhook secret, shown this once; the old one stops working at once.

    Example: authhooks git rotate-secret identity-hooks
    """
    with connect(profile) as remote:
        source = find_source(remote, name)
        source = remote.call(
            "PATCH", f"/git-sources/{source['id']}", json={"rotate_webhook_secret": True}
        )
    if json_output:
        print_json(source)
        return
    note(f"{escape(name)}: a new webhook secret")
    _show_secret(source)


def detach(name: SourceArgument, profile: ProfileOption = None) -> None:
    """Make the source's hooks hand-made (editable again); the source stays.

    Example: authhooks git detach identity-hooks
    """
    with connect(profile) as remote:
        source = find_source(remote, name)
        remote.call("POST", f"/git-sources/{source['id']}/detach")
    released = ", ".join(escape(hook["name"]) for hook in source["hooks"]) or "no hooks"
    note(f"{escape(name)}: detached; hand-made now: {released}")


def remove(
    name: SourceArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    profile: ProfileOption = None,
) -> None:
    """Delete a git source and its deployments' record; its hooks stay, editable again.

    Example: authhooks git remove identity-hooks --yes
    """
    with connect(profile) as remote:
        source = find_source(remote, name)
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(f"not removing {name!r} without --yes (no terminal to ask on)")
            typer.confirm(
                f"Remove git source {name!r} and its deployments' record? "
                f"Its {len(source['hooks'])} hook(s) stay, editable again.",
                abort=True,
                err=True,
            )
        remote.call("DELETE", f"/git-sources/{source['id']}")
    note(f"removed git source {escape(name)}")


app.command()(add)
app.command("list")(list_sources)
app.command()(show)
app.command()(sync)
app.command()(deployments)
app.command("rotate-secret")(rotate_secret)
app.command()(detach)
app.command()(remove)
