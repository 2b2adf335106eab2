"""Schedules as points/cron.py reads them: fields, seconds, time zones and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

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


def _utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "expected"),
    [
        # 25 October 2026: Paris's 02:30 comes at 00:30Z (CEST), then at 01:30Z (CET).
        (
            "30 2 * * *",
            "Europe/Paris",
            [_utc(2026, 10, 24, 0, 30), _utc(2026, 10, 25, 0, 30), _utc(2026, 10, 26, 1, 30)],
        ),
        # 1 November 2026: New York's 01:30 comes at 05:30Z (EDT), then at 06:30Z (EST).
        (
            "30 1 * * *",
            "America/New_York",
            [_utc(2026, 10, 31, 5, 30), _utc(2026, 11, 1, 5, 30), _utc(2026, 11, 2, 6, 30)],
        ),
    ],
)
def test_a_fixed_hour_runs_once_on_a_fall_back_night(
    cron: str, zone: str, expected: list[datetime]
) -> None:
    """As Vixie cron: a wall time the night repeats is not run again."""
    daily = schedule(cron, zone)
    assert daily.next_runs(expected[0] - timedelta(hours=1), 3) == expected
    repeated = expected[1] + timedelta(hours=1)
    assert daily.next_after(expected[1]) == expected[2]
    # Nor is it the latest tick (what a catch-up runs for).
    assert daily.latest_until(repeated + timedelta(minutes=5)) == expected[1]
    # A schedule of every hour runs in both: 25 ticks that local day.
    local = ZoneInfo(zone)
    start = datetime.combine(expected[1].astimezone(local).date(), time(), local)
    hourly = schedule("0 * * * *", zone).next_runs(start - timedelta(seconds=1), 26)
    assert sum(tick.astimezone(local).date() == start.date() for tick in hourly) == 25


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"cron": "* * * * * * *"}, "has 7 fields"),
        ({"cron": "* * * *"}, "has 4 fields"),
        ({"cron": "61 * * * *"}, "does not parse"),
        ({"cron": "H * * * *"}, "R (a random value) and H (a hashed one) are not accepted"),
        ({"cron": "H(0-5) * * * *"}, "are not accepted"),
        ({"cron": "R * * * *"}, "are not accepted"),
        ({"cron": "0 0 * * * r"}, "are not accepted"),
        ({"cron": "@reboot"}, "'@reboot' is not a schedule"),
        ({"cron": "0 0 15 * 1#1"}, "never fires"),  # # is ANDed with the day of month
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


@pytest.mark.parametrize(
    ("cron", "first"),
    [
        ("@DAILY", datetime(2026, 3, 29, tzinfo=UTC)),
        ("0 0 ? * MON", datetime(2026, 3, 30, tzinfo=UTC)),  # ? is *
        ("0 0 1 * MON", datetime(2026, 3, 30, tzinfo=UTC)),  # either field: OR
        ("0 0 1-7 * MON#1", datetime(2026, 4, 6, tzinfo=UTC)),  # with #: AND
        ("0 0 15W * *", datetime(2026, 4, 15, tzinfo=UTC)),  # nearest weekday
        ("0 0 L * *", datetime(2026, 3, 31, tzinfo=UTC)),
    ],
)
def test_the_documented_special_characters(cron: str, first: datetime) -> None:
    assert schedule(cron).next_after(AT) == first
