"""``authhooks keys``: signing key management."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from authhooks.cli.server import clean_errors, load_settings

if TYPE_CHECKING:
    from authhooks.masterkey import MasterKey
    from authhooks.storage.database import Database

app = typer.Typer(help="Manage token signing keys.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.command()
def rotate(
    revoke_previous: Annotated[
        bool,
        typer.Option(
            "--revoke-previous",
            help="Withdraw the previous keys at once (a compromised key): their tokens stop "
            "verifying.",
        ),
    ] = False,
) -> None:
    """Sign new tokens with a fresh key; the old key stays published until its tokens expire."""
    from datetime import timedelta

    from authhooks.identity.tokens import rotate_signing_key
    from authhooks.masterkey import MasterKey
    from authhooks.storage.database import Database

    settings = load_settings()
    with clean_errors():
        master_key = MasterKey.load(settings.data_dir, settings.master_key)
    database = Database(settings.database_url)
    try:
        with clean_errors(), database.session() as session:
            key = rotate_signing_key(
                session,
                master_key,
                settings.signing_algorithm,
                settings.token_lifetime,
                revoke_previous=revoke_previous,
                # Every process publishes it within cache_ttl: twice that leaves a margin.
                ahead=timedelta(seconds=2 * settings.cache_ttl),
            )
            kid = key.kid
    finally:
        database.dispose()
    if revoke_previous:
        when = f"at once (each running server within {settings.cache_ttl:g} s)"
    else:
        when = f"in {2 * settings.cache_ttl:g} s, once every running server publishes it"
    console.print(
        f"new signing key {kid} ({settings.signing_algorithm}); tokens are signed with it {when}"
    )


master_key_app = typer.Typer(help="Manage the master key.", no_args_is_help=True)


@master_key_app.command("rotate")
def rotate_master_key(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Where to write the new key (mode 0600) when the current one comes from "
            "AUTHHOOKS_MASTER_KEY.",
        ),
    ] = None,
) -> None:
    """Seal everything with a new master key. Stop every server process first."""
    from authhooks.bootstrap import initialise
    from authhooks.masterkey import KEY_FILE, MasterKey
    from authhooks.private_files import write_private
    from authhooks.sealing import reseal_everything
    from authhooks.storage.database import Database

    settings = load_settings()
    key_file = settings.data_dir / KEY_FILE
    from_env = bool(settings.master_key)
    if not from_env and not key_file.exists():
        console.print(f"[red]error:[/red] no master key at {key_file}: nothing to rotate")
        raise typer.Exit(2)
    if not from_env and output is not None:
        console.print(
            "[red]error:[/red] --output is for a key given in AUTHHOOKS_MASTER_KEY; "
            f"the new key replaces {key_file}"
        )
        raise typer.Exit(2)
    if from_env and output is None:
        console.print(
            "[red]error:[/red] the master key comes from AUTHHOOKS_MASTER_KEY: "
            "name a file for the new one with --output"
        )
        raise typer.Exit(2)
    with clean_errors():
        initialise(settings)  # the schema and the sealed keys up to date first
        old = MasterKey.load(settings.data_dir, settings.master_key)
    raw = secrets.token_bytes(32)
    staged = output if output is not None else key_file.with_name(KEY_FILE + ".new")
    try:
        write_private(staged, base64.b64encode(raw).decode() + "\n", exclusive=True)
    except FileExistsError:
        console.print(f"[red]error:[/red] {staged} exists: move it away first")
        raise typer.Exit(2) from None
    _sync_directory(staged.parent)
    database = Database(settings.database_url)
    try:
        with clean_errors(), database.exclusive("initialise"), database.session() as session:
            resealed = reseal_everything(session, old, MasterKey(raw))
    except BaseException:
        # Keep the new key if the commit landed after all (a connection lost
        # during COMMIT, say): then it is the only key that opens the database.
        if _opens(database, MasterKey(raw)) is False:
            staged.unlink(missing_ok=True)
        else:
            console.print(
                f"[red]the rotation may have been committed:[/red] keep {staged}; "
                "`authhooks init` with the old key says whether it still opens the database"
            )
        raise
    finally:
        database.dispose()
    if from_env:
        where = f"set AUTHHOOKS_MASTER_KEY to the key in {staged}, then start the servers"
    else:
        os.replace(staged, key_file)
        _sync_directory(key_file.parent)
        where = f"{key_file} holds the new key; start the servers"
    console.print(
        f"resealed {resealed.signing_keys} signing keys, {resealed.hook_secrets} hook secrets, "
        f"{resealed.captured_events} captured events, {resealed.waiting_mails} waiting mails, "
        f"{resealed.git_sources} git sources and {resealed.sealed_keys} other keys "
        f"with a new master key: {where}. Back up the new key: the old one no longer opens them."
    )


def _opens(database: Database, key: MasterKey) -> bool | None:
    """Whether ``key`` opens the database's sealed keys; None when that cannot be told."""
    from sqlalchemy.exc import SQLAlchemyError

    from authhooks.masterkey import MasterKeyError
    from authhooks.sealing import secret_hasher

    try:
        with database.session() as session:
            secret_hasher(session, key)
    except MasterKeyError:
        return False
    except (SQLAlchemyError, LookupError):
        return None
    return True


def _sync_directory(path: Path) -> None:
    """Make a file just created or renamed in ``path`` survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
