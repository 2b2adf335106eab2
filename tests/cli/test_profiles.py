"""``authhooks login``, ``logout``, ``profiles``, the token cache, the environment's
overrides, and the failures a user meets before reaching a hook."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from typer.testing import CliRunner

from authhooks.cli.main import app
from tests.cli.client import Cli, logged_in
from tests.conftest import Server, free_port


def test_login_saves_a_private_profile_and_caches_its_token(server: Server, tmp_path: Path) -> None:
    cli = logged_in(server, tmp_path, profile="local")
    folder = cli.config / "authhooks"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("profiles.json", "tokens.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    saved = json.loads((folder / "profiles.json").read_text())["profiles"]["local"]
    assert saved["url"] == server.url
    assert saved["client_id"] == server.admin_id

    listed = cli.ok("profiles")
    assert "local" in listed.stdout
    assert server.url in listed.stdout
    assert server.admin_secret not in listed.stdout + listed.stderr
    assert json.loads(cli.ok("profiles", "--json").stdout) == [
        {"name": "local", "url": server.url, "client_id": server.admin_id}
    ]

    # The cached token is used: listing hooks needs no new one.
    tokens = (folder / "tokens.json").read_text()
    cli.ok("ls", "--all", "--profile", "local")
    assert (folder / "tokens.json").read_text() == tokens

    # One the server no longer takes is replaced, and the command still works.
    cache = json.loads(tokens)
    for entry in cache.values():
        entry["access_token"] = "not-a-token"
    (folder / "tokens.json").write_text(json.dumps(cache))
    cli.ok("ls", "--all", "--profile", "local")
    assert "not-a-token" not in (folder / "tokens.json").read_text()

    # One about to expire is not used.
    cache = json.loads((folder / "tokens.json").read_text())
    old = next(iter(cache.values()))["access_token"]
    for entry in cache.values():
        entry["expires_at"] = time.time() + 5
    (folder / "tokens.json").write_text(json.dumps(cache))
    cli.ok("ls", "--all", "--profile", "local")
    assert old not in (folder / "tokens.json").read_text()

    cli.ok("logout", "--profile", "local")
    assert "local" not in json.loads((folder / "profiles.json").read_text())["profiles"]
    assert cli("ls", "--profile", "local").returncode == 4


def test_the_environment_is_enough_for_ci(server: Server, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "config", tmp_path)
    missing = cli("ls")
    assert missing.returncode == 4
    assert "no profile named 'default'" in missing.stderr
    assert "authhooks login" in missing.stderr
    environment = {
        "AUTHHOOKS_URL": server.url,
        "AUTHHOOKS_CLIENT_ID": server.admin_id,
        "AUTHHOOKS_CLIENT_SECRET": server.admin_secret,
    }
    assert cli("ls", "--all", env=environment).returncode == 0
    assert not (tmp_path / "config" / "authhooks" / "profiles.json").exists()


def test_bad_credentials_and_unreachable_servers_are_one_clear_line(
    server: Server, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "config", tmp_path)
    refused = cli(
        "login", "--url", server.url, "--client-id", server.admin_id, "--client-secret", "wrong"
    )
    assert refused.returncode == 4
    assert "refused the credentials" in refused.stderr
    assert "401" in refused.stderr
    assert not (tmp_path / "config" / "authhooks" / "profiles.json").exists()

    port = free_port()  # nothing listens there
    unreachable = cli(
        "login", "--url", f"http://127.0.0.1:{port}", "--client-id", "x", "--client-secret", "y"
    )
    assert unreachable.returncode == 3
    assert f"cannot reach http://127.0.0.1:{port}" in unreachable.stderr
    assert "refused" in unreachable.stderr.lower()

    assert (
        cli("login", "--url", "ftp://x", "--client-id", "x", "--client-secret", "y").returncode == 2
    )

    # Credentials that worked and stopped working: the profile stays, the error says why.
    cli = logged_in(server, tmp_path / "two")
    folder = cli.config / "authhooks"
    document = json.loads((folder / "profiles.json").read_text())
    document["profiles"]["default"]["client_secret"] = "revoked"
    (folder / "profiles.json").write_text(json.dumps(document))
    (folder / "tokens.json").unlink()
    expired = cli("ls")
    assert expired.returncode == 4
    assert "refused the credentials of profile 'default'" in expired.stderr


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for command in [
        "login", "logout", "profiles", "scaffold", "create", "ls", "show", "update", "enable",
        "disable", "order", "edit", "rm", "versions", "deploy", "diff", "export", "test", "logs",
        "secrets ls", "secrets set", "secrets rm",
    ]:  # fmt: skip
        shown = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, (command, shown.output)
        assert "Example" in shown.output, command
