"""Scheduled hooks on real servers: each tick runs once across processes, runs never
overlap, missed ticks are caught up (or not) as the hook says, bad schedules are
refused with nothing stored, and the API tells the next runs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from authhooks.flows.schedules import SchedulePolicy, Scheduler, _Decided
from authhooks.hooks import schedules, store
from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import Server, postgres_schema, run_server, serve_again, unique
from tests.users.helpers import wait_for

EVERY_SECOND = "* * * * * *"  # six fields: the sixth is seconds
NEVER_DURING_TESTS = "0 0 1 1 *"  # New Year's midnight, UTC
PRINTS_TICK = """\
def schedule(event, context):
    print("tick", event["scheduled_at"], event["hook"]["name"], event["schedule"]["cron"])
"""
SLOW = """\
import time


def schedule(event, context):
    time.sleep(2.5)
"""


def create(api: httpx.Client, script: str = PRINTS_TICK, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "name": unique("sched"),
        "triggerId": "schedule",
        "script": script,
        "enabled": True,
        **fields,
    }
    return api.post("/hooks", json=body, timeout=60)


def records(server: Server, hook_id: str) -> list[dict[str, Any]]:
    """The hook's log, oldest first."""
    with server.api() as api:
        answer = api.get("/logs", params={"hook_id": hook_id, "take": 100})
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()["logs"]))


def scheduled_at(record: dict[str, Any]) -> str:
    """The tick a run was for, from the note the scheduler adds to its record."""
    (note,) = [
        line["text"] for line in record["console"] if line["text"].startswith("scheduled_at ")
    ]
    return str(note.removeprefix("scheduled_at "))


def runs(server: Server, hook_id: str) -> list[dict[str, Any]]:
    return [record for record in records(server, hook_id) if record["outcome"] != "skipped"]


@pytest.fixture
def hooks(server: Server) -> Iterator[list[str]]:
    """Ids of hooks a test made, deleted after it."""
    made: list[str] = []
    yield made
    with server.api() as api:
        for hook_id in made:
            api.delete(f"/hooks/{hook_id}")


def test_an_every_second_schedule_runs_once_per_tick(server: Server, hooks: list[str]) -> None:
    with server.api() as api:
        created = create(api, schedule={"cron": EVERY_SECOND})
        assert created.status_code == 201, created.text
        hook = created.json()
        hooks.append(hook["id"])
        assert hook["schedule"] == {"cron": EVERY_SECOND, "timezone": "UTC", "catch_up": False}

        done = wait_for(lambda: len(runs(server, hook["id"])) >= 3 or None, timeout=20)
        assert done
        found = runs(server, hook["id"])
        assert all(record["outcome"] == "ok" for record in found), found
        ticks = [scheduled_at(record) for record in found]
        assert len(set(ticks)) == len(ticks), ticks  # no tick ran twice
        for record, tick in zip(found, ticks, strict=True):
            assert tick.endswith("Z")
            assert datetime.fromisoformat(tick).microsecond == 0  # a whole second
            printed = record["console"][0]["text"]
            assert printed == f"tick {tick} {hook['name']} {EVERY_SECOND}"

        status = api.get(f"/hooks/{hook['id']}/schedule").json()
        assert status["last_status"] == "ok"
        assert status["last_run_at"] is not None
        assert len(status["next_runs"]) == 5

        # Disabled, it runs no more, and has no next runs to show.
        assert api.patch(f"/hooks/{hook['id']}", json={"enabled": False}).status_code == 200
        time.sleep(1.5)  # a run claimed just before may still be finishing
        settled = len(runs(server, hook["id"]))
        time.sleep(2)
        assert len(runs(server, hook["id"])) == settled
        assert api.get(f"/hooks/{hook['id']}/schedule").json()["next_runs"] == []


