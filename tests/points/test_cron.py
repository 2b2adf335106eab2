"""Schedules as points/cron.py reads them: fields, seconds, time zones and refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from authhooks.points.cron import InvalidSchedule, Schedule, parse, schedule

AT = datetime(2026, 3, 28, 12, 0, 0, 500_000, tzinfo=UTC)


def test_five_fields_six_with_seconds_last_and_shorthands() -> None:
    assert schedule("*/5 * * * *").next_after(AT) == datetime(2026, 3, 28, 12, 5, tzinfo=UTC)
    assert schedule("* * * * * */10").next_runs(AT, 2) == [
        datetime(2026, 3, 28, 12, 0, 10, tzinfo=UTC),
        datetime(2026, 3, 28, 12, 0, 20, tzinfo=UTC),
    ]
    assert schedule("@hourly").next_after(AT) == datetime(2026, 3, 28, 13, tzinfo=UTC)
    assert schedule("  0   4 * * MON ").cron == "0 4 * * MON"  # spaces folded
    assert schedule("0 * * * *").latest_until(AT) == datetime(2026, 3, 28, 12, tzinfo=UTC)
    exact = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert schedule("0 * * * *").latest_until(exact) == exact


def test_a_time_zone_and_its_daylight_saving() -> None:
    paris = schedule("30 2 * * *", "Europe/Paris")
    # 29 March 2026: Paris skips from 02:00 to 03:00; the tick comes at the first time after.
    assert paris.next_runs(AT, 3) == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 0, 30, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"cron": "* * * * * * *"}, "has 7 fields"),
        ({"cron": "* * * *"}, "has 4 fields"),
        ({"cron": "61 * * * *"}, "does not parse"),
        ({"cron": "H * * * *"}, "does not parse"),
        ({"cron": "0 0 31 4 *"}, "never fires"),
        ({"cron": ""}, "must be a cron expression"),
        ({"cron": 5}, "must be a cron expression"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "not a time zone"),
        ({"cron": "* * * * *", "timezone": "localtime"}, "not a time zone"),
        ({"cron": "* * * * *", "timezone": "../../etc/passwd"}, "not a time zone"),
        ({"cron": "* * * * *", "catch_up": "yes"}, "true or false"),
        ({"cron": "* * * * *", "every": 1}, "unknown key 'every'"),
        ({"timezone": "UTC"}, "schedule.cron is missing"),
        ("*/5 * * * *", "must be an object"),
    ],
)
def test_what_cannot_be_kept_is_refused_saying_why(value: object, says: str) -> None:
    with pytest.raises(InvalidSchedule) as refused:
        parse(value)
    assert says in str(refused.value)
    assert refused.value.status == 400


def test_parse_fills_the_defaults_and_views_three_keys() -> None:
    found = parse({"cron": "0 4 * * *"})
    assert found == Schedule("0 4 * * *", "UTC", False)
    assert found.view() == {"cron": "0 4 * * *", "timezone": "UTC", "catch_up": False}
