"""``authhooks export`` and ``authhooks deploy DIR``: a fresh server gets the same
hooks, a second deploy changes nothing, and a bad directory changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import update

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.cli.client import logged_in
from tests.conftest import Server, run_server, unique

TIER = """
def credentials_exchange(client, scope, audience, context):
    return {"https://example.com/tier": context["secrets"]["TIER"]}
"""
NOTIFY = """
def post_user_registration(user, context):
    print("welcome", user["user_id"])
"""
SETTINGS = ("triggerId", "enabled", "order", "timeout_ms", "on_error", "egress", "capture_events")


def state(server: Server) -> dict[str, dict[str, Any]]:
    """Each hook by name: its settings, code and secret names."""
    with server.api() as api:
        hooks = api.get("/hooks", params={"per_page": 100}).json()
        return {
            hook["name"]: {
                **{setting: hook[setting] for setting in SETTINGS},
                "script": hook["script"],
                "secrets": sorted(api.get(f"/hooks/{hook['id']}/secrets").json()),
            }
            for hook in hooks
        }


def test_an_exported_directory_deploys_to_a_fresh_server(server: Server, tmp_path: Path) -> None:
    source = logged_in(server, tmp_path / "source")
    (source.cwd / "tier.py").write_text(TIER)
    (source.cwd / "notify.py").write_text(NOTIFY)
    source.ok(
        "create", "-t", "credentials-exchange", "--name", "code-tier", "--secret", "TIER=gold",
        "--order", "7", "--timeout-ms", "3000", "--on-error", "continue", "--egress",
        "api.example.com", "tier.py",
    )  # fmt: skip
    source.ok(
        "create", "-t", "post-user-registration", "--name", "code-notify", "--enable",
        "--secret", "SLACK_URL=https://hooks.slack.example/1", "notify.py",
    )  # fmt: skip
    source.ok("export", "identity")
    folder = source.cwd / "identity" / "hooks"
    assert {path.name for path in folder.iterdir()} >= {
        "code-notify.json", "code-notify.py", "code-tier.json", "code-tier.py",
    }  # fmt: skip
    declared = json.loads((folder / "code-tier.json").read_text())
    assert declared["secrets"] == {"TIER": "$TIER"}
    assert declared["egress"] == ["api.example.com:443"]
    exported = (source.cwd / "identity").as_posix()
    for path in folder.iterdir():  # only the two hooks made here
        if not path.stem.startswith("code-"):
            path.unlink()
    assert "gold" not in "".join(path.read_text() for path in folder.iterdir())

    (tmp_path / "fresh").mkdir()
    with run_server(tmp_path / "fresh", server.backend) as fresh:
        target = logged_in(fresh, tmp_path / "target")
        secrets = {"TIER": "gold", "SLACK_URL": "https://hooks.slack.example/1"}
        missing = target("deploy", exported)
        assert missing.returncode == 2
        assert "$SLACK_URL is not set" in missing.stderr or "$TIER is not set" in missing.stderr
        assert state(fresh) == {}

        planned = target("deploy", exported, "--dry-run", env=secrets)
        assert planned.returncode == 0
        assert "+ create code-tier" in planned.stdout
        assert "plan: 2 to create" in planned.stdout
        assert state(fresh) == {}  # a dry run changes nothing

        target.ok("deploy", exported, env=secrets)
        source_state = {k: v for k, v in state(server).items() if k.startswith("code-")}
        assert state(fresh) == source_state

        again = target.ok("deploy", exported, env=secrets)
        assert "plan: no changes; 2 unchanged" in again.stdout

        # The deployed secret values are the environment's.
        with fresh.api() as api:
            tier = next(h for h in api.get("/hooks").json() if h["name"] == "code-tier")
            report = api.post(f"/hooks/{tier['id']}/test", json={}).json()
        assert report["outcome"] == "ok", report
        assert report["result"]["claims"]["https://example.com/tier"] == "***"  # redacted gold


def test_deploy_applies_changes_and_prunes(server: Server, tmp_path: Path) -> None:
    cli = logged_in(server, tmp_path)
    folder = tmp_path / "repo" / "hooks"
    folder.mkdir(parents=True)
    (folder / "prune-tier.py").write_text(TIER)
    write_json(folder / "prune-tier.json", {"triggerId": "credentials-exchange"})
    (folder / "prune-extra.py").write_text(TIER)
    write_json(folder / "prune-extra.json", {"triggerId": "credentials-exchange"})
    cli.ok("deploy", str(tmp_path / "repo"))
    cli.ok("secrets", "set", "prune-tier", "MANUAL=1")

    (folder / "prune-tier.py").write_text(TIER.replace("TIER", "LEVEL"))
    write_json(
        folder / "prune-tier.json",
        {"triggerId": "credentials-exchange", "order": 3, "secrets": {"LEVEL": "$LEVEL"}},
    )
    (folder / "prune-extra.py").unlink()
    (folder / "prune-extra.json").unlink()
    planned = cli.ok("deploy", str(tmp_path / "repo"), "--dry-run", env={"LEVEL": "silver"})
    assert "code (new version after 1)" in planned.stdout
    assert "order 0 → 3" in planned.stdout
    assert "prune-extra" not in planned.stdout  # not without --prune

    pruning = cli.ok("deploy", str(tmp_path / "repo"), "--prune", env={"LEVEL": "silver"})
    assert "- delete prune-extra" in pruning.stdout
    assert "remove secrets MANUAL" in pruning.stdout
    now = state(server)
    assert "prune-extra" not in now
    assert now["prune-tier"]["order"] == 3
    assert now["prune-tier"]["secrets"] == ["LEVEL"]
    assert "LEVEL" in now["prune-tier"]["script"]
    for name in now:  # leave the module's server as other tests expect it
        if name.startswith("prune-"):
            cli.ok("rm", name, "--yes")


def test_a_bad_directory_changes_nothing(server: Server, tmp_path: Path) -> None:
    cli = logged_in(server, tmp_path)
    before = state(server)
    repo = tmp_path / "repo"
    folder = repo / "hooks"
    folder.mkdir(parents=True)
    (folder / "bad-one.py").write_text(TIER)
    write_json(folder / "bad-one.json", {"triggerId": "credentials-exchange"})
    (folder / "bad-two.py").write_text(TIER)
    cases: list[tuple[Any, str]] = [
        ({"triggerId": "credentials-exchange", "order": "first"}, "bad-two.json: order:"),
        ({"triggerId": "credential-exchange"}, "bad-two.json: triggerId: unknown point"),
        ({"triggerId": "credentials-exchange", "colour": 1}, "bad-two.json: colour: Extra"),
        ({"triggerId": "credentials-exchange", "secrets": {"K": "v"}}, "never the value"),
        ({"triggerId": "credentials-exchange", "egress": ["10.0.0.1"]}, "bad-two.json: egress"),
        ({}, "bad-two.json: triggerId: Field required"),
    ]
    for document, message in cases:
        write_json(folder / "bad-two.json", document)
        refused = cli("deploy", str(repo))
        assert refused.returncode == 2, document
        assert message in refused.stderr, (document, refused.stderr)
        assert state(server) == before
    (folder / "bad-two.json").write_text("{not json")
    assert "bad-two.json: not JSON" in cli("deploy", str(repo)).stderr
    (folder / "bad-two.json").unlink()
    assert "bad-two.py has no bad-two.json beside it" in cli("deploy", str(repo)).stderr
    (folder / "bad-two.py").unlink()
    (folder / "bad-one.py").unlink()
    assert "its code bad-one.py or bad-one.js is missing" in cli("deploy", str(repo)).stderr
    shutil.rmtree(folder)
    assert "no such directory" in cli("deploy", str(repo)).stderr
    assert "give --version N" in cli("deploy", "some-hook-name").stderr
    assert state(server) == before


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document))


def test_a_refused_change_stops_the_deploy_and_a_fixed_directory_goes_on(
    server: Server, tmp_path: Path
) -> None:
    cli = logged_in(server, tmp_path)
    repo = tmp_path / "repo"
    folder = repo / "hooks"
    folder.mkdir(parents=True)
    for name in ("partial-a", "partial-b", "partial-c"):
        (folder / f"{name}.py").write_text(TIER)
        write_json(folder / f"{name}.json", {"triggerId": "credentials-exchange"})
    (folder / "partial-b.py").write_text("def credentials_exchange(:\n")  # does not load
    refused = cli("deploy", str(repo))
    assert refused.returncode == 1
    assert "create partial-b:" in refused.stderr
    assert "line 1" in refused.stderr
    assert "1 of 3 changes were applied" in refused.stderr
    assert {"partial-a"} == {name for name in state(server) if name.startswith("partial-")}

    (folder / "partial-b.py").write_text(TIER)
    resumed = cli.ok("deploy", str(repo))
    assert "plan: 2 to create; 1 unchanged" in resumed.stdout
    assert {"partial-a", "partial-b", "partial-c"} <= set(state(server))

    # An export into the same directory mirrors the server: a hook deleted there
    # leaves no files a later deploy would bring back.
    cli.ok("rm", "partial-c", "--yes")
    exported = cli.ok("export", str(repo))
    assert "removed 2 stale file(s): partial-c.json, partial-c.py" in exported.stderr
    assert not (folder / "partial-c.py").exists()
    for name in ("partial-a", "partial-b"):
        cli.ok("rm", name, "--yes")


def test_export_refuses_a_hook_name_that_is_not_a_file_name(server: Server, tmp_path: Path) -> None:
    cli = logged_in(server, tmp_path / "cli")
    (cli.cwd / "tier.py").write_text(TIER)
    name = unique("escape")
    cli.ok("create", "-t", "credentials-exchange", "--name", name, "tier.py")
    with server.api() as api:
        (hook,) = [
            h for h in api.get("/hooks", params={"per_page": 100}).json() if h["name"] == name
        ]
    # The API refuses such a name; a server of another version, or a compromised
    # one, may still send it.
    database = Database(server.database_url)
    try:
        with database.session() as session:
            session.execute(
                update(models.Hook).where(models.Hook.id == hook["id"]).values(name="../../escaped")
            )
        out = tmp_path / "out"
        refused = cli("export", str(out))
        assert refused.returncode == 1, refused
        assert "a hook named '../../escaped', which is not a hook name" in refused.stderr
        assert not (tmp_path / "escaped.py").exists()
        assert not (tmp_path / "escaped.json").exists()
        assert list((out / "hooks").iterdir()) == []  # nothing at all was written
    finally:
        with server.api() as api:
            api.delete(f"/hooks/{hook['id']}")
        database.dispose()


def test_deploy_refuses_a_file_whose_name_is_not_a_hook_name(
    server: Server, tmp_path: Path
) -> None:
    cli = logged_in(server, tmp_path)
    before = state(server)
    folder = tmp_path / "repo" / "hooks"
    folder.mkdir(parents=True)
    # A name that ends in a newline passes a ^...$ pattern with re.match.
    (folder / "odd\n.py").write_text(TIER)
    write_json(folder / "odd\n.json", {"triggerId": "credentials-exchange"})
    refused = cli("deploy", str(tmp_path / "repo"))
    assert refused.returncode == 2, refused
    assert "'odd\\n' is not a hook name" in refused.stderr
    assert state(server) == before


TICK = """
def schedule(event, context):
    print("tick", event["scheduled_at"])
