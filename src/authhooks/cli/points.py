"""The points a command may name, and the code a new hook starts from.

Built-in points are known to this install, so ``scaffold`` works offline for them
and writes exactly what a server of the same version lists. Any other point (one
an operator declared, docs/hooks.md) is known only to the server: it is looked up
in ``GET /api/v2/points`` when a command names it, and only then.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from authhooks.cli.common import connect
from authhooks.cli.output import CliError, ExitCode
from authhooks.cli.remote import Remote
from authhooks.hooks.code_format import LANGUAGE_NAMES as LANGUAGE_NAMES
from authhooks.hooks.code_format import RUNTIME_BY_SUFFIX as RUNTIME_BY_SUFFIX
from authhooks.hooks.code_format import SUFFIX_BY_RUNTIME as SUFFIX_BY_RUNTIME
from authhooks.points.registry import POINTS


class Convention(enum.StrEnum):
    """Auth0's two ways of writing a hook; every point takes both."""

    hooks = "hooks"
    actions = "actions"


class Language(enum.StrEnum):
    """The languages a hook is written in, as ``--lang`` names them."""

    python = "python"
    js = "js"

    @property
    def runtime(self) -> str:
        """The API's name for it (a hook's ``runtime``)."""
        return "node" if self is Language.js else "python"

    @property
    def suffix(self) -> str:
        return ".js" if self is Language.js else ".py"


# A code file's language by its suffix (hooks/code_format.py, the format's one
# home); any other suffix says nothing, and the server infers the language from
# the code as it does for Auth0's clients.


def runtime_of_file(path: Path) -> str | None:
    return RUNTIME_BY_SUFFIX.get(path.suffix.lower())


def listed_points(remote: Remote) -> dict[str, dict[str, Any]]:
    """Every point the server lists, by id."""
    listed = remote.every("/points", "points")
    return {point["id"]: point for point in listed if isinstance(point, dict) and "id" in point}


def unknown_point(point: str, known: Iterable[str]) -> CliError:
    names = list(known)
    close = difflib.get_close_matches(point, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; one of: " + ", ".join(names)
    return CliError(f"unknown extensibility point {point!r}{hint}")


def known_point(point: str, remote: Remote | None = None) -> str:
    """``point`` if it is built in, or (given a server) one the server lists."""
    if point in POINTS:
        return point
    if remote is None:
        raise unknown_point(point, POINTS)
    listed = listed_points(remote)
    if point not in listed:
        raise unknown_point(point, [*POINTS, *(name for name in listed if name not in POINTS)])
    return point


class ServerPoints:
    """Whether a point exists: built in, or else asked of the server once (the
    profile is resolved only then, so a directory of built-in points' hooks is
    checked without any server)."""

    def __init__(self, profile: str | None) -> None:
        self._profile = profile
        self._listed: list[str] | None = None

    def check(self, point: str) -> str | None:
        """Why ``point`` is not one, or None."""
        if point in POINTS:
            return None
        if self._listed is None:
            with connect(self._profile) as remote:
                self._listed = [name for name in listed_points(remote) if name not in POINTS]
        if point in self._listed:
            return None
        return unknown_point(point, [*POINTS, *self._listed]).message


def template(point: str, convention: Convention, language: Language, profile: str | None) -> str:
    """The starter code of ``point`` in ``convention`` and ``language``: this
    install's for a built-in point, the server's for any other."""
    missing = CliError(
        f"{point} has no {LANGUAGE_NAMES[language.runtime]} starter code in the "
        f"{convention.value} convention",
        ExitCode.FAILED,
    )
    if point in POINTS:
        key = convention.value + (".js" if language is Language.js else "")
        found = POINTS[point].templates.get(key)
        if not found:
            raise missing
        return found
    described = _described_by_server(point, profile)["conventions"][convention.value]
    if language is Language.js:
        described = described.get("javascript") or {}
    if described.get("template"):
        return str(described["template"])
    # A declared point lists a signature in each language, not always starter code.
    if described.get("signature"):
        return stub(str(described["signature"]), language)
    raise missing


def stub(signature: str, language: Language) -> str:
    """The least code of a signature, for a point that lists no starter code."""
    if language is Language.python:
        return f"{signature}:\n    pass\n"
    if signature.startswith("module.exports"):  # Auth0 Hooks: done when cb is called
        return f"{signature} {{\n  cb(null, {{}});\n}};\n"
    return f"{signature} => {{\n}};\n"


def _described_by_server(point: str, profile: str | None) -> dict[str, Any]:
    try:
        with connect(profile) as remote:
            listed = listed_points(remote)
    except CliError as error:
        # No profile, or no server: the point is unknown to this install all the same.
        raise CliError(
            f"{unknown_point(point, POINTS).message} (a point declared on a server is "
            f"looked up there, and that failed: {error.message})"
        ) from None
    if point not in listed:
        raise unknown_point(point, [*POINTS, *(name for name in listed if name not in POINTS)])
    return listed[point]
