"""``authhooks points``: declare a point from a spec file, list it, change it,
invoke it (the answer printed; a refusal or a bad event exits 1 saying why) and
delete it with its hooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.client import Cli, logged_in
from tests.conftest import Server, unique

SPEC = {
    "description": "Price a quote",
    "blocking": True,
    "event_schema": {
        "type": "object",
        "required": ["quantity"],
        "properties": {"quantity": {"type": "integer", "minimum": 1}},
    },
}


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    return logged_in(server, tmp_path / "cli")


def test_a_point_declared_invoked_changed_and_deleted(cli: Cli, tmp_path: Path) -> None:
    point = unique("quote")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"id": point, **SPEC}))
    declared = cli.ok("points", "declare", str(spec))
    assert f"invoke:points:{point}" in declared.stderr
    again = cli("points", "declare", str(spec))
    assert again.returncode == 1
    assert "exists" in again.stderr

    listed = cli.ok("points", "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(point))
    assert "blocking" in row
    assert "declared" in row
    assert "built in" in next(
        line for line in listed.stdout.splitlines() if line.startswith("credentials-exchange")
    )

    hook = tmp_path / "quote.py"
    function = point.replace("-", "_")
    hook.write_text(
        f"from authhooks.hook import HookError\n\ndef {function}(event, context):\n"
        "    if event['quantity'] > 100:\n        raise HookError('too many')\n"
        "    return {'price': 2 * event['quantity']}\n"
    )
    cli.ok("create", str(hook), "--name", unique("price"), "--trigger", point, "--enable")

    answered = cli.ok("points", "invoke", point, '{"quantity": 4}')
    assert json.loads(answered.stdout) == {"result": {"price": 8}}
    refused = cli("points", "invoke", point, '{"quantity": 400}')
    assert refused.returncode == 1
    assert "access_denied: too many" in refused.stderr
    bad = cli("points", "invoke", point, '{"quantity": 0}')
    assert bad.returncode == 1
    assert "at /quantity" in bad.stderr
    event_file = tmp_path / "event.json"
    event_file.write_text('{"quantity": 1}')
    assert json.loads(cli.ok("points", "invoke", point, f"@{event_file}").stdout) == {
        "result": {"price": 2}
    }

    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"description": "Price a quote, in euros"}))
    cli.ok("points", "update", point, str(changes))
    assert json.loads(cli.ok("points", "show", point).stdout)["description"] == (
        "Price a quote, in euros"
    )

    in_use = cli("points", "delete", point)
    assert in_use.returncode == 1
    assert "force" in in_use.stderr
    cli.ok("points", "delete", point, "--force")
    assert cli("points", "show", point).returncode == 1
