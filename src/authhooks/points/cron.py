"""A scheduled hook's schedule: a cron expression in an IANA time zone, and whether
ticks missed while no server was running are caught up (``catch_up``).

Expressions are read by croniter, the cron library Airflow and Celery rely on:
five fields (minute, hour, day of month, month, day of week), or six, the sixth
being seconds — croniter's order, so ``* * * * * */10`` is every ten seconds. A
second is the finest a tick can be: croniter has no finer field. The ``@hourly``,
``@daily``, ``@weekly``, ``@monthly``, ``@yearly`` (``@annually``) and
``@midnight`` shorthands are five-field expressions; ``@reboot`` is refused (it is
not a schedule), and so are croniter's random ``R`` and hashed ``H`` values (a
tick must be the same on every node and every restart).

Daylight saving, as Vixie cron: a spring-forward gap moves a tick to the first
time after it; on an autumn fall-back night a schedule with a fixed hour (not
``*`` nor a step or list covering every hour) does not run again for the
repeated wall times (``30 2 * * *`` in Europe/Paris runs once, at 02:30 CEST,
on 25 October 2026), while an hourly schedule runs in both.

Pure, no I/O: the management API, the export format (so that ``authhooks deploy``
refuses a bad schedule before it sends anything), the scheduler and the API's
``next_runs`` all read schedules here, alike.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import CroniterBadDateError, CroniterError, croniter

from authhooks.errors import InvalidInput

KEYS = ("cron", "timezone", "catch_up")
DEFAULT_TIMEZONE = "UTC"
MAX_CRON_CHARS = 200  # the column's width
MAX_TIMEZONE_CHARS = 64
SHORTHANDS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# A tick croniter cannot find within this many years is a date that never comes
# (30 February): croniter's own bound, named here for the message.
NEVER_YEARS = 50
# croniter's R (a random value) and H (a hashed one) are neither stable nor shared:
# a token of one letter, R or H, with H's optional (range) or /step.
_RANDOM = re.compile(r"(?<![A-Za-z])[RrHh](?![A-Za-z])")
_HOURS = frozenset(range(24))
# Enough iterations for every tick of a repeated hour of a schedule with seconds.
_MAX_REPEATED = 4 * 3600
EXAMPLE = '{"cron": "*/5 * * * *", "timezone": "UTC", "catch_up": false}'


class InvalidSchedule(InvalidInput):
    """A schedule that cannot be kept; the message says what is wrong and how to fix it."""

    code = "invalid_schedule"


@functools.cache
def _zone_names() -> frozenset[str]:
    # The host's own zone ("localtime") would make a schedule mean another time on
    # another host: only names that mean the same everywhere.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"})


@dataclass(frozen=True)
class Schedule:
    """A checked schedule (build one with ``parse`` or ``schedule``)."""

    cron: str
    timezone: str = DEFAULT_TIMEZONE
    catch_up: bool = False

    def view(self) -> dict[str, Any]:
        """As the API and the export format show it: these three keys only, so that
        what is read can be sent back."""
        return {"cron": self.cron, "timezone": self.timezone, "catch_up": self.catch_up}

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment``, in UTC."""
        return self.next_runs(moment, 1)[0]

    def latest_until(self, moment: datetime) -> datetime:
        """The last tick at or before ``moment``, in UTC."""
        ticks = croniter(self.cron, self._local(moment + timedelta(microseconds=1)))
        return self._kept(ticks, backwards=True)

    def next_runs(self, after: datetime, count: int) -> list[datetime]:
        """The ``count`` ticks after ``after``, in UTC."""
        ticks = croniter(self.cron, self._local(after))
        return [self._kept(ticks) for _ in range(count)]

    def _kept(self, ticks: croniter, *, backwards: bool = False) -> datetime:
        """The next (or previous) tick that runs: a fixed-hour schedule skips the
        wall times an autumn fall-back repeats, as Vixie cron does."""
        for _ in range(_MAX_REPEATED):
            found: datetime = ticks.get_prev(datetime) if backwards else ticks.get_next(datetime)
            moment = found.astimezone(UTC)
            if not (self._fixed_hours and self._repeated(moment)):
                return moment
        raise CroniterBadDateError("no tick outside a repeated hour")

    @functools.cached_property
    def _fixed_hours(self) -> bool:
        hours = croniter(self.cron).expanded[1]
        return hours != ["*"] and not set(hours) >= _HOURS

    def _repeated(self, moment: datetime) -> bool:
        """Whether this instant's local wall time is the second one of a fall-back."""
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone))
        return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("a naive datetime has no place in time")
        return moment.astimezone(zoneinfo.ZoneInfo(self.timezone))


