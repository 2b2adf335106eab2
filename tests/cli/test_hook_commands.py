"""The hook commands against a real server: scaffold, create, ls, show, update,
enable, disable, order, edit, rm, versions, deploy --version, diff, secrets."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from authhooks.points.registry import POINTS
from tests.cli.client import Cli, logged_in
from tests.conftest import Server, unique

CLAIMS = """
def credentials_exchange(client, scope, audience, context):
    print("key is", context["secrets"]["API_KEY"])
    return {"https://example.com/tier": "gold"}
"""


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    return logged_in(server, tmp_path)


def hook(server: Server, name: str) -> dict[str, Any]:
    with server.api() as api:
        found = [h for h in api.get("/hooks", params={"per_page": 100}).json() if h["name"] == name]
    assert len(found) == 1
    return found[0]


def test_scaffold_of_every_point_passes_its_sample_test(cli: Cli, server: Server) -> None:
    for point in POINTS:
        name = unique("scaffolded")
        cli.ok("scaffold", "-t", point, "-o", f"{name}.py")
        assert cli("scaffold", "-t", point, "-o", f"{name}.py").returncode == 2  # no overwrite
        scheduled = ["--schedule", "0 0 1 1 *"] if point == "schedule" else []
        cli.ok("create", "-t", point, "--name", name, *scheduled, f"{name}.py")
        tested = cli("test", name, "--sample")
        assert tested.returncode == 0, (point, tested.stdout, tested.stderr)
        assert "ok" in tested.stdout
        cli.ok("rm", name, "--yes")
    printed = cli.ok("scaffold", "-t", "credentials-exchange").stdout
    assert printed == POINTS["credentials-exchange"].templates["hooks"]
    unknown = cli("scaffold", "-t", "credential-exchange")
    assert unknown.returncode == 2
    assert "did you mean 'credentials-exchange'?" in unknown.stderr


def test_a_scheduled_hook_from_the_command_line(cli: Cli, server: Server) -> None:
    name = unique("nightly")
    cli.ok("scaffold", "-t", "schedule", "-o", "nightly.py")
    refused = cli("create", "-t", "schedule", "--name", name, "nightly.py")
    assert refused.returncode != 0
    assert "schedule is required" in refused.stderr
    bad = cli(
        "create", "-t", "schedule", "--name", name, "--schedule", "* * * * * * *", "nightly.py"
    )
    assert bad.returncode != 0
    assert "has 7 fields" in bad.stderr
    created = cli.ok(
        "create", "-t", "schedule", "--name", name, "--schedule", "30 2 * * *",
        "--timezone", "Europe/Paris", "--catch-up", "nightly.py", "--json",
    )  # fmt: skip
    expected = {"cron": "30 2 * * *", "timezone": "Europe/Paris", "catch_up": True}
    assert json.loads(created.stdout)["schedule"] == expected
    assert "30 2 * * * (Europe/Paris), catching up" in cli.ok("show", name).stdout

    # Only what is named changes; the code stays as it is.
    cli.ok("update", name, "--schedule", "0 3 * * *", "--no-catch-up")
    changed = hook(server, name)
    assert changed["schedule"] == {
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "catch_up": False,
    }
    assert changed["version"] == 1
    (cli.cwd / "nightly.py").write_text(POINTS["schedule"].templates["actions"])
    cli.ok("update", name, "nightly.py", "--timezone", "UTC")
    changed = hook(server, name)
    assert changed["schedule"]["timezone"] == "UTC"
    assert changed["version"] == 2
    assert cli("update", name).returncode != 0  # neither code nor schedule
    cli.ok("rm", name, "--yes")


def test_a_hook_from_creation_to_deletion(cli: Cli, server: Server) -> None:
    name = unique("claims")
    (cli.cwd / "claims.py").write_text(CLAIMS)
    (cli.cwd / ".env").write_text("# for the hook\nexport API_KEY='k-from-file-1'\nOTHER=2\n")
    created = cli.ok(
        "create", "-t", "credentials-exchange", "--name", name, "--secrets-file", ".env",
        "--secret", "EXTRA=x=y", "--enable", "--order", "5", "claims.py", "--json",
    )  # fmt: skip
    stored = json.loads(created.stdout)
    assert stored["enabled"] is True
    assert stored["order"] == 5
    with server.api() as api:
        assert set(api.get(f"/hooks/{stored['id']}/secrets").json()) == {
            "API_KEY",
            "OTHER",
            "EXTRA",
        }

    listed = cli.ok("ls", "-t", "credentials-exchange").stdout
    assert name in listed
    assert stored["id"] in listed  # whole, not cut
    entries = json.loads(cli.ok("ls", "--json").stdout)
    assert any(entry["name"] == name for entry in entries)
    assert all("script" not in entry for entry in entries)

    shown = cli.ok("show", name).stdout
    assert "API_KEY, EXTRA, OTHER" in shown
    assert "k-from-file-1" not in shown
    assert 'print("key is"' in shown

    (cli.cwd / "claims2.py").write_text(CLAIMS.replace("gold", "silver"))
    assert "version 2" in cli.ok("update", name, "claims2.py").stderr
    assert "unchanged" in cli.ok("update", name, "claims2.py").stderr
    versions = json.loads(cli.ok("versions", name, "--json").stdout)
    assert [(v["number"], v["deployed"]) for v in versions] == [(2, True), (1, False)]
    difference = cli.ok("diff", name).stdout
    assert '-    return {"https://example.com/tier": "gold"}' in difference
    assert '+    return {"https://example.com/tier": "silver"}' in difference
    assert "same code" in cli.ok("diff", name, "2", "2").stderr

    cli.ok("deploy", name, "--version", "1")
    assert hook(server, name)["version"] == 1
    assert cli("deploy", name, "--version", "9").returncode == 1

    cli.ok("disable", name)
    assert hook(server, name)["enabled"] is False
    assert name not in cli.ok("ls").stdout  # enabled ones only
    assert name in cli.ok("ls", "--all").stdout
    cli.ok("enable", name)
    assert hook(server, name)["enabled"] is True

    refused = cli("rm", name)  # no terminal to ask on
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert hook(server, name)
    cli.ok("rm", name, "--yes")
    with server.api() as api:
        assert all(h["name"] != name for h in api.get("/hooks", params={"per_page": 100}).json())


@pytest.fixture
def flow(cli: Cli) -> list[str]:
    code = "def post_change_password(user, context):\n    pass\n"
    (cli.cwd / "pcp.py").write_text(code)
    names = [unique("flow") for _ in range(3)]
    for name in names:
        cli.ok("create", "-t", "post-change-password", "--name", name, "--enable", "pcp.py")
    return names


def test_reorder_a_flow_and_enable_exclusively(cli: Cli, server: Server, flow: list[str]) -> None:
    first, second, third = flow
    cli.ok("order", "post-change-password", third, first)
    orders = {name: hook(server, name)["order"] for name in flow}
    assert orders[third] < orders[first]
    listed = json.loads(cli.ok("ls", "-t", "post-change-password", "--json").stdout)
    ours = [h["name"] for h in listed if h["name"] in flow]
    assert ours[:2] == [third, first]
    assert ours[2] == second

    wrong_point = cli("order", "credentials-exchange", first)
    assert wrong_point.returncode == 1
    assert "not a credentials-exchange hook" in wrong_point.stderr

    cli.ok("enable", second, "--exclusive")
    assert [hook(server, name)["enabled"] for name in flow] == [False, True, False]


def test_edit_saves_a_version_only_when_the_file_changed(
    cli: Cli, server: Server, flow: list[str], tmp_path: Path
) -> None:
    name = flow[0]
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text() + '    print(\"edited\")\\n')\n"
    )
    cli.ok("edit", name, env={"EDITOR": f"{sys.executable} {editor}"})
    assert hook(server, name)["version"] == 2
    assert 'print("edited")' in hook(server, name)["script"]

    cli.ok("edit", name, env={"EDITOR": "true"})  # saved unchanged
    assert hook(server, name)["version"] == 2

    breaking = tmp_path / "breaking.py"
    breaking.write_text(
        "import sys, pathlib\n"
        "pathlib.Path(sys.argv[1]).write_text('def post_change_password(:\\n')\n"
    )
    refused = cli("edit", name, env={"EDITOR": f"{sys.executable} {breaking}"})
    assert refused.returncode == 1
    assert "line 1" in refused.stderr
    assert "your edit is kept in" in refused.stderr
    kept = Path(refused.stderr.split("your edit is kept in ")[1].split(")")[0].replace("\n", ""))
    assert kept.read_text() == "def post_change_password(:\n"
    kept.unlink()
    assert hook(server, name)["version"] == 2

    failing_editor = cli("edit", name, env={"EDITOR": "false"})
    assert failing_editor.returncode == 2
    assert "nothing saved" in failing_editor.stderr


def test_secrets_are_set_listed_and_removed_but_never_shown(
    cli: Cli, server: Server, flow: list[str]
) -> None:
    name = flow[0]
    cli.ok("secrets", "set", name, "TOKEN=t-value-1", "URL=https://x.example")
    (cli.cwd / "more.env").write_text('TOKEN="t-value-2"\nREGION=eu\n')
    done = cli.ok("secrets", "set", name, "--from-file", "more.env")
    listed = cli.ok("secrets", "ls", name)
    assert listed.stdout.split() == ["REGION", "TOKEN", "URL"]
    assert json.loads(cli.ok("secrets", "ls", name, "--json").stdout) == ["REGION", "TOKEN", "URL"]
    for output in (done.stdout + done.stderr, listed.stdout + listed.stderr):
        assert "t-value" not in output
    cli.ok("secrets", "rm", name, "URL", "REGION")
    assert cli.ok("secrets", "ls", name).stdout.split() == ["TOKEN"]
    # The new value is the one the hook gets.
    report = server_test(
        server, hook(server, name)["id"], 'print(context["secrets"]["TOKEN"][::-1])'
    )
    assert report["console"][0]["text"] == "2-eulav-t"

    bad = cli("secrets", "set", name, "no-equals-sign")
    assert bad.returncode == 2
    assert "NAME=VALUE" in bad.stderr
    assert "no-equals-sign" not in bad.stderr  # it may have been a value
    refused = cli("secrets", "set", name, "1BAD=x")
    assert refused.returncode == 1
    assert "1BAD" in refused.stderr


def server_test(server: Server, hook_id: str, body: str) -> dict[str, Any]:
    script = f"def post_change_password(user, context):\n    {body}\n"
    with server.api() as api:
        response = api.post(f"/hooks/{hook_id}/test", json={"script": script})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_mistakes_get_one_readable_line(cli: Cli, server: Server, flow: list[str]) -> None:
    close = cli("show", flow[0][:-1])
    assert close.returncode == 1
    assert f"did you mean '{flow[0]}'" in close.stderr
    far = cli("show", "zzzzzzzzzzzzzzzz")
    assert "no hook named 'zzzzzzzzzzzzzzzz'" in far.stderr

    missing = cli("update", flow[0], "nowhere.py")
    assert missing.returncode == 2
    assert "nowhere.py: no such file" in missing.stderr
    (cli.cwd / "latin1.py").write_bytes("# caf\xe9\n".encode("latin-1"))
    binary = cli("update", flow[0], "latin1.py")
    assert binary.returncode == 2
    assert "not UTF-8" in binary.stderr

    (cli.cwd / "broken.py").write_text("def post_change_password(user, context)\n    pass\n")
    refused = cli("create", "-t", "post-change-password", "--name", unique("x"), "broken.py")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: 400")
    assert "line 1" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2

    taken = cli("create", "-t", "post-change-password", "--name", flow[0], "pcp.py")
    assert taken.returncode == 1
    assert "409" in taken.stderr


def test_a_create_that_fails_half_way_leaves_no_hook(cli: Cli, server: Server) -> None:
    (cli.cwd / "pcp.py").write_text("def post_change_password(user, context):\n    pass\n")
    name = unique("half")
    refused = cli(
        "create", "-t", "post-change-password", "--name", name, "--secret", "1BAD=x",
        "--enable", "pcp.py",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "1BAD" in refused.stderr
    with server.api() as api:
        assert all(h["name"] != name for h in api.get("/hooks", params={"per_page": 100}).json())