def test_a_slow_hook_never_overlaps_its_previous_run(server: Server, hooks: list[str]) -> None:
    with server.api() as api:
        created = create(api, SLOW, schedule={"cron": EVERY_SECOND})
        assert created.status_code == 201, created.text
        hook_id = created.json()["id"]
        hooks.append(hook_id)

    def told(record: dict[str, Any]) -> list[str]:
        return [line["text"] for line in record["console"] if "still going" in line["text"]]

    def enough() -> list[dict[str, Any]] | None:
        found = records(server, hook_id)
        done = [record for record in found if record["outcome"] == "ok"]
        return found if len(done) >= 3 and any(told(record) for record in found) else None

    found = wait_for(enough, timeout=30)
    done = [record for record in found if record["outcome"] == "ok"]
    spans = sorted(
        (
            datetime.fromisoformat(record["started_at"]),
            datetime.fromisoformat(record["started_at"])
            + timedelta(milliseconds=record["duration_ms"]),
        )
        for record in done
    )
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert started >= ended, "two runs of the hook overlapped"
    # The ticks skipped while one run went on are told once: in the next run's
    # record (or, run by another process, one skipped record), never one a tick.
    skipped = [record for record in found if record["outcome"] == "skipped"]
    assert all("still going" in record["error"] for record in skipped), skipped
    notes = [note for record in found for note in told(record)]
    assert all("runs never overlap" in note for note in notes), notes
    assert len(notes) <= len(done), notes


def test_two_server_processes_run_each_tick_once(backend: str, tmp_path: Path) -> None:
    """Two processes on one database (a SQLite file, or PostgreSQL): no tick twice."""
    with (
        run_server(tmp_path, backend, schedule_poll_interval=0.1) as first,
        serve_again(first, tmp_path, schedule_poll_interval=0.1) as second,
    ):
        with first.api() as api:
            created = create(api, schedule={"cron": EVERY_SECOND})
            assert created.status_code == 201, created.text
            hook_id = created.json()["id"]
        # Each process runs what it has loaded: give the second time to load it too.
        found = wait_for(lambda: _at_least(6, runs(second, hook_id)), timeout=30)
        ticks = Counter(scheduled_at(record) for record in found)
        assert max(ticks.values()) == 1, ticks
        with second.api() as api:
            assert api.delete(f"/hooks/{hook_id}").status_code == 204


def _at_least(count: int, found: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return found if len(found) >= count else None


def _move_back(server: Server, hook_ids: list[str], to: datetime) -> None:
    """As if the server had been down since ``to``: the schedules' next ticks then."""
    database = Database(server.database_url)
    try:
        with database.session() as session:
            session.execute(
                update(models.HookSchedule)
                .where(models.HookSchedule.hook_id.in_(hook_ids))
                .values(next_run_at=to)
            )
    finally:
        database.dispose()


def test_missed_ticks_run_once_at_start_with_catch_up(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend) as first:
        with first.api() as api:
            caught = create(api, schedule={"cron": NEVER_DURING_TESTS, "catch_up": True})
            missed = create(api, schedule={"cron": NEVER_DURING_TESTS})
            assert caught.status_code == missed.status_code == 201, caught.text + missed.text
        caught_id, missed_id = caught.json()["id"], missed.json()["id"]
        assert first.process is not None
        first.process.terminate()
        first.process.wait(timeout=15)
        now = datetime.now(UTC)
        # Down since last New Year's Eve: this year's New Year tick was missed.
        _move_back(first, [caught_id, missed_id], datetime(now.year - 1, 12, 31, tzinfo=UTC))
        with serve_again(first, tmp_path) as second:
            (run,) = wait_for(lambda: runs(second, caught_id), timeout=20)
            assert run["outcome"] == "ok"
            latest = datetime(now.year, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")
            assert scheduled_at(run) == latest
            assert any("caught up" in line["text"] for line in run["console"])

            (skipped,) = wait_for(lambda: records(second, missed_id), timeout=20)
            assert skipped["outcome"] == "skipped"
            assert "catch_up is off" in skipped["error"]
            time.sleep(1.5)  # a few more passes: still one run, one skip
            assert len(records(second, caught_id)) == 1
            assert len(records(second, missed_id)) == 1
            with second.api() as api:
                for hook_id in (caught_id, missed_id):
                    status = api.get(f"/hooks/{hook_id}/schedule").json()
                    next_year = f"{now.year + 1}-01-01T00:00:00Z"
                    assert status["next_runs"][0] == next_year, status
                    assert status["running_since"] is None
                assert api.get(f"/hooks/{caught_id}/schedule").json()["last_run_at"] == latest


def _names(server: Server) -> set[str]:
    with server.api() as api:
        hooks = api.get("/hooks", params={"per_page": 100}).json()
    return {hook["name"] for hook in hooks}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"schedule": {"cron": "61 * * * *"}}, "does not parse"),
        ({"schedule": {"cron": "every minute"}}, "has 2 fields"),
        ({"schedule": {"cron": "* * * * * * *"}}, "has 7 fields"),
        ({"schedule": {"cron": "0 0 30 2 *"}}, "never fires"),
        ({"schedule": {"cron": "*/5 * * * *", "timezone": "Mars/Olympus"}}, "not a time zone"),
        ({}, "schedule is required"),
        ({"schedule": None}, "schedule is required"),
        (
            {"triggerId": "post-user-registration", "schedule": {"cron": "*/5 * * * *"}},
            "only for hooks of point 'schedule'",
        ),
    ],
)
def test_a_bad_schedule_is_refused_with_nothing_stored(
    server: Server, fields: dict[str, Any], expected: str
) -> None:
    name = unique("bad-sched")
    script = PRINTS_TICK
    if fields.get("triggerId") == "post-user-registration":
        script = "def post_user_registration(user, context):\n    pass\n"
    with server.api() as api:
        answer = create(api, script, name=name, **fields)
    assert answer.status_code == 400, answer.text
    assert expected in answer.json()["message"], answer.text
    assert name not in _names(server)


