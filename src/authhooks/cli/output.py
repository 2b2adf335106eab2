"""What the CLI prints, and how it fails: one readable line and a documented exit code."""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from typing import Any

from rich.console import Console
from rich.markup import escape

# Results go to stdout (for pipes and --json); messages and progress to stderr.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class ExitCode(IntEnum):
    """The exit codes, as docs/cli.md lists them."""

    OK = 0
    FAILED = 1  # the server refused the request, or a tested hook failed
    USAGE = 2  # a bad argument, or a local file that is missing or invalid
    UNREACHABLE = 3  # the server could not be reached
    AUTH = 4  # no profile, or the server refused its credentials


class CliError(Exception):
    """A failure the user can act on, shown as one line (never a traceback)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(error: CliError) -> None:
    err.print(f"[red]error:[/red] {escape(error.message)}")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    err.print(message)
