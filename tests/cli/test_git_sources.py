"""`authhooks git`: git sources from the command line, against a real server that
fetches from a real repository (file://, allowed by the server's setting)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.client import Cli, logged_in
from tests.conftest import Server, run_server, unique
from tests.gitsync.repos import Repo, hook_named, signed_ping
from tests.gitsync.ssh_server import keypair


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("git-cli"), "sqlite", git_allow_local_repositories="true"
    ) as running:
        yield running


@pytest.fixture
def cli(git_server: Server, tmp_path: Path) -> Cli:
    return logged_in(git_server, tmp_path / "cli")


def _added(cli: Cli, name: str, repository: str, *extra: str) -> tuple[str, str]:
    """``git add``'s webhook URL and secret, from its output."""
    result = cli.ok("git", "add", name, repository, *extra)
    assert "shown this once" in result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return lines["webhook URL"].strip(), lines["webhook secret"].strip()


def test_add_shows_the_secret_once_and_list_and_show_never_again(cli: Cli, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    name = unique("src")
    url, secret = _added(cli, name, repo.url, "--branch", "main")
    assert url.endswith("/git/webhooks/" + url.rsplit("/", 1)[1])
    assert len(secret) >= 32
    assert signed_ping(url, secret) == 200

    listed = cli.ok("git", "list")
    assert name in listed.stdout
    assert repo.url in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if name in line)
    assert row.rstrip().endswith("none")  # no deployment yet
    shown = cli.ok("git", "show", name)
    assert url in shown.stdout
    assert "webhooks only" in shown.stdout
    assert "no deployments yet" in shown.stdout
    as_json = cli.ok("git", "list", "--json").stdout + cli.ok("git", "show", name, "--json").stdout
    for output in (listed.stdout, shown.stdout, as_json):
        assert secret not in output
    found = next(s for s in json.loads(cli.ok("git", "list", "--json").stdout) if s["name"] == name)
    assert found["webhook_secret"] is None
    assert found["last_deployment"] is None

    polled = unique("src")
    _added(cli, polled, repo.url, "--poll-interval", "300")
    assert "every 300 s" in cli.ok("git", "show", polled).stdout

    # A name already taken is the server's refusal: exit 1, its words.
    again = cli("git", "add", name, repo.url)
    assert again.returncode == 1, again
    assert again.stderr.startswith("error: 409")


def test_sync_wait_reports_the_changes_and_versions_name_the_commit(
    cli: Cli, tmp_path: Path, git_server: Server
) -> None:
    repo = Repo(tmp_path / "repo")
    hook = unique("from-git")
    repo.hook(hook, "first")
    sha = repo.push("Add the first hook")
    source = unique("src")
    _added(cli, source, repo.url)

    synced = cli.ok("git", "sync", source, "--wait")
    assert f"succeeded at {sha[:12]} (Add the first hook)" in synced.stdout
    assert f"created {hook}" in synced.stdout

    versions = cli.ok("versions", hook)
    assert "COMMIT" in versions.stdout
    assert sha[:12] in versions.stdout
    as_json = json.loads(cli.ok("versions", hook, "--json").stdout)
    assert as_json[0]["commit"] == sha
    deployments = cli.ok("git", "deployments", source)
    assert "succeeded" in deployments.stdout
    assert sha[:12] in deployments.stdout
    assert "Ada Pusher <ada@example.com>" in deployments.stdout
    assert f"created {hook}" in deployments.stdout
    shown = cli.ok("git", "show", source)
    assert hook in shown.stdout
    assert "Recent deployments" in shown.stdout
    row = next(line for line in cli.ok("git", "list").stdout.splitlines() if source in line)
    assert "succeeded" in row
    assert sha[:12] in row

    # The hook is the source's: the CLI says the server's refusal, and exits 1.
    refused = cli("rm", hook, "--yes")
    assert refused.returncode == 1
    assert "managed by git source" in refused.stderr

    # Without --wait: queued, and told where to look.
    queued = cli.ok("git", "sync", source)
    assert "queued" in queued.stderr