def test_a_bad_change_of_schedule_changes_nothing(server: Server, hooks: list[str]) -> None:
    with server.api() as api:
        created = create(api, enabled=False, schedule={"cron": NEVER_DURING_TESTS})
        assert created.status_code == 201, created.text
        hook = created.json()
        hooks.append(hook["id"])
        for change in (
            {"schedule": {"cron": "* * * * * * *"}, "script": PRINTS_TICK + "\n# new\n"},
            {"schedule": {"cron": "*/5 * * * *", "timezone": "Nowhere/Special"}},
            {"schedule": None},
        ):
            answer = api.patch(f"/hooks/{hook['id']}", json=change)
            assert answer.status_code == 400, answer.text
        again = api.get(f"/hooks/{hook['id']}").json()
        assert again["schedule"] == hook["schedule"]
        assert again["version"] == 1
        assert len(api.get(f"/hooks/{hook['id']}/versions").json()) == 1

        other = api.post(
            "/hooks",
            json={
                "name": unique("not-sched"),
                "triggerId": "post-change-password",
                "script": "def post_change_password(user, context):\n    pass\n",
            },
        ).json()
        hooks.append(other["id"])
        assert other["schedule"] is None
        refused = api.patch(f"/hooks/{other['id']}", json={"schedule": {"cron": "* * * * *"}})
        assert refused.status_code == 400, refused.text
        assert "only for hooks of point 'schedule'" in refused.json()["message"]
        # A GET sent back, schedule null and all, is fine.
        assert api.patch(f"/hooks/{other['id']}", json=other).status_code == 200
        missing = api.get(f"/hooks/{other['id']}/schedule")
        assert missing.status_code == 404, missing.text


