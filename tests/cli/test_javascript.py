"""JavaScript hooks through the CLI, against a real server: scaffold in either
convention (built-in points offline, declared points from the server), create
and update sending the language the file's suffix says, edit in a .js file, and
hooks as code with NAME.js beside NAME.json."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authhooks.cli.code import LocalHook, hook_files, plan
from authhooks.hooks.code_format import HookFile
from authhooks.points.registry import POINTS
from tests.cli.client import Cli, logged_in
from tests.conftest import Server, run_server, unique

# A point declared from data: the server knows it, this install does not.
DECLARED = {
    "id": "risk-score",
    "description": "Score a payment.",
    "blocking": True,
    "event_schema": {
        "type": "object",
        "required": ["amount"],
        "properties": {"amount": {"type": "number"}},
    },
    "result_schema": {
        "type": "object",
        "properties": {"score": {"type": "integer"}},
        "additionalProperties": False,
    },
    "sample_event": {"amount": 5},
}
ACTIONS = """\
exports.onExecuteCredentialsExchange = async (event, api) => {
  api.accessToken.setCustomClaim('https://example.com/tier', event.secrets.TIER);
};
"""
HOOKS = """\
module.exports = function (user, context, cb) {
  console.log('changed', user.email);
  cb();
};
"""
PYTHON = """\
def credentials_exchange(client, scope, audience, context):
    return {"https://example.com/tier": context["secrets"]["TIER"]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's server declares a point of its own."""
    directory = tmp_path_factory.mktemp("javascript")
    points = directory / "points.json"
    points.write_text(json.dumps([DECLARED]))
    with run_server(directory, "sqlite", points_file=points) as running:
        yield running


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    return logged_in(server, tmp_path)


def hooks_of(server: Server) -> dict[str, dict[str, Any]]:
    with server.api() as api:
        listed = api.get("/hooks", params={"per_page": 100}).json()
        return {
            hook["name"]: {
                **hook,
                "secrets": sorted(api.get(f"/hooks/{hook['id']}/secrets").json()),
            }
            for hook in listed
        }


def test_scaffolded_javascript_of_every_point_passes_its_sample_test(cli: Cli) -> None:
    for point in POINTS:
        for convention in ("hooks", "actions"):
            name = unique("js")
            cli.ok("scaffold", "-t", point, "--lang", "js", "-c", convention, "-o", f"{name}.js")
            assert (cli.cwd / f"{name}.js").read_text() == POINTS[point].templates[
                f"{convention}.js"
            ]
            # A scheduled hook needs its schedule (one that never comes due in the test).
            when = ["--schedule", "0 0 1 1 *"] if point == "schedule" else []
            created = json.loads(
                cli.ok("create", "-t", point, "--name", name, *when, f"{name}.js", "--json").stdout
            )
            assert created["runtime"] == "node"
            tested = cli("test", name, "--sample")
            assert tested.returncode == 0, (point, convention, tested.stdout, tested.stderr)
            cli.ok("rm", name, "--yes")

    printed = cli.ok("scaffold", "-t", "credentials-exchange", "--lang", "js", "-c", "actions")
    assert printed.stdout == POINTS["credentials-exchange"].templates["actions.js"]
    # A .js output is JavaScript without --lang; Python code in a .js file is refused.
    cli.ok("scaffold", "-t", "post-change-password", "-o", "by-suffix.js")
    assert "module.exports = function (user, context, cb)" in (cli.cwd / "by-suffix.js").read_text()
    mismatch = cli("scaffold", "-t", "post-change-password", "--lang", "python", "-o", "x.js")
    assert mismatch.returncode == 2
    assert "name it NAME.py" in mismatch.stderr
    assert not (cli.cwd / "x.js").exists()


def test_the_installed_command_scaffolds_creates_and_runs_a_javascript_hook(cli: Cli) -> None:
    """The console script in processes of its own, as a reader's shell runs it."""
    name = unique("process")
    scaffolded = cli.process(
        "scaffold", "-t", "credentials-exchange", "-c", "actions", "-o", f"{name}.js"
    )
    assert scaffolded.returncode == 0, scaffolded.stderr
    assert "(JavaScript, actions)" in scaffolded.stderr
    created = cli.process("create", "-t", "credentials-exchange", "--name", name, f"{name}.js")
    assert created.returncode == 0, created.stderr
    assert "JavaScript, version 1" in created.stderr
    tested = cli.process("test", name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert '"https://example.com/tier": "gold"' in tested.stdout
    listed = cli.process("ls", "--all")
    assert any(name in line and "JavaScript" in line for line in listed.stdout.splitlines())
    cli.ok("rm", name, "--yes")


def test_built_in_points_scaffold_offline_and_declared_ones_ask_the_server(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    offline = Cli(tmp_path / "no-profile", tmp_path, {"AUTHHOOKS_URL": "http://127.0.0.1:9"})
    printed = offline.ok("scaffold", "-t", "pre-user-registration", "--lang", "js")
    assert printed.stdout == POINTS["pre-user-registration"].templates["hooks.js"]
    unknown = offline("scaffold", "-t", "risk-score", "--lang", "js")
    assert unknown.returncode == 2
    assert "unknown extensibility point 'risk-score'" in unknown.stderr
    assert "looked up there, and that failed" in unknown.stderr

    with server.api() as api:
        listed = {point["id"]: point for point in api.get("/points").json()}
    declared = listed["risk-score"]["conventions"]
    python = cli.ok("scaffold", "-t", "risk-score", "-c", "actions").stdout
    assert python == declared["actions"]["template"]
    for convention in ("hooks", "actions"):
        name = unique(f"declared-{convention}")
        cli.ok("scaffold", "-t", "risk-score", "--lang", "js", "-c", convention, "-o", f"{name}.js")
        code = (cli.cwd / f"{name}.js").read_text()
        assert code.startswith(declared[convention]["javascript"]["signature"])
        cli.ok("create", "-t", "risk-score", "--name", name, f"{name}.js")
        tested = cli("test", name)
        assert tested.returncode == 0, (convention, code, tested.stdout, tested.stderr)
        cli.ok("rm", name, "--yes")
    wrong = cli("scaffold", "-t", "risk-scores")
    assert wrong.returncode == 2
    assert "did you mean 'risk-score'?" in wrong.stderr


def test_the_file_suffix_is_the_hooks_language(cli: Cli, server: Server) -> None:
    name = unique("suffix")
    (cli.cwd / "notify.js").write_text(HOOKS)
    (cli.cwd / "notify.py").write_text(HOOKS)  # JavaScript in a Python file
    (cli.cwd / "notify.txt").write_text(HOOKS)
    refused = cli("create", "-t", "post-change-password", "--name", name, "notify.py")
    assert refused.returncode == 1  # sent as Python, which it is not
    assert "error: 400" in refused.stderr
    assert name not in hooks_of(server)
    # Any other suffix says nothing: the server reads the code, as for Auth0's clients.
    cli.ok("create", "-t", "post-change-password", "--name", name, "notify.txt")
    assert hooks_of(server)[name]["runtime"] == "node"

    (cli.cwd / "notify2.py").write_text(
        "def post_change_password(user, context):\n    print('now in Python')\n"
    )
    assert "version 2" in cli.ok("update", name, "notify2.py").stderr
    assert hooks_of(server)[name]["runtime"] == "python"
    assert "version 3" in cli.ok("update", name, "notify.js").stderr
    assert hooks_of(server)[name]["runtime"] == "node"
    shown = cli.ok("show", name).stdout
    assert "language" in shown
    assert "JavaScript" in shown
    assert "console.log('changed', user.email);" in shown
    cli.ok("rm", name, "--yes")


def test_edit_opens_a_javascript_hook_in_a_js_file(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    name = unique("edit")
    (cli.cwd / "notify.js").write_text(HOOKS)
    cli.ok("create", "-t", "post-change-password", "--name", name, "notify.js")
    seen = tmp_path / "seen"
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "path = pathlib.Path(sys.argv[1])\n"
        f"pathlib.Path({str(seen)!r}).write_text(path.suffix)\n"
        "path.write_text(path.read_text().replace(\"'changed'\", \"'edited'\"))\n"
    )
    cli.ok("edit", name, env={"EDITOR": f"{sys.executable} {editor}"})
    assert seen.read_text() == ".js"
    edited = hooks_of(server)[name]
    assert edited["version"] == 2
    assert edited["runtime"] == "node"
    assert "console.log('edited', user.email);" in edited["script"]

    breaking = tmp_path / "breaking.py"
    breaking.write_text(
        "import sys, pathlib\n"
        "pathlib.Path(sys.argv[1]).write_text('module.exports = function (user {\\n};\\n')\n"
    )
    refused = cli("edit", name, env={"EDITOR": f"{sys.executable} {breaking}"})
    assert refused.returncode == 1
    assert "line 1" in refused.stderr
    kept = Path(refused.stderr.split("your edit is kept in ")[1].split(")")[0].replace("\n", ""))
    assert kept.suffix == ".js"
    kept.unlink()
    assert hooks_of(server)[name]["version"] == 2
    cli.ok("rm", name, "--yes")


def test_export_writes_and_deploy_reads_javascript(cli: Cli, server: Server) -> None:
    js, py = unique("code-js"), unique("code-py")
    (cli.cwd / "tier.js").write_text(ACTIONS)
    (cli.cwd / "tier.py").write_text(PYTHON)
    for name, file in ((js, "tier.js"), (py, "tier.py")):
        cli.ok(
            "create", "-t", "credentials-exchange", "--name", name, "--secret", "TIER=gold",
            "--order", "4", file,
        )  # fmt: skip
    cli.ok("export", "repo")
    folder = cli.cwd / "repo" / "hooks"
    assert (folder / f"{js}.js").read_text() == ACTIONS
    assert not (folder / f"{js}.py").exists()
    assert (folder / f"{py}.py").read_text() == PYTHON
    declared = json.loads((folder / f"{js}.json").read_text())
    assert declared["runtime"] == "node"
    assert declared["secrets"] == {"TIER": "$TIER"}
    assert json.loads((folder / f"{py}.json").read_text())["runtime"] == "python"
    for path in folder.iterdir():  # only the two hooks made here
        if path.stem not in (js, py):
            path.unlink()
    before = {name: hooks_of(server)[name] for name in (js, py)}

    # Deleted on the server, then deployed from the directory: the same hooks again.
    for name in (js, py):
        cli.ok("rm", name, "--yes")
    planned = cli.ok("deploy", "repo", "--dry-run", env={"TIER": "gold"})
    assert f"+ create {js}" in planned.stdout
    assert "credentials-exchange, JavaScript, disabled" in planned.stdout
    cli.ok("deploy", "repo", env={"TIER": "gold"})
    after = hooks_of(server)
    kept = ("triggerId", "runtime", "script", "order", "enabled", "egress", "secrets")
    for name in (js, py):
        assert {key: after[name][key] for key in kept} == {key: before[name][key] for key in kept}
    assert "plan: no changes; 2 unchanged" in cli.ok("deploy", "repo", env={"TIER": "g"}).stdout
    with server.api() as api:
        report = api.post(f"/hooks/{after[js]['id']}/test", json={}, timeout=60).json()
    assert report["outcome"] == "ok", report
    assert report["result"]["claims"]["https://example.com/tier"] == "***"  # redacted gold

    # One name, two code files: refused before anything changes.
    (folder / f"{js}.py").write_text(PYTHON)
    both = cli("deploy", "repo", env={"TIER": "gold"})
    assert both.returncode == 2
    assert f"both {js}.js and {js}.py are there" in both.stderr
    # The language changes with the file: NAME.py instead of NAME.js.
    (folder / f"{js}.js").unlink()
    mismatch = cli("deploy", "repo", env={"TIER": "gold"})
    assert mismatch.returncode == 2
    assert f"runtime is 'node', but its code is {js}.py (Python)" in mismatch.stderr
    declared["runtime"] = "python"
    (folder / f"{js}.json").write_text(json.dumps(declared))
    switched = cli.ok("deploy", "repo", env={"TIER": "gold"})
    assert "language JavaScript → Python" in switched.stdout
    assert hooks_of(server)[js]["runtime"] == "python"
    # Without a runtime, NAME.json takes the code file's language.
    del declared["runtime"]
    (folder / f"{js}.json").write_text(json.dumps(declared))
    (folder / f"{js}.py").unlink()
    (folder / f"{js}.js").write_text(ACTIONS)
    cli.ok("deploy", "repo", env={"TIER": "gold"})
    assert hooks_of(server)[js]["runtime"] == "node"
    (folder / f"{js}.js").unlink()
    missing = cli("deploy", "repo", env={"TIER": "gold"})
    assert f"its code {js}.py or {js}.js is missing" in missing.stderr
    (folder / f"{js}.js").write_text(ACTIONS)
    (folder / "stray.js").write_text(ACTIONS)
    stray = cli("deploy", "repo", env={"TIER": "gold"}).stderr
    assert "stray.js has no stray.json beside it" in stray
    (folder / "stray.js").unlink()

    # Exporting again mirrors the server: NAME.js replaces a stale NAME.py.
    (folder / f"{js}.py").write_text(PYTHON)
    exported = cli.ok("export", "repo")
    assert f"{js}.py" in exported.stderr
    assert (folder / f"{js}.js").exists()
    assert not (folder / f"{js}.py").exists()
    for name in (js, py):
        cli.ok("rm", name, "--yes")


class FakeRemote:
    """The two calls a plan makes, answered from one hook (no server)."""

    def __init__(self, hook: dict[str, Any]) -> None:
        self.hook = hook

    def hooks(self) -> list[dict[str, Any]]:
        return [self.hook]

    def call(self, method: str, path: str, **_: Any) -> Any:
        assert (method, path) == ("GET", f"/hooks/{self.hook['id']}/secrets")
        return {}


def test_declared_dependencies_travel_with_the_hook() -> None:
    """Whatever ``dependencies`` the API returns is exported in NAME.json, and a
    deploy sends the declared ones back when they differ, in either of Auth0's shapes."""
    remote_hook = {
        "id": "h1", "name": "deps", "triggerId": "credentials-exchange", "runtime": "node",
        "script": ACTIONS, "enabled": False, "order": 0, "timeout_ms": 5000,
        "on_error": "fail", "egress": [], "capture_events": False, "version": 1,
        "dependencies": {"lodash": "4.17.21"},
    }  # fmt: skip
    files = hook_files(remote_hook, [])
    document = json.loads(files["deps.json"])
    assert document["dependencies"] == {"lodash": "4.17.21"}
    assert files["deps.js"] == ACTIONS

    def planned(dependencies: Any) -> list[Any]:
        settings = HookFile.model_validate({**document, "dependencies": dependencies})
        local = LocalHook("deps", ACTIONS, "node", settings, {})
        return plan(FakeRemote(remote_hook), [local], prune=False, update_secrets=False)  # type: ignore[arg-type]

    assert planned({"lodash": "4.17.21"}) == []
    assert planned([{"name": "lodash", "version": "4.17.21"}]) == []  # the Actions shape
    (change,) = planned({"lodash": "4.17.20"})
    assert change.body == {"dependencies": {"lodash": "4.17.20"}}
    (cleared,) = planned(None)  # the directory declares none: the hook is to have none
    assert cleared.body == {"dependencies": {}}
    # A server that does not know dependencies is sent none unless they are declared.
    del remote_hook["dependencies"]
    assert planned(None) == []
    assert "dependencies" not in json.loads(hook_files(remote_hook, [])["deps.json"])
    created = LocalHook(
        "deps", ACTIONS, "node", HookFile.model_validate({"triggerId": "credentials-exchange"}), {}
    )
    assert "dependencies" not in created.fields()
    assert created.fields()["runtime"] == "node"