def test_a_failing_deployment_is_reported_with_its_error_and_exit_code(
    cli: Cli, tmp_path: Path, git_server: Server
) -> None:
    repo = Repo(tmp_path / "repo")
    hook = unique("broken")
    repo.hook(hook, "good")
    repo.push("a good hook")
    source = unique("src")
    _added(cli, source, repo.url)
    cli.ok("git", "sync", source, "--wait")
    before = hook_named(git_server, hook)
    assert before is not None

    repo.write(f"hooks/{hook}.py", "def credentials_exchange(client, scope:\n")
    sha = repo.push("a broken hook")
    failed = cli("git", "sync", source, "--wait")
    assert failed.returncode == 1, failed
    assert f"failed at {sha[:12]}" in failed.stdout
    assert f"error: hooks/{hook}.py" in failed.stdout
    assert hook_named(git_server, hook) == before  # nothing live changed

    as_json = cli("git", "sync", source, "--wait", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["status"] == "failed"
    listed = cli.ok("git", "deployments", source, "--take", "1", "--json")
    assert [d["status"] for d in json.loads(listed.stdout)] == ["failed"]


def test_rotate_secret_shows_the_new_one_once_and_the_old_one_stops(
    cli: Cli, tmp_path: Path
) -> None:
    name = unique("src")
    url, old = _added(cli, name, Repo(tmp_path / "repo").url)
    rotated = cli.ok("git", "rotate-secret", name)
    assert "shown this once" in rotated.stderr
    new = rotated.stdout.split("webhook secret:", 1)[1].split()[0]
    assert new != old
    assert signed_ping(url, new) == 200
    assert signed_ping(url, old) == 401
    assert new not in cli.ok("git", "show", name, "--json").stdout


def test_credentials_come_from_stdin_or_a_file_and_are_never_shown(
    cli: Cli, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    token = "ghp_" + unique("tok").replace("-", "")
    name = unique("src")
    added = cli.process("git", "add", name, repo.url, "--token-from-stdin", input=token + "\n")
    assert added.returncode == 0, added.stderr
    shown = cli.ok("git", "show", name, "--json").stdout
    assert json.loads(shown)["credentials"] == {"kind": "token"}
    assert token not in added.stdout + added.stderr + shown

    key_text = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    key = tmp_path / "deploy_key"
    key.write_text(key_text)
    with_key = unique("src")
    over_ssh = "git@example.com:acme/hooks.git"
    unpinned = cli("git", "add", with_key, over_ssh, "--ssh-key", str(key))
    assert unpinned.returncode == 1
    assert "ssh_known_hosts: required for an ssh repository" in unpinned.stderr
    known_hosts = tmp_path / "known_hosts"
    host_key = keypair(tmp_path / "host")[1].rsplit(" ", 1)[0]
    known_hosts.write_text(f"example.com {host_key}\n")
    cli.ok(
        "git", "add", with_key, over_ssh, "--ssh-key", str(key), "--known-hosts", str(known_hosts)
    )
    shown = cli.ok("git", "show", with_key, "--json").stdout
    assert json.loads(shown)["credentials"] == {"kind": "ssh_private_key"}
    assert json.loads(shown)["ssh_known_hosts"] == f"example.com {host_key}\n"
    assert "not-a-real-key" not in shown

    empty = cli.process("git", "add", unique("src"), repo.url, "--token-from-stdin", input="")
    assert empty.returncode == 2
    assert "no token" in empty.stderr
    both = cli("git", "add", unique("src"), repo.url, "--token-from-stdin", "--ssh-key", str(key))
    assert both.returncode == 2
    missing = cli("git", "add", unique("src"), repo.url, "--ssh-key", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_detach_and_remove_leave_the_hooks_editable(
    cli: Cli, tmp_path: Path, git_server: Server
) -> None:
    repo = Repo(tmp_path / "repo")
    kept, other = unique("kept"), unique("other")
    repo.hook(kept, "a")
    repo.hook(other, "b")
    repo.push("two hooks")
    detached, removed = unique("src"), unique("src")
    _added(cli, detached, repo.url)
    cli.ok("git", "sync", detached, "--wait")

    result = cli.ok("git", "detach", detached)
    assert kept in result.stderr
    assert other in result.stderr
    cli.ok("disable", kept)  # hand-made now
    assert json.loads(cli.ok("git", "show", detached, "--json").stdout)["hooks"] == []

    # Another source takes them over? No: a name clash; remove it, its record goes.
    _added(cli, removed, repo.url)
    assert cli("git", "sync", removed, "--wait").returncode == 1
    without_yes = cli("git", "remove", removed)
    assert without_yes.returncode == 2
    assert "--yes" in without_yes.stderr
    cli.ok("git", "remove", removed, "--yes")
    assert removed not in cli.ok("git", "list").stdout
    assert hook_named(git_server, other) is not None


def test_an_unknown_source_is_an_error_naming_the_close_ones(cli: Cli, tmp_path: Path) -> None:
    name = unique("identity-hooks")
    _added(cli, name, Repo(tmp_path / "repo").url)
    result = cli("git", "show", name + "x")
    assert result.returncode == 1
    assert "no git source named" in result.stderr
    assert repr(name) in result.stderr