def _new_york_weekdays_at_9_30(after: datetime, count: int) -> list[str]:
    """The next ``count`` weekday 09:30s in New York after ``after``, in UTC, by hand."""
    zone = ZoneInfo("America/New_York")
    day = after.astimezone(zone).date()
    found: list[str] = []
    while len(found) < count:
        local = datetime(day.year, day.month, day.day, 9, 30, tzinfo=zone)
        if local.weekday() < 5 and local > after:
            found.append(local.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        day += timedelta(days=1)
    return found


def test_next_runs_follow_the_time_zone(server: Server, hooks: list[str]) -> None:
    schedule = {"cron": "30 9 * * MON-FRI", "timezone": "America/New_York", "catch_up": True}
    with server.api() as api:
        created = create(api, schedule=schedule)
        assert created.status_code == 201, created.text
        hook = created.json()
        hooks.append(hook["id"])
        asked = datetime.now(UTC)
        status = api.get(f"/hooks/{hook['id']}/schedule")
        assert status.status_code == 200, status.text
        shown = status.json()
        assert {key: shown[key] for key in schedule} == schedule
        assert shown["next_runs"] == _new_york_weekdays_at_9_30(asked, 5)
        assert shown["last_run_at"] is shown["last_status"] is shown["running_since"] is None

        # What a GET answers goes back unchanged; a PATCH replaces the schedule.
        read = api.get(f"/hooks/{hook['id']}").json()
        assert api.patch(f"/hooks/{hook['id']}", json=read).status_code == 200
        changed = api.patch(
            f"/hooks/{hook['id']}", json={"schedule": {"cron": "0 12 * * *", "timezone": "UTC"}}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["schedule"] == {
            "cron": "0 12 * * *",
            "timezone": "UTC",
            "catch_up": False,
        }
        next_runs = api.get(f"/hooks/{hook['id']}/schedule").json()["next_runs"]
        assert all(run.endswith("T12:00:00Z") for run in next_runs), next_runs


# --- the scheduler's decisions, on a database of its own (no server) ---------------


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    where = (
        postgres_schema()
        if backend == "postgresql"
        else contextlib.nullcontext(f"sqlite:///{tmp_path / 'schedules.db'}")
    )
    with where as url:
        found = Database(url)
        found.migrate()
        yield found
        found.dispose()


def add_scheduled(database: Database, cron: str = EVERY_SECOND, **schedule: Any) -> str:
    hook_id = store.new_hook_id()
    with database.session() as session:
        store.create_hook(
            session,
            hook_id=hook_id,
            author="test",
            code=store.Code(PRINTS_TICK),
            name=unique("sched"),
            trigger_id="schedule",
            enabled=True,
            order=0,
            timeout_ms=5000,
            on_error="fail",
            capture_events=False,
            egress=[],
            schedule={"cron": cron, **schedule},
        )
    return hook_id


def set_rows(database: Database, hook_ids: list[str], **values: Any) -> None:
    with database.session() as session:
        session.execute(
            update(models.HookSchedule)
            .where(models.HookSchedule.hook_id.in_(hook_ids))
            .values(**values)
        )


def row_of(database: Database, hook_id: str) -> models.HookSchedule:
    with database.session() as session:
        found = session.get(models.HookSchedule, hook_id)
        assert found is not None
        session.expunge(found)
        return found


def scheduler_on(database: Database, **policy: Any) -> Scheduler:
    """A scheduler whose passes are called by hand (it runs nothing)."""
    return Scheduler(
        database, cast(Any, None), cast(Any, None), lambda _: None, SchedulePolicy(**policy)
    )


def decide(scheduler: Scheduler, hook_ids: list[str], room: int = 8) -> _Decided:
    decided = _Decided()
    scheduler._decide(set(hook_ids), set(), room, decided)
    return decided


def test_a_row_that_cannot_be_followed_never_stops_the_others(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    first, bad, last = sorted(add_scheduled(database) for _ in range(3))
    due = datetime.now(UTC) - timedelta(seconds=0.5)
    set_rows(database, [first, bad, last], next_run_at=due)
    # Written straight into the database: a zone this server does not know.
    set_rows(database, [bad], timezone="Mars/Olympus")
    scheduler = scheduler_on(database)
    decided = decide(scheduler, [first, bad, last])
    assert sorted(run.hook_id for run in decided.runs) == [first, last]
    assert row_of(database, bad).next_run_at == due  # left as it was
    assert row_of(database, bad).running_since is None
    decide(scheduler, [first, bad, last])  # warned about once, not on every pass
    warned = [
        r for r in caplog.records if bad in r.getMessage() and "Mars/Olympus" in r.getMessage()
    ]
    assert len(warned) == 1, warned


def test_the_on_time_tick_runs_when_only_older_ones_were_missed(database: Database) -> None:
    hook_id = add_scheduled(database)  # every second, catch_up off
    set_rows(database, [hook_id], next_run_at=datetime.now(UTC) - timedelta(hours=1))
    (run,) = decide(scheduler_on(database), [hook_id]).runs
    assert datetime.now(UTC) - run.tick < timedelta(seconds=2)  # the latest tick
    assert run.missed_since is None
    assert any("not caught up (catch_up is off)" in note for note in run.notes), run.notes
    row = row_of(database, hook_id)
    assert row.running_since is not None
    assert row.claim == run.claim
    assert row.next_run_at > run.tick


def test_a_process_claims_no_more_than_max_running(database: Database) -> None:
    hook_ids = sorted(add_scheduled(database) for _ in range(3))
    due = datetime.now(UTC) - timedelta(seconds=0.5)
    set_rows(database, hook_ids, next_run_at=due)
    decided = decide(scheduler_on(database), hook_ids, room=2)
    assert [run.hook_id for run in decided.runs] == hook_ids[:2]
    assert decided.full
    left = row_of(database, hook_ids[2])  # for another process to claim
    assert (left.next_run_at, left.running_since) == (due, None)


def test_ticks_skipped_while_a_run_goes_on_are_told_once(database: Database) -> None:
    hook_id = add_scheduled(database)
    scheduler = scheduler_on(database)
    set_rows(database, [hook_id], running_since=datetime.now(UTC), claim="elsewhere")
    for _ in range(3):  # three ticks come due while another process's run goes on
        set_rows(database, [hook_id], next_run_at=datetime.now(UTC) - timedelta(seconds=0.5))
        decided = decide(scheduler, [hook_id])
        assert decided.runs == decided.skips == []
    set_rows(
        database,
        [hook_id],
        running_since=None,
        claim=None,
        next_run_at=datetime.now(UTC) - timedelta(seconds=0.5),
    )
    (run,) = decide(scheduler, [hook_id]).runs
    (note,) = run.notes
    assert note.startswith("3 ticks, from "), note
    assert "still going" in note
    assert decide(scheduler, [hook_id]).skips == []  # told once


def test_close_releases_the_claims_of_a_pass_cut_short(database: Database) -> None:
    hook_id = add_scheduled(database)
    set_rows(database, [hook_id], next_run_at=datetime.now(UTC) - timedelta(seconds=0.5))
    scheduler = scheduler_on(database)
    decided = scheduler._pending = decide(scheduler, [hook_id])
    assert len(decided.runs) == 1
    assert row_of(database, hook_id).claim is not None
    asyncio.run(scheduler.close())
    row = row_of(database, hook_id)
    assert (row.running_since, row.claim, row.last_status) == (None, None, "interrupted")


def test_a_stale_run_is_judged_by_the_database_clock(database: Database) -> None:
    hook_id = add_scheduled(database)
    set_rows(database, [hook_id], next_run_at=datetime.now(UTC) - timedelta(seconds=0.5))
    scheduler = scheduler_on(database, stale_margin=1.0)
    (run,) = decide(scheduler, [hook_id]).runs
    started = row_of(database, hook_id).running_since
    assert started is not None  # written with the database's clock
    assert abs(started - datetime.now(UTC)) < timedelta(seconds=5)
    decide(scheduler, [hook_id])
    assert row_of(database, hook_id).claim == run.claim  # not stale yet
    # As if it had started long ago (its process died): released on the next pass.
    set_rows(database, [hook_id], running_since=datetime.now(UTC) - timedelta(hours=1))
    decide(scheduler, [hook_id])
    assert row_of(database, hook_id).last_status == "abandoned"


def test_a_new_schedule_never_moves_before_a_claimed_tick(database: Database) -> None:
    hook_id = add_scheduled(database, NEVER_DURING_TESTS)
    ahead = datetime.now(UTC) + timedelta(days=400)  # a tick claimed by a clock ahead
    set_rows(database, [hook_id], last_run_at=ahead)
    with database.session() as session:
        assert schedules.save(session, hook_id, "schedule", {"cron": "0 12 * * *"})
    assert row_of(database, hook_id).next_run_at > ahead
    before = row_of(database, hook_id).next_run_at
    with database.session() as session:  # catch_up alone: the next tick stays
        assert schedules.save(
            session, hook_id, "schedule", {"cron": "0 12 * * *", "catch_up": True}
        )
    assert row_of(database, hook_id).next_run_at == before
    with database.session() as session:  # enabled again: a tick not yet come stays
        schedules.restart(session, hook_id)
    assert row_of(database, hook_id).next_run_at == before


def test_a_row_with_an_unknown_zone_is_shown_as_stored(server: Server, hooks: list[str]) -> None:
    with server.api() as api:
        created = create(api, schedule={"cron": NEVER_DURING_TESTS})
        assert created.status_code == 201, created.text
        hook_id = created.json()["id"]
        hooks.append(hook_id)
        # next_runs start from the stored next tick, which is what runs next.
        stored = datetime(datetime.now(UTC).year + 2, 1, 1, tzinfo=UTC)
        _set(server, hook_id, next_run_at=stored)
        shown = api.get(f"/hooks/{hook_id}/schedule").json()
        assert shown["next_runs"][:2] == [
            f"{stored.year}-01-01T00:00:00Z",
            f"{stored.year + 1}-01-01T00:00:00Z",
        ]
        assert shown["note"] is None
        _set(server, hook_id, timezone="Mars/Olympus")
        answer = api.get(f"/hooks/{hook_id}/schedule")
        assert answer.status_code == 200, answer.text
        assert answer.json()["next_runs"] == []
        assert "Mars/Olympus" in answer.json()["note"]


def _set(server: Server, hook_id: str, **values: Any) -> None:
    database = Database(server.database_url)
    try:
        set_rows(database, [hook_id], **values)
    finally:
        database.dispose()
