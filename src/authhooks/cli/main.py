"""Entry point of the ``authhooks`` command: the server's own commands, and the
client commands a hook author lives in (which use the management API only)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from authhooks.cli import (
    code,
    declared,
    gitsources,
    hooks,
    keys,
    login,
    logs,
    secrets,
    server,
    testing,
)
from authhooks.cli.common import ProfileOption, connect
from authhooks.cli.output import CliError, ExitCode, fail

app = typer.Typer(
    name="authhooks",
    help="A self-hosted identity server customised with sandboxed hooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def deploy(
    target: Annotated[
        str,
        typer.Argument(
            help="A directory of hooks (hooks-as-code), or a hook's name with --version.",
            show_default=False,
        ),
    ],
    version: Annotated[
        int | None, typer.Option("--version", help="Deploy this version of the hook TARGET.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and change nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Also delete hooks and secrets the directory lacks."),
    ] = False,
    update_secrets: Annotated[
        bool,
        typer.Option("--update-secrets", help="Rewrite every declared secret's value."),
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Make the server match a directory of hooks, or deploy one version of a hook.

    A directory: prints the plan, then applies it; a second run changes nothing.
    A hook's name with --version N: rolls it back or forward to version N.

    Examples: authhooks deploy ./identity --dry-run;  authhooks deploy add-claims --version 2
    """
    if version is not None:
        if dry_run or prune or update_secrets:
            raise CliError("--dry-run, --prune and --update-secrets are for directories")
        with connect(profile) as remote:
            hooks.deploy_version(remote, target, version)
        return
    directory = Path(target)
    if not directory.is_dir():
        raise CliError(
            f"{target}: no such directory (to deploy a version of a hook, give --version N)"
        )
    code.deploy_directory(
        directory, dry_run=dry_run, prune=prune, update_secrets=update_secrets, profile=profile
    )


server.register(app)
app.add_typer(keys.app, name="keys")
app.add_typer(keys.master_key_app, name="master-key")
login.register(app)
hooks.register(app)
app.command()(deploy)
app.command()(code.export)
app.add_typer(secrets.app, name="secrets")
app.command("test")(testing.run_test)
app.command()(logs.logs)
app.add_typer(gitsources.app, name="git")
app.add_typer(declared.app, name="points")


def run(argv: list[str] | None = None) -> None:
    """The console script: a failure is one line and its exit code, never a traceback."""
    try:
        app(args=argv, prog_name="authhooks")
    except CliError as error:
        fail(error)
        sys.exit(error.code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # a bug: still one line, with what to report
        fail(CliError(f"unexpected {type(error).__name__}: {error} (please report it)"))
        sys.exit(ExitCode.FAILED)


__all__ = ["ExitCode", "app", "run"]
