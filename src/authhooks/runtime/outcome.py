"""What one invocation produced: a result or a typed failure, its console, its
outbound connections, the entry function that ran and its ``api`` calls, and
its duration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from authhooks.egress.broker import EgressRecord


@dataclass(frozen=True)
class ConsoleLine:
    at: float  # UNIX time the supervisor received it
    stream: str  # "stdout", "stderr" or "log"
    text: str


@dataclass(frozen=True)
class HookRaised:
    """The hook raised: a ``HookError`` on purpose (``is_hook_error``), or any other exception."""

    kind: ClassVar[str] = "raised"
    type: str
    message: str
    user_message: str | None = None
    is_hook_error: bool = False
    traceback: tuple[str, ...] = ()
    code: str | None = None  # a HookError's wire code: "invalid_scope", "access_denied", ...

    def describe(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True)
class Timeout:
    kind: ClassVar[str] = "timeout"
    seconds: float

    def describe(self) -> str:
        return f"timeout: the hook ran longer than {self.seconds:g} s and was stopped"


@dataclass(frozen=True)
class OutOfMemory:
    kind: ClassVar[str] = "out_of_memory"
    limit_bytes: int

    def describe(self) -> str:
        return f"out of memory: the hook needed more than {self.limit_bytes // 2**20} MiB"


@dataclass(frozen=True)
class Crashed:
    kind: ClassVar[str] = "crashed"
    reason: str
    output: str = ""  # the last raw output of the worker process, if any

    def describe(self) -> str:
        return f"crashed: {self.reason}"


@dataclass(frozen=True)
class BadResult:
    kind: ClassVar[str] = "bad_result"
    reason: str

    def describe(self) -> str:
        return f"bad result: {self.reason}"


@dataclass(frozen=True)
class LoadFailed:
    """The code does not compile, its top level raised, or the entry function is missing."""

    kind: ClassVar[str] = "load_failed"
    type: str
    message: str
    line: int | None = None

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.type}{where}: {self.message}"


@dataclass(frozen=True)
class Overloaded:
    kind: ClassVar[str] = "overloaded"
    reason: str

    def describe(self) -> str:
        return f"overloaded: {self.reason}"


Failure = HookRaised | Timeout | OutOfMemory | Crashed | BadResult | LoadFailed | Overloaded


@dataclass(frozen=True)
class ApiCall:
    """One call a hook made on its ``api`` object: ``api.<namespace>.<method>(*args)``."""

    namespace: str
    method: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Outcome:
    result: Any = None
    failure: Failure | None = None
    console: tuple[ConsoleLine, ...] = ()
    duration_ms: float = 0.0
    dropped_lines: int = 0
    egress: tuple[EgressRecord, ...] = ()  # the call's outbound connections
    entry: str = ""  # the function that ran (the first of the version's entries it defines)
    calls: tuple[ApiCall, ...] | None = None  # for an entry with an api: its calls, in order

    @property
    def ok(self) -> bool:
        return self.failure is None


class LoadError(Exception):
    """A version could not be loaded; carries the ``LoadFailed`` describing why."""

    def __init__(self, failure: LoadFailed) -> None:
        super().__init__(failure.describe())
        self.failure = failure
