"""What every extensibility point declares: data plus a few small functions.

A point says what its hooks receive (its event), how the outputs of an ordered
flow combine into a state, how a refusal becomes its caller's error, what the
test runner shows, and how both of Auth0's calling conventions reach that one
contract:

- **Hooks**: ``def credentials_exchange(client, scope, audience, context)``
  returns the output (a dict, or None), or raises one of ``authhooks.hook``'s
  errors to refuse;
- **Actions**: ``def on_execute_credentials_exchange(event, api)`` calls
  ``api.access_token.set_custom_claim(...)`` or ``api.access.deny(...)``. The
  calls are recorded in the sandbox and applied here, in order, into the same
  output a Hooks function returns; a deny is a refusal, as a raised error is.

So the two conventions are thin adapters over one ``merge``, and cannot drift.
Nothing here does I/O or knows the sandbox, storage or HTTP, and nothing needs
a class per point: a point can be declared from data at run time as well as in
a module of this package (see registry.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Event = TypeVar("Event")
State = TypeVar("State")
Secrets = Mapping[str, str]
Output = dict[str, Any]


class BadOutput(Exception):
    """A hook returned (or asked its ``api`` for) something its point does not accept."""


class BadEvent(Exception):
    """An event given to the runner does not have its point's shape. ``errors``:
    each place found wrong, as (RFC 6901 JSON pointer, what is wrong there), when
    the point checks the whole event (a declared point's schema) rather than
    stopping at the first."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


@dataclass(frozen=True)
class Denial:
    """A hook's deliberate refusal, whichever convention it used: a wire code, the
    message for the hook's log, and what the end user may see."""

    code: str
    message: str = ""
    user_message: str | None = None


class Denied(Exception):
    """Raised while applying an ``api`` call that refuses (``api.access.deny``)."""

    def __init__(self, denial: Denial) -> None:
        super().__init__(denial.message)
        self.denial = denial


@dataclass(frozen=True)
class Refusal:
    """What a blocking flow that stopped answers its caller: an error code of the
    caller's surface (an OAuth 2.0 error at the token endpoint) and a description
    fit to show. ``denial`` is the hook's own refusal, if it refused on purpose."""

    error: str
    description: str
    denial: Denial | None = None


@dataclass(frozen=True)
class Preview:
    """What the runner knows of the server, to show a result as the caller would see it."""

    issuer: str
    token_lifetime: int


# (the state before the hook, the output being built, the call's arguments); raises
# BadOutput for arguments the method does not take, Denied for a refusal.
Command = Callable[[Any, Output, Sequence[Any]], None]


@dataclass(frozen=True)
class HooksConvention(Generic[Event, State]):
    """Auth0 Hooks: ``def <function>(<params>)``, returning the output."""

    function: str
    params: tuple[str, ...]
    # (event, state so far, the hook's secrets) -> the function's keyword arguments
    arguments: Callable[[Event, State, Secrets], dict[str, Any]]

    @property
    def signature(self) -> str:
        return f"def {self.function}({', '.join(self.params)})"


@dataclass(frozen=True)
class ActionsConvention(Generic[Event, State]):
    """Auth0 Actions: ``def on_execute_<point>(event, api)``; ``api.<namespace>.<method>``
    calls are applied in order to build the output."""

    function: str
    # (event, state so far, the hook's secrets) -> the ``event`` the function receives
    event: Callable[[Event, State, Secrets], dict[str, Any]]
    api: Mapping[str, Mapping[str, Command]] = field(default_factory=dict)
    # Other names the function may have, after ``function`` (``on_execute``, as
    # Extend's handlers are written for whichever point they serve).
    aliases: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        return f"def {self.function}(event, api)"

    def methods(self) -> dict[str, tuple[str, ...]]:
        """The ``api`` object's shape: namespace -> method names."""
        return {namespace: tuple(methods) for namespace, methods in self.api.items()}

    def apply(self, state: State, calls: Sequence[tuple[str, str, Sequence[Any]]]) -> Output:
        """The output the recorded ``calls`` amount to; BadOutput or Denied."""
        output: Output = {}
        for namespace, method, args in calls:
            command = self.api.get(namespace, {}).get(method)
            if command is None:  # the sandbox only records declared methods
                raise BadOutput(f"api.{namespace}.{method} does not exist")
            command(state, output, args)
        return output


def refuse_as_server_error(hook: str, denial: Denial | None, failure: str) -> Refusal:
    """The refusal of a point that honours no deliberate refusal: any failure fails
    the caller, naming the hook and what went wrong, never a traceback."""
    return Refusal("server_error", f"hook {hook!r} failed: {failure.replace('_', ' ')}", denial)


@dataclass(frozen=True)
class Point(Generic[Event, State]):
    """One extensibility point. ``Event`` is what its caller builds (typed); ``State``
    is what a flow of its hooks accumulates."""

    id: str
    description: str
    blocking: bool  # runs inside its caller's request; else delivered later, at least once
    # The event: built by the caller; parsed from JSON for the runner, replays and
    # queued deliveries (BadEvent naming the first bad field); dumped back to JSON.
    parse_event: Callable[[Any], Event]
    dump_event: Callable[[Event], dict[str, Any]]
    event_schema: Mapping[str, Any]  # JSON Schema of the dumped event, for editors and forms
    sample_event: Mapping[str, Any]  # the runner's default event (dumped form)
    initial: Callable[[Event], State]  # the flow's starting state
    # (state so far, a hook's output) -> (new state, notes for the hook's log); BadOutput
    merge: Callable[[State, Any], tuple[State, list[str]]]
    hooks: HooksConvention[Event, State]
    actions: ActionsConvention[Event, State]
    # (hook name, its deliberate refusal or None, the failure's kind) -> the caller's error
    refuse: Callable[[str, Denial | None, str], Refusal] = refuse_as_server_error
    # (event, state after the hook, the hook's output, the server) -> what the runner shows
    preview: Callable[[Event, State, Any, Preview], Any] = lambda event, state, output, server: {
        "returned": output
    }
    # Starter code by convention ("hooks", "actions"), as the scaffold and editor offer it.
    templates: Mapping[str, str] = field(default_factory=dict)
    # What a declared point may set (None: no bound of its own): the longest any of
    # its hooks runs, whatever the hook's own timeout, and how many hooks it takes.
    timeout_ms: int | None = None
    max_hooks: int | None = None
    # JSON Schema of what a blocking point's flow answers its caller, if it says.
    result_schema: Mapping[str, Any] | None = None

    def sample(self) -> Event:
        return self.parse_event(dict(self.sample_event))
