"""Hooks as code: the format of ``hooks/NAME.json`` beside ``NAME.py`` or ``NAME.js``.

One home for the format, read alike by ``authhooks deploy DIR`` (cli/code.py,
from a directory) and by a git source's deployments (gitsync/, from a
commit's tree): both hand it the file names of the ``hooks/`` folder and a
way to read one, and get every hook declared, each checked, or a
FormatError naming the file and what is wrong. No I/O of its own, no server
modules: the CLI imports it without loading the server.

NAME.json holds a hook's settings, its language (``runtime``), its declared
dependencies when it has any, a scheduled hook's ``schedule``, and the names of
its secrets, each mapped to the environment variable the CLI reads its value
from (``{"SLACK_URL": "$SLACK_URL"}``), never a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from authhooks.egress.rules import parse_rule
from authhooks.hooks import limits
from authhooks.points.cron import DEFAULT_TIMEZONE, EXAMPLE, InvalidSchedule
from authhooks.points.cron import schedule as checked_schedule
from authhooks.points.schedule import ID as SCHEDULE_POINT

# A code file's language by its suffix.
RUNTIME_BY_SUFFIX = {".py": "python", ".js": "node"}
SUFFIX_BY_RUNTIME = {"python": ".py", "node": ".js"}
LANGUAGE_NAMES = {"python": "Python", "node": "JavaScript"}

_ENV_REFERENCE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
# The settings NAME.json holds, as the management API names them.
SETTINGS = ("triggerId", "enabled", "order", "timeout_ms", "on_error", "egress", "capture_events")


class FormatError(ValueError):
    """What is wrong with a folder of hooks, naming the file."""


def canonical_egress(entries: list[str]) -> list[str]:
    """Egress entries as the server stores them (``host:port``, no repeats)."""
    rules = [parse_rule(entry) for entry in entries]
    return list(dict.fromkeys(f"{rule.pattern}:{rule.port}" for rule in rules))


class ScheduleFile(BaseModel):
    """A scheduled hook's ``schedule``, as the API has it (points/cron.py)."""

    model_config = ConfigDict(extra="forbid")

    cron: str
    timezone: str = DEFAULT_TIMEZONE
    catch_up: bool = False

    @model_validator(mode="after")
    def _keepable(self) -> ScheduleFile:
        try:
            checked = checked_schedule(self.cron, self.timezone, self.catch_up)
        except InvalidSchedule as error:
            raise ValueError(str(error).removeprefix("schedule.")) from None
        # As the server stores it (spaces folded): else every deploy would see a change.
        self.cron = checked.cron
        return self


class HookFile(BaseModel):
    """``hooks/NAME.json``."""

    model_config = ConfigDict(extra="forbid")

    triggerId: str
    # The code file's suffix says it too; when both are there, they must agree.
    runtime: Literal["python", "node"] | None = None
    enabled: bool = False
    order: int = Field(default=0, ge=-limits.MAX_ORDER, le=limits.MAX_ORDER)
    timeout_ms: int = Field(default=5000, ge=limits.MIN_TIMEOUT_MS, le=limits.MAX_TIMEOUT_MS)
    on_error: Literal["fail", "continue"] = "fail"
    egress: list[Annotated[str, Field(max_length=limits.MAX_EGRESS_RULE_CHARS)]] = Field(
        default_factory=list, max_length=limits.MAX_EGRESS_RULES
    )
    capture_events: bool = False
    # As the API has them: {"name": "version"} (Auth0 Hooks) or [{"name", "version"}]
    # (Actions). Absent: the hook has none (a deploy removes the server's).
    dependencies: dict[str, Any] | list[Any] | None = None
    # The schedule point's hooks only, which need one.
    schedule: ScheduleFile | None = None
    secrets: dict[str, str] = Field(default_factory=dict, max_length=limits.MAX_SECRETS)

    @field_validator("egress")
    @classmethod
    def _egress_rules(cls, value: list[str]) -> list[str]:
        return canonical_egress(value)  # ValueError names the entry

    @field_validator("secrets")
    @classmethod
    def _references(cls, value: dict[str, str]) -> dict[str, str]:
        for name, reference in value.items():
            if not limits.SECRET_NAME.match(name):
                raise ValueError(f"{name!r} is not a secret name (letters, digits, _)")
            if not _ENV_REFERENCE.match(reference):
                raise ValueError(
                    f"{name}: give the environment variable holding its value, as "
                    f'"${name}", never the value itself'
                )
        return value

    @model_validator(mode="after")
    def _scheduled(self) -> HookFile:
        if self.triggerId == SCHEDULE_POINT and self.schedule is None:
            raise ValueError(
                f"a hook of point {SCHEDULE_POINT!r} needs a schedule, such as "
                f'"schedule": {EXAMPLE}'
            )
        if self.triggerId != SCHEDULE_POINT and self.schedule is not None:
            raise ValueError(f"schedule is only for hooks of point {SCHEDULE_POINT!r}")
        return self

    def settings(self) -> dict[str, Any]:
        """The hook's settings as the API names them (no code, secrets or language)."""
        return self.model_dump(exclude={"secrets", "runtime", "dependencies"})


