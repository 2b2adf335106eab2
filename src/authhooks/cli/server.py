"""Server-side commands: serve, init, migrate."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from authhooks.bootstrap import ADMIN_FILE, initialise
from authhooks.config import Settings
from authhooks.masterkey import MasterKeyError
from authhooks.storage.database import Database

console = Console(stderr=True, soft_wrap=True)


def load_settings(**overrides: object) -> Settings:
    """Settings from env and file, with command-line overrides exported for worker processes."""
    for name, value in overrides.items():
        if value is not None:
            # Worker processes build their own Settings from the environment.
            os.environ[f"AUTHHOOKS_{name.upper()}"] = str(value)
    try:
        return Settings()
    except ValidationError as error:
        console.print(f"[red]invalid settings:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn the failures an operator can fix into one line and exit code 2, not a traceback."""
    try:
        yield
    except MasterKeyError as error:
        console.print(f"[red]master key:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    except SQLAlchemyError as error:
        reason = escape(str(getattr(error, "orig", None) or error).splitlines()[0])
        console.print(
            f"[red]database:[/red] {reason} (is it running, and was `authhooks init` run?)"
        )
        raise typer.Exit(2) from None
    except LookupError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None


def _initialise(settings: Settings, *, new_admin: bool = False) -> None:
    with clean_errors():
        admin = initialise(settings, new_admin=new_admin)
    if admin is not None:
        console.print(
            "[bold]Admin client created[/bold] (shown once; also saved, mode 0600, in "
            f"{escape(str(admin.path))}):"
        )
        console.print(f"  client_id:     {admin.client_id}")
        console.print(f"  client_secret: {admin.client_secret}")
        console.print(f"  audience:      {admin.audience}")
    else:
        console.print(f"Bootstrap admin credentials: {settings.data_dir / ADMIN_FILE}")


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port.")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes.")] = None,
) -> None:
    """Initialise on first start, migrate, and serve."""
    settings = load_settings(host=host, port=port, workers=workers)
    _initialise(settings)
    console.print(
        f"Issuer: [bold]{settings.issuer}[/bold]  (listening on {settings.host}:{settings.port})"
    )
    uvicorn.run(
        "authhooks.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
    )


def init(
    new_admin: Annotated[
        bool, typer.Option("--new-admin", help="Also create a new admin client (recovery).")
    ] = False,
) -> None:
    """Create the data dir, master key, schema, signing key and bootstrap admin without serving."""
    settings = load_settings()
    _initialise(settings, new_admin=new_admin)
    console.print(f"Issuer: {settings.issuer}")


def migrate() -> None:
    """Bring the database schema to the newest version."""
    settings = load_settings()
    database = Database(settings.database_url)
    try:
        with clean_errors():
            database.migrate()
    finally:
        database.dispose()
    console.print("schema is up to date")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(init)
    app.command()(migrate)
