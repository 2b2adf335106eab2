"""``authhooks test`` (drafts, versions, events, override secrets, replay, exit codes)
and ``authhooks logs`` (recent, and --follow live, resuming after the server went away)."""

from __future__ import annotations

import json
import os
import selectors
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.client import Cli, logged_in
from tests.conftest import (
    Server,
    create_machine,
    free_port,
    run_server,
    serve_again,
    unique,
)

PRINTER = """
def credentials_exchange(client, scope, audience, context):
    print("called by", client["id"], "with", context["secrets"]["API_KEY"])
    return {"https://example.com/tier": "gold"}
"""
FAILING = """
def credentials_exchange(client, scope, audience, context):
    print("about to fail")
    raise ValueError("no tier for " + client["id"])
"""


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    return logged_in(server, tmp_path)


def create(cli: Cli, code: str, *options: str) -> str:
    name = unique("hook")
    (cli.cwd / f"{name}.py").write_text(code)
    cli.ok("create", "-t", "credentials-exchange", "--name", name, *options, f"{name}.py")
    return name


def test_a_passing_and_a_failing_run(cli: Cli) -> None:
    name = create(cli, PRINTER, "--secret", "API_KEY=stored-key-1")
    passed = cli.ok("test", name)
    assert passed.stdout.startswith("✔ ok")
    assert "version 1" in passed.stdout
    assert "called by" in passed.stdout
    assert "stored-key-1" not in passed.stdout  # redacted
    assert '"https://example.com/tier": "gold"' in passed.stdout

    (cli.cwd / "failing.py").write_text(FAILING)
    failed = cli("test", name, "--file", "failing.py")
    assert failed.returncode == 1
    assert "✘" in failed.stdout
    assert "ValueError: no tier for" in failed.stdout
    assert "about to fail" in failed.stdout
    assert 'hook.py", line 4' in failed.stdout  # the hook's own line, no server paths

    report = json.loads(cli("test", name, "--file", "failing.py", "--json").stdout)
    assert report["outcome"] != "ok"
    assert report["version"] is None


def test_drafts_versions_events_and_override_secrets(cli: Cli, server: Server) -> None:
    name = create(cli, PRINTER, "--secret", "API_KEY=stored-key-2")
    (cli.cwd / "draft.py").write_text(PRINTER.replace("gold", "platinum"))
    (cli.cwd / "event.json").write_text(
        json.dumps(
            {
                "client": {"id": "from-the-event", "name": "worker"},
                "scope": ["read:x"],
                "audience": "https://api.example.com/",
            }
        )
    )
    report = json.loads(
        cli.ok(
            "test",
            name,
            "--file",
            "draft.py",
            "--event",
            "event.json",
            "--secret",
            "API_KEY=override-value",
            "--json",
        ).stdout
    )
    assert report["result"]["claims"]["https://example.com/tier"] == "platinum"
    assert report["console"][0]["text"] == "called by from-the-event with ***"
    # The stored hook did not change: neither its code nor its secret.
    stored = json.loads(cli.ok("show", name, "--json").stdout)
    assert stored["version"] == 1
    assert "gold" in stored["script"]
    plain = json.loads(cli.ok("test", name, "--version", "1", "--json").stdout)
    assert plain["result"]["claims"]["https://example.com/tier"] == "gold"

    (cli.cwd / "bad-event.json").write_text('{"client": {}}')
    refused = cli("test", name, "--event", "bad-event.json")
    assert refused.returncode == 1
    assert "event.client" in refused.stderr
    (cli.cwd / "not-json.json").write_text("{")
    assert cli("test", name, "--event", "not-json.json").returncode == 2
    assert cli("test", name, "--sample", "--replay", "inv_x").returncode == 2
    assert cli("test", name, "--file", "draft.py", "--version", "1").returncode == 2


def test_replay_of_a_captured_production_event(cli: Cli, server: Server) -> None:
    name = create(cli, PRINTER, "--secret", "API_KEY=k-replay", "--capture-events", "--enable")
    machine = create_machine(server)
    try:
        response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
        assert response.status_code == 200, response.text
        hook_id = json.loads(cli.ok("show", name, "--json").stdout)["id"]
        record = wait_for_record(server, hook_id)
        replayed = cli.ok("test", name, "--replay", record["id"], "--json")
        report = json.loads(replayed.stdout)
        assert report["console"][0]["text"] == f"called by {machine.client_id} with ***"
        assert cli("test", name, "--replay", "inv_000000000000000000000000").returncode == 1
    finally:
        cli.ok("disable", name)


