"""``authhooks login``, ``logout`` and ``profiles``: which server the CLI talks to, as whom."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from authhooks.cli import profiles
from authhooks.cli.common import JsonOption
from authhooks.cli.output import CliError, note, out, print_json
from authhooks.cli.profiles import Profile
from authhooks.cli.remote import Remote


def login(
    url: Annotated[str, typer.Option(help="The server's URL (its issuer).", show_default=False)],
    client_id: Annotated[
        str, typer.Option(help="A client allowed to call the management API.", show_default=False)
    ],
    client_secret: Annotated[
        str | None,
        typer.Option(
            help="Its secret; asked for when left out (or read from $AUTHHOOKS_CLIENT_SECRET), "
            "which keeps it out of the shell's history.",
            show_default=False,
        ),
    ] = None,
    audience: Annotated[
        str | None,
        typer.Option(help="The management API's identifier, when not <url>/api/v2/."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="The profile's name (default: $AUTHHOOKS_PROFILE, or 'default').",
        ),
    ] = None,
) -> None:
    """Check credentials against a server and save them as a profile (mode 0600).

    Example: authhooks login --url https://id.example.com --client-id abc --profile prod
    """
    secret = client_secret or os.environ.get("AUTHHOOKS_CLIENT_SECRET")
    if not secret:
        secret = typer.prompt("Client secret", hide_input=True, err=True)
    profile = profiles.chosen(profile)
    candidate = Profile(
        name=profile,
        url=profiles.normalise_url(url),
        client_id=client_id,
        client_secret=secret,
        audience=audience or "",
    )
    with Remote(candidate) as remote:
        remote.token(renew=True)  # the credentials work, or this says why not
        remote.call("GET", "/hooks", params={"per_page": 1})  # and they reach the API
    path = profiles.save(candidate)
    note(
        f"logged in to {escape(candidate.url)} as {escape(client_id)}; "
        f"profile {profile!r} saved in {path}"
    )


def logout(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="The profile to forget (default: $AUTHHOOKS_PROFILE, or 'default').",
        ),
    ] = None,
) -> None:
    """Forget a profile and its cached token.

    Example: authhooks logout --profile prod
    """
    profile = profiles.chosen(profile)
    known = profiles.saved().get(profile)
    if known is None:
        raise CliError(f"no profile named {profile!r}")
    profiles.forget_token(known)
    profiles.remove(profile)
    note(f"profile {profile!r} removed")


def list_profiles(json_output: JsonOption = False) -> None:
    """List the saved profiles (never their secrets).

    Example: authhooks profiles --json
    """
    saved = profiles.saved()
    if json_output:
        print_json(
            [
                {"name": name, "url": found.url, "client_id": found.client_id}
                for name, found in sorted(saved.items())
            ]
        )
        return
    if not saved:
        note("no profiles; `authhooks login` saves one")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("PROFILE", "URL", "CLIENT ID"):
        table.add_column(column)
    for name, found in sorted(saved.items()):
        table.add_row(escape(name), escape(found.url), escape(found.client_id))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command("profiles")(list_profiles)