"""


def test_a_scheduled_hook_deploys_and_exports_with_its_schedule(
    server: Server, tmp_path: Path
) -> None:
    cli = logged_in(server, tmp_path)
    repo = tmp_path / "repo"
    folder = repo / "hooks"
    folder.mkdir(parents=True)
    name = unique("code-tick")
    (folder / f"{name}.py").write_text(TICK)
    for document, message in [
        ({"triggerId": "schedule"}, f"{name}.json: the document: a hook of point 'schedule' needs"),
        (
            {"triggerId": "schedule", "schedule": {"cron": "* * * * * * *"}},
            f"{name}.json: schedule: cron '* * * * * * *' has 7 fields",
        ),
        (
            {"triggerId": "schedule", "schedule": {"cron": "0 4 * * *", "timezone": "Moon/Base"}},
            "is not a time zone",
        ),
    ]:
        write_json(folder / f"{name}.json", document)
        refused = cli("deploy", str(repo))
        assert refused.returncode == 2, document
        assert message in refused.stderr, (document, refused.stderr)
        assert name not in state(server)

    nightly = {"cron": "0 4 * * *", "timezone": "Asia/Tokyo", "catch_up": True}
    write_json(folder / f"{name}.json", {"triggerId": "schedule", "schedule": nightly})
    cli.ok("deploy", str(repo))
    with server.api() as api:
        (hook,) = [
            h for h in api.get("/hooks", params={"per_page": 100}).json() if h["name"] == name
        ]
    assert hook["schedule"] == nightly

    weekly = {"cron": "0 4 * * MON", "timezone": "Asia/Tokyo", "catch_up": False}
    write_json(folder / f"{name}.json", {"triggerId": "schedule", "schedule": weekly})
    planned = cli.ok("deploy", str(repo), "--dry-run")
    assert "schedule '0 4 * * * (Asia/Tokyo)' → '0 4 * * MON (Asia/Tokyo)'" in planned.stdout
    cli.ok("deploy", str(repo))
    # Written with other spaces, it is the schedule the server stores: no change.
    spaced = {**weekly, "cron": " 0  4 * *\tMON "}
    write_json(folder / f"{name}.json", {"triggerId": "schedule", "schedule": spaced})
    assert "schedule" not in cli.ok("deploy", str(repo), "--dry-run").stdout

    exported = tmp_path / "exported"
    cli.ok("export", str(exported))
    document = json.loads((exported / "hooks" / f"{name}.json").read_text())
    assert document["schedule"] == weekly
    others = [path for path in (exported / "hooks").glob("*.json") if path.stem != name]
    assert all("schedule" not in json.loads(path.read_text()) for path in others)
    cli.ok("rm", name, "--yes")
