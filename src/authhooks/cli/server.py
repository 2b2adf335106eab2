"""Server-side commands: serve, init, migrate."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from authhooks.config import Settings

# The server's modules are imported by the commands that need them, so that the
# client commands start quickly.

console = Console(stderr=True, soft_wrap=True)
# Seconds a stopping server waits for requests in flight: a hook's longest timeout
# (20 s) plus the rest of its request.
GRACEFUL_SHUTDOWN = 30


def load_settings(**overrides: object) -> Settings:
    """Settings from env and file, with command-line overrides exported for worker processes."""
    from pydantic import ValidationError

    from authhooks.config import Settings

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
    from sqlalchemy.exc import SQLAlchemyError

    from authhooks.errors import StartupError
    from authhooks.masterkey import MasterKeyError

    try:
        yield
    except StartupError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
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


ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Also save the bootstrap admin as this CLI profile, for this server's URL.",
        show_default=False,
    ),
]


def _initialise(settings: Settings, *, new_admin: bool = False, profile: str | None) -> None:
    from authhooks.bootstrap import ADMIN_FILE, initialise

    with clean_errors():
        admin = initialise(settings, new_admin=new_admin)
    _warn_of_loose_modes(settings)
    if profile is not None:
        _save_profile(settings, profile)
    # os.isatty, not rich's is_terminal: FORCE_COLOR must not print a secret into a pipe.
    if admin is not None and os.isatty(sys.stderr.fileno()):
        console.print(
            "[bold]Admin client created[/bold] (shown once; also saved, mode 0600, in "
            f"{escape(str(admin.path))}):"
        )
        console.print(f"  client_id:     {admin.client_id}")
        console.print(f"  client_secret: {admin.client_secret}")
        console.print(f"  audience:      {admin.audience}")
    elif admin is not None:
        # Not a terminal: the output may well end up in a log, which must hold no secret.
        console.print(
            f"[bold]Admin client created[/bold]: client_id {admin.client_id}; its secret "
            f"is in {escape(str(admin.path))} (mode 0600)"
        )
    else:
        console.print(f"Bootstrap admin credentials: {settings.data_dir / ADMIN_FILE}")


def _warn_of_loose_modes(settings: Settings) -> None:
    """Say which of the data dir and the SQLite database other users may open: the
    database holds users' personal data and password hashes. A new database is
    created 0600 and a new data dir 0700, but one made before, or elsewhere, keeps
    its mode; changing it is the operator's call."""
    import stat
    from pathlib import Path

    from authhooks.storage.database import sqlite_path

    paths = [settings.data_dir]
    database = sqlite_path(settings.database_url)
    if database is not None:
        paths += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    for path in paths:
        try:
            status = path.stat()
        except OSError:  # no -wal or -shm just now
            continue
        mode = stat.S_IMODE(status.st_mode)
        if mode & 0o077:
            private = "700" if stat.S_ISDIR(status.st_mode) else "600"
            console.print(
                f"[yellow]warning:[/yellow] {escape(str(path))} is open to other users "
                f"(mode {mode:04o}); it holds users' data: chmod {private} {escape(str(path))}"
            )


def _save_profile(settings: Settings, name: str) -> None:
    """The bootstrap admin as a CLI profile, unless that profile is another server's."""
    import json

    from authhooks.bootstrap import ADMIN_FILE
    from authhooks.cli import profiles
    from authhooks.cli.output import CliError

    try:
        admin = json.loads((settings.data_dir / ADMIN_FILE).read_text())
    except (OSError, ValueError):
        console.print(f"no bootstrap admin in {settings.data_dir}; profile {name!r} not saved")
        return
    url = settings.issuer.rstrip("/")
    # A problem with the CLI's files must not keep the server from starting.
    try:
        existing = profiles.saved().get(name)
        if existing is not None and existing.url != url:
            console.print(
                f"profile {name!r} is for {escape(existing.url)}; left as it is "
                f"(`authhooks login --profile ...` for this server)"
            )
            return
        profiles.save(
            profiles.Profile(
                name=name,
                url=url,
                client_id=admin["client_id"],
                client_secret=admin["client_secret"],
                audience=admin.get("audience", ""),
            )
        )
    except CliError as error:
        console.print(f"CLI profile {name!r} not saved: {escape(error.message)}")
        return
    console.print(f"CLI profile {name!r} is ready: try `authhooks ls --all`")


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port.")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes.")] = None,
    profile: ProfileOption = None,
) -> None:
    """Initialise on first start, migrate, and serve."""
    from authhooks.observability.processes import prepare_directory

    settings = load_settings(host=host, port=port, workers=workers)
    # Before anything imports prometheus-client: every server process started
    # from here writes its figures to this directory (observability/metrics.py).
    metrics_dir = prepare_directory()

    def remove_then_stop(signum: int, _: object) -> None:
        # uvicorn, once shut down, raises the signal it caught again: this handler,
        # restored by then, runs before the process ends (atexit would not).
        shutil.rmtree(metrics_dir, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, remove_then_stop)
    try:
        _serve(settings, profile)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(settings: Settings, profile: str | None) -> None:
    import uvicorn

    from authhooks.services import declare_points

    # Here, not in each server process, where a bad file would be a traceback.
    with clean_errors():
        declare_points(settings)
    _initialise(settings, profile=profile)

    from authhooks.observability.http import serve_separately
    from authhooks.observability.server_log import logging_config

    try:
        serve_separately(settings)
    except OSError as error:
        console.print(f"[red]metrics port {settings.metrics_port}:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    from authhooks.serving import PROTOCOL, Supervisor

    for tls_file in (settings.tls_certfile, settings.tls_keyfile):
        if tls_file is not None and not tls_file.is_file():
            console.print(f"[red]TLS:[/red] {escape(str(tls_file))} is not a readable file")
            raise typer.Exit(2)

    console.print(
        f"Issuer: [bold]{settings.issuer}[/bold]  (listening on {settings.host}:{settings.port})"
    )
    config = uvicorn.Config(
        "authhooks.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=PROTOCOL,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,
        server_header=False,
        # In-flight requests may take a hook's longest timeout to finish.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )
    # Once per serve, in the server's log (the config above set logging up), not
    # once per worker process.
    from authhooks.identity.mail.sender import announce

    with clean_errors():
        announce(settings)
    if settings.workers > 1:
        Supervisor(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(3)


def init(
    new_admin: Annotated[
        bool, typer.Option("--new-admin", help="Also create a new admin client (recovery).")
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Create the data dir, master key, schema, signing key and bootstrap admin without serving."""
    settings = load_settings()
    _initialise(settings, new_admin=new_admin, profile=profile)
    console.print(f"Issuer: {settings.issuer}")


def migrate() -> None:
    """Bring the database schema to the newest version."""
    from authhooks.storage.database import Database

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