def parse(value: Any) -> Schedule:
    """The schedule a JSON value (an object of ``cron``, ``timezone``, ``catch_up``)
    describes; InvalidSchedule naming what is wrong."""
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, Mapping):
        raise InvalidSchedule(f"schedule must be an object, such as {EXAMPLE}")
    unknown = [str(key) for key in value if key not in KEYS]
    if unknown:
        raise InvalidSchedule(
            f"schedule: unknown key {unknown[0]!r}; a schedule has cron, timezone "
            "(optional, UTC by default) and catch_up (optional, false by default)"
        )
    if "cron" not in value:
        raise InvalidSchedule(f"schedule.cron is missing: give a cron expression, as in {EXAMPLE}")
    catch_up = value.get("catch_up", False)
    if not isinstance(catch_up, bool):
        raise InvalidSchedule("schedule.catch_up must be true or false")
    return schedule(value["cron"], value.get("timezone", DEFAULT_TIMEZONE), catch_up)


def schedule(cron: Any, timezone: Any = DEFAULT_TIMEZONE, catch_up: bool = False) -> Schedule:
    """A checked schedule: the expression parses, has five or six fields, fires at
    all, and the time zone is an IANA name. InvalidSchedule otherwise."""
    zone = _check_timezone(timezone)
    expression = _check_cron(cron)
    found = Schedule(expression, zone, catch_up)
    try:
        found.next_after(datetime.now(UTC))
    except CroniterBadDateError:
        raise InvalidSchedule(
            f"schedule.cron {expression!r} never fires (no such date within {NEVER_YEARS} "
            "years, as 30 February): give days that every month it names has"
        ) from None
    except (CroniterError, ValueError, TypeError, OverflowError) as error:
        raise InvalidSchedule(
            f"schedule.cron {expression!r} cannot be followed ({_reason(error)})"
        ) from None
    return found


def _check_timezone(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TIMEZONE_CHARS:
        raise InvalidSchedule(
            "schedule.timezone must be an IANA time zone name, such as 'UTC' or 'Europe/Paris'"
        )
    if value not in _zone_names():
        raise InvalidSchedule(
            f"schedule.timezone {value[:MAX_TIMEZONE_CHARS]!r} is not a time zone this server "
            "knows: give an IANA name, such as 'UTC', 'Europe/Paris' or 'America/New_York'"
        )
    return value


def _check_cron(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidSchedule(
            'schedule.cron must be a cron expression, such as "*/5 * * * *" (every five minutes)'
        )
    if len(value) > MAX_CRON_CHARS:
        raise InvalidSchedule(f"schedule.cron is longer than {MAX_CRON_CHARS} characters")
    expression = " ".join(value.split())
    if expression.lower() == "@reboot":
        raise InvalidSchedule(
            "schedule.cron '@reboot' is not a schedule: a scheduled hook runs on ticks of "
            'a cron expression, such as "0 * * * *" or @hourly'
        )
    if _RANDOM.search(expression):
        raise InvalidSchedule(
            f"schedule.cron {expression!r}: R (a random value) and H (a hashed one) are not "
            "accepted, as a tick must be the same on every server; give the number you want"
        )
    fields = expression.split(" ")
    if not (len(fields) == 1 and fields[0].lower() in SHORTHANDS) and len(fields) not in (5, 6):
        raise InvalidSchedule(
            f"schedule.cron {expression!r} has {len(fields)} field{'s' * (len(fields) != 1)}: "
            'give 5 (minute hour day-of-month month day-of-week, as "*/5 * * * *") or 6, '
            'the sixth being seconds (as "* * * * * */10", every ten seconds); a second is '
            "the finest a schedule can be"
        )
    try:
        croniter(expression, datetime.now(UTC))
    except (CroniterError, ValueError, TypeError) as error:
        raise InvalidSchedule(
            f"schedule.cron {expression!r} does not parse ({_reason(error)}): each field is "
            "a number, a range (1-5), a list (1,15), a step (*/10) or *; names for months "
            "and days (JAN, MON) are fine"
        ) from None
    return expression


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "…"
