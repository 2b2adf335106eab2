"""``authhooks keys``: signing key management."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from authhooks.cli.server import clean_errors, load_settings

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
            )
            kid = key.kid
    finally:
        database.dispose()
    console.print(
        f"new signing key {kid} ({settings.signing_algorithm}); running servers "
        f"switch to it within {settings.cache_ttl:g} s"
    )
