"""What the client commands share: options, the connection, and reading local files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from dotenv import dotenv_values

from authhooks.cli import profiles
from authhooks.cli.output import CliError
from authhooks.cli.remote import Remote

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="The profile to use (default: $AUTHHOOKS_PROFILE, or 'default').",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
SecretOption = Annotated[
    list[str] | None,
    typer.Option("--secret", "-s", help="A secret as NAME=VALUE (repeatable).", show_default=False),
]

DependencyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--dependency",
        "-d",
        help="A package: NAME==VERSION (Python) or NAME@VERSION (npm); repeatable.",
        show_default=False,
    ),
]


@contextmanager
def connect(profile: str | None) -> Iterator[Remote]:
    with Remote(profiles.resolve(profile)) as remote:
        yield remote


def read_text(path: Path) -> str:
    """A local file's text, or an error that says why it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        raise CliError(f"{path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CliError(f"{path}: not UTF-8 text (byte {error.start})") from None


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """NAME=VALUE pairs from the command line (a value may itself hold '=')."""
    pairs: dict[str, str] = {}
    for item in items or []:
        name, equals, value = item.partition("=")
        if not equals or not name:
            # The value is not echoed: it may be a secret given without its name.
            raise CliError("a secret is given as NAME=VALUE; one argument has no NAME=")
        pairs[name] = value
    return pairs


def parse_dependencies(items: list[str] | None) -> dict[str, str]:
    """Packages from the command line: NAME==VERSION (pip's way) or NAME@VERSION
    (npm's, scoped names included: @scope/name@1.2.3)."""
    declared: dict[str, str] = {}
    for item in items or []:
        name, equals, version = item.partition("==")
        if not equals:
            at = item.rfind("@")
            name, version = (item[:at], item[at + 1 :]) if at > 0 else (item, "")
        if not name.strip() or not version.strip():
            raise CliError(f"{item!r}: a dependency is NAME==VERSION or NAME@VERSION")
        declared[name.strip()] = version.strip()
    return declared


def read_env_file(path: Path) -> dict[str, str]:
    """Secrets from a .env file: NAME=VALUE lines, comments, quotes, ``export``."""
    read_text(path)  # the same clear errors for a missing or binary file
    values = dotenv_values(path, interpolate=False)
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise CliError(f"{path}: {missing[0]} has no value (write {missing[0]}=VALUE)")
    return {name: value for name, value in values.items() if value is not None}
