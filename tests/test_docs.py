"""The docs stay true: every setting, command and point is documented. That their
examples run is tests/test_doc_examples.py's part."""

from __future__ import annotations

from pathlib import Path

import typer.main

from authhooks.cli.main import app
from authhooks.config import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    operations = (DOCS / "operations.md").read_text()
    missing = [
        name for name in Settings.model_fields if f"`AUTHHOOKS_{name.upper()}`" not in operations
    ]
    assert not missing, f"settings missing from docs/operations.md: {missing}"


def test_every_command_is_documented() -> None:
    cli = (DOCS / "cli.md").read_text()
    command = typer.main.get_command(app)
    names: list[str] = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        if hasattr(sub, "commands"):
            names.extend(f"{name} {child}" for child in sub.commands)
        else:
            names.append(name)
    missing = [name for name in names if f"`authhooks {name}" not in cli]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


def test_every_point_is_documented() -> None:
    from authhooks.points.registry import POINTS

    hooks = (DOCS / "hooks.md").read_text()
    missing = [
        name
        for name, point in POINTS.items()
        if f"`{name}`" not in hooks
        or f"{point.hooks.function}(" not in hooks
        or f"{point.actions.function}(" not in hooks
    ]
    assert not missing, f"points missing from docs/hooks.md: {missing}"
