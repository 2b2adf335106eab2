"""Entry point of the ``authhooks`` command."""

from __future__ import annotations

import typer

from authhooks.cli import keys, server

app = typer.Typer(
    name="authhooks",
    help="A self-hosted identity server customised with sandboxed hooks.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)
app.add_typer(keys.app, name="keys")