@dataclass(frozen=True)
class DeclaredHook:
    """One hook as its two files declare it."""

    name: str
    script: str
    runtime: str  # "python" or "node", as the code file's suffix says
    settings: HookFile
    json_file: str  # the file names, to name in messages
    code_file: str


def is_hook_name(name: object) -> bool:
    """Whether ``name`` is a hook name, and so a file name that stays in its folder:
    no separators, no dot first, no control characters (``fullmatch``: with
    ``match``, ``$`` also matches before a final newline)."""
    return isinstance(name, str) and limits.HOOK_NAME.fullmatch(name) is not None


def read_hooks(
    names: Iterable[str],
    read: Callable[[str], str],
    where: Callable[[str], str],
    check_point: Callable[[str], str | None] | None = None,
) -> list[DeclaredHook]:
    """Every hook a ``hooks/`` folder declares, each checked; the first problem
    stops it all (FormatError).

    ``names`` are the folder's file names, ``read(name)`` a file's text (raising
    FormatError when it cannot be read), ``where(name)`` how messages name a
    file; ``check_point(id)`` says what is wrong with a point id, or None."""
    present = set(names)
    found: list[DeclaredHook] = []
    for file_name in sorted(name for name in present if name.endswith(".json")):
        name = file_name.removesuffix(".json")
        path = where(file_name)
        if not is_hook_name(name):
            raise FormatError(f"{path}: {name!r} is not a hook name (letters, digits, - and _)")
        try:
            document = json.loads(read(file_name))
        except ValueError as error:
            if isinstance(error, FormatError):
                raise
            raise FormatError(f"{path}: not JSON ({error})") from None
        except RecursionError:
            raise FormatError(f"{path}: not JSON (nested too deep)") from None
        try:
            settings = HookFile.model_validate(document)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            at = ".".join(str(part) for part in first["loc"]) or "the document"
            message = first["msg"].removeprefix("Value error, ")
            raise FormatError(f"{path}: {at}: {message}") from None
        if check_point is not None and (unknown := check_point(settings.triggerId)) is not None:
            raise FormatError(f"{path}: triggerId: {unknown.replace(' extensibility', '', 1)}")
        code_file, runtime = _code_file(name, present, settings, where)
        script = read(code_file)
        if not script.strip():
            raise FormatError(f"{where(code_file)}: the code is empty")
        if len(script.encode()) > limits.MAX_SCRIPT_BYTES:
            raise FormatError(
                f"{where(code_file)}: the code exceeds {limits.MAX_SCRIPT_BYTES} bytes"
            )
        found.append(DeclaredHook(name, script, runtime, settings, file_name, code_file))
    strays = sorted(
        name
        for name in present
        for suffix in RUNTIME_BY_SUFFIX
        if name.endswith(suffix) and name.removesuffix(suffix) + ".json" not in present
    )
    if strays:
        stem = strays[0].rsplit(".", 1)[0]
        raise FormatError(f"{where('')}: {strays[0]} has no {stem}.json beside it")
    return found


def _code_file(
    name: str, present: set[str], settings: HookFile, where: Callable[[str], str]
) -> tuple[str, str]:
    """NAME.json's code file and its language: NAME.py or NAME.js, never both."""
    path = where(f"{name}.json")
    found = {
        runtime: name + suffix
        for suffix, runtime in RUNTIME_BY_SUFFIX.items()
        if name + suffix in present
    }
    if len(found) > 1:
        names = " and ".join(sorted(found.values()))
        raise FormatError(f"{path}: both {names} are there; a hook has one code file (remove one)")
    if not found:
        if settings.runtime is not None:
            expected = name + SUFFIX_BY_RUNTIME[settings.runtime]
        else:
            expected = " or ".join(name + suffix for suffix in RUNTIME_BY_SUFFIX)
        raise FormatError(f"{path}: its code {expected} is missing")
    ((runtime, code_file),) = found.items()
    if settings.runtime is not None and settings.runtime != runtime:
        raise FormatError(
            f"{path}: runtime is {settings.runtime!r}, but its code is {code_file} "
            f"({LANGUAGE_NAMES[runtime]}); make them agree"
        )
    return code_file, runtime
