"""The TypeScript declarations served with each point (GET /api/v2/points) are
valid TypeScript, and every point's JavaScript starter code type-checks against
them with the real compiler (the dashboard's, installed by the setup), as
`// @ts-check` does in an editor:
so they describe what hooks are given, and a mistake in either shows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from authhooks.api.points import _out
from authhooks.hooks.point_specs import PointCatalog
from authhooks.points.registry import POINTS

TSC = Path(__file__).parents[2] / "src/authhooks/dashboard/frontend/node_modules/typescript/bin/tsc"

# What Node.js gives every module, as @types/node would declare it for an editor.
NODE = """
declare var module: { exports: unknown };
declare var exports: Record<string, unknown>;
declare function require(name: string): any;
declare var console: { log(...data: unknown[]): void; error(...data: unknown[]): void };
"""


def check(directory: Path, declarations: str, code: str) -> subprocess.CompletedProcess[str]:
    (directory / "hook.d.ts").write_text(NODE + declarations)
    (directory / "hook.js").write_text("// @ts-check\n" + code)
    return subprocess.run(
        [
            "node",
            str(TSC),
            "--noEmit",
            "--allowJs",
            "--checkJs",
            "--target",
            "es2022",
            "--lib",
            "es2022",
            str(directory / "hook.d.ts"),
            str(directory / "hook.js"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def typed(template: str, convention: str) -> str:
    """The template with its function given the declared type (JSDoc)."""
    if convention == "hooks":
        return template.replace("module.exports =", "/** @type {Hook} */\nmodule.exports =", 1)
    return template.replace("exports.onExecute", "/** @type {Handler} */\nexports.onExecute", 1)


@pytest.mark.parametrize("point_id", sorted(POINTS))
@pytest.mark.parametrize("convention", ["hooks", "actions"])
def test_starter_code_type_checks(tmp_path: Path, point_id: str, convention: str) -> None:
    javascript = _out(POINTS[point_id], PointCatalog()).conventions[convention].javascript
    template = typed(javascript.template, convention)
    assert "@type" in template, template
    answer = check(tmp_path, javascript.declarations, template)
    assert answer.returncode == 0, answer.stdout + answer.stderr


def test_a_wrong_use_is_caught(tmp_path: Path) -> None:
    """Not a check that passes anything: misuse of the event and api is an error."""
    javascript = (
        _out(POINTS["credentials-exchange"], PointCatalog()).conventions["actions"].javascript
    )
    code = (
        "/** @type {Handler} */\n"
        "exports.onExecuteCredentialsExchange = async (event, api) => {\n"
        "  api.accessToken.setCustomClaims('https://example.com/x', event.client.nam);\n"
        "};\n"
    )
    answer = check(tmp_path, javascript.declarations, code)
    assert answer.returncode != 0
    assert "setCustomClaims" in answer.stdout
    assert "'nam'" in answer.stdout