def wait_for_record(server: Server, hook_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    with server.api() as api:
        while time.monotonic() < deadline:
            found = api.get("/logs", params={"hook_id": hook_id}).json()["logs"]
            production = [record for record in found if not record["test"]]
            if production:
                return production[0]
            time.sleep(0.1)
    raise AssertionError("no record")


def test_logs_lists_recent_invocations_with_their_lines(cli: Cli) -> None:
    name = create(cli, PRINTER, "--secret", "API_KEY=k-logs")
    cli.ok("test", name)
    (cli.cwd / "failing.py").write_text(FAILING)
    cli("test", name, "--file", "failing.py")
    shown = cli.ok("logs", name).stdout
    lines = shown.splitlines()
    first = next(i for i, line in enumerate(lines) if name in line and " ok " in line)
    assert "called by" in lines[first + 1]
    assert any("about to fail" in line for line in lines[first:])
    assert any("no tier for" in line for line in lines[first:])
    records = json.loads(cli.ok("logs", name, "--json", "--take", "5").stdout)
    assert [r["outcome"] == "ok" for r in records] == [True, False]  # oldest first
    assert cli("logs", "--take", "0").returncode == 2
    assert cli("logs", "-t", "nope").returncode == 2


class Follower:
    """``authhooks logs --follow`` running, its output read as it comes."""

    def __init__(self, cli: Cli, *args: str) -> None:
        self.process = cli.popen("logs", "--follow", *args)
        self.selector = selectors.DefaultSelector()
        self.seen = {"stdout": "", "stderr": ""}
        for name in self.seen:
            pipe = getattr(self.process, name)
            os.set_blocking(pipe.fileno(), False)
            self.selector.register(pipe, selectors.EVENT_READ, name)
        self.wait_for("following hook invocations", stream="stderr")  # connected

    def wait_for(self, text: str, timeout: float = 20, stream: str = "stdout") -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen[stream] and time.monotonic() < deadline:
            for key, _ in self.selector.select(timeout=0.2):
                self.seen[key.data] += key.fileobj.read() or ""  # type: ignore[union-attr]
            assert self.process.poll() is None, self.seen
        assert text in self.seen[stream], self.seen
        return self.seen[stream]

    def stop(self) -> str:
        """Everything it wrote on stderr."""
        self.process.terminate()
        _, errors = self.process.communicate(timeout=10)
        return self.seen["stderr"] + errors


def test_follow_prints_an_invocation_made_while_it_runs(cli: Cli) -> None:
    name = create(cli, PRINTER, "--secret", "API_KEY=k-follow")
    follower = Follower(cli, name)
    try:
        cli.ok("test", name)
        seen = follower.wait_for("└ ok")
        assert name in seen
        assert "called by" in seen
        assert "k-follow" not in seen
    finally:
        errors = follower.stop()
    assert "following hook invocations" in errors


def test_follow_resumes_after_the_server_went_away(backend: str, tmp_path: Path) -> None:
    """The follower's server stops; an invocation is stored meanwhile (through another
    process on the same database); the server comes back on the same port, and the
    follower prints the invocation it missed."""
    with run_server(tmp_path, backend) as server:
        follow_across_a_restart(server, tmp_path)


def follow_across_a_restart(server: Server, tmp_path: Path) -> None:
    cli = logged_in(server, tmp_path)
    name = create(cli, PRINTER, "--secret", "API_KEY=k-resume")
    port = free_port()
    with serve_again(server, tmp_path, port=port, log_stream_heartbeat=0.5) as second:
        follower = Follower(logged_in(second, tmp_path / "follower"), name)
        try:
            first = json.loads(cli.ok("test", name, "--json").stdout)["invocation_id"]
            follower.wait_for(first)
            assert second.process is not None
            second.process.terminate()
            second.process.wait(timeout=15)
            # Stored while the follower is cut off:
            missed = json.loads(cli.ok("test", name, "--json").stdout)["invocation_id"]
            with serve_again(server, tmp_path, port=port, log_stream_heartbeat=0.5):
                seen = follower.wait_for(missed, timeout=30)
                time.sleep(1)  # anything printed twice would be by now
                seen = follower.wait_for(missed)
            assert seen.count(first) == 1
            assert seen.count(missed) == 1
        finally:
            errors = follower.stop()
    assert "reconnecting" in errors


def test_follow_stops_when_its_access_is_taken_away(server: Server, tmp_path: Path) -> None:
    """Its grant revoked, the follower says so and exits, rather than reconnect forever."""
    with server.api() as api:
        client = api.post("/clients", json={"name": unique("follower")}).json()
        grant = api.post(
            "/client-grants",
            json={
                "client_id": client["client_id"],
                "audience": server.management_audience,
                "scope": ["read:hooks", "read:logs"],
            },
        )
        assert grant.status_code == 201, grant.text
    cli = Cli(tmp_path / "config", tmp_path)
    cli.ok(
        "login",
        "--url",
        server.url,
        "--client-id",
        client["client_id"],
        "--audience",
        server.management_audience,
        env={"AUTHHOOKS_CLIENT_SECRET": client["client_secret"]},
    )
    follower = Follower(cli)
    try:
        with server.api() as api:
            assert api.delete(f"/client-grants/{grant.json()['id']}").status_code == 204
        _, errors = follower.process.communicate(timeout=15)
    finally:
        if follower.process.poll() is None:
            follower.process.kill()
            follower.process.communicate()
    assert follower.process.returncode == 4
    assert "grant was revoked" in errors
    assert "reconnecting" not in errors
