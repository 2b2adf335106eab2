"""``authhooks secrets``: a hook's secrets by name; values go in and never come out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from authhooks.cli.common import (
    JsonOption,
    ProfileOption,
    connect,
    parse_assignments,
    read_env_file,
)
from authhooks.cli.hooks import NameArgument
from authhooks.cli.output import CliError, note, out, print_json
from authhooks.cli.remote import Remote

app = typer.Typer(
    help="A hook's secrets (context.secrets): names are listed, values are never shown.",
    no_args_is_help=True,
)


@app.command("ls")
def list_secrets(
    name: NameArgument, profile: ProfileOption = None, json_output: JsonOption = False
) -> None:
    """List the names of a hook's secrets.

    Example: authhooks secrets ls add-claims
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        names = sorted(remote.call("GET", f"/hooks/{hook['id']}/secrets"))
    if json_output:
        print_json(names)
    elif names:
        for secret in names:
            out.print(escape(secret))
    else:
        note(f"{escape(name)} has no secrets")


@app.command("set")
def set_secrets(
    name: NameArgument,
    assignments: Annotated[
        list[str] | None, typer.Argument(help="NAME=VALUE pairs.", show_default=False)
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Secrets from a .env file.")
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Add secrets, or replace their values.

    Example: authhooks secrets set add-claims API_KEY=k-123 --from-file .env
    """
    values = read_env_file(from_file) if from_file else {}
    values.update(parse_assignments(assignments))
    if not values:
        raise CliError("give NAME=VALUE pairs or --from-file")
    with connect(profile) as remote:
        hook = remote.hook(name)
        put_secrets(remote, hook["id"], values)
    note(f"{escape(name)}: set " + ", ".join(escape(secret) for secret in sorted(values)))


def put_secrets(remote: Remote, hook_id: str, values: dict[str, str]) -> None:
    """Set ``values``: new names are added, existing ones replaced."""
    existing = set(remote.call("GET", f"/hooks/{hook_id}/secrets"))
    replaced = {key: value for key, value in values.items() if key in existing}
    added = {key: value for key, value in values.items() if key not in existing}
    if replaced:
        remote.call("PATCH", f"/hooks/{hook_id}/secrets", json=replaced)
    if added:
        remote.call("POST", f"/hooks/{hook_id}/secrets", json=added)


@app.command("rm")
def remove_secrets(
    name: NameArgument,
    names: Annotated[list[str], typer.Argument(help="Secret names.", show_default=False)],
    profile: ProfileOption = None,
) -> None:
    """Remove secrets by name.

    Example: authhooks secrets rm add-claims API_KEY
    """
    with connect(profile) as remote:
        hook = remote.hook(name)
        remote.call("DELETE", f"/hooks/{hook['id']}/secrets", json=names)
    note(f"{escape(name)}: removed " + ", ".join(escape(secret) for secret in names))
