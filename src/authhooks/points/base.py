"""What every point declares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError


class BadOutput(Exception):
    """A hook returned something its point does not accept."""


class BadEvent(Exception):
    """An event given to the runner does not have its point's shape."""


@dataclass(frozen=True)
class Point:
    name: str
    description: str
    blocking: bool
    entry: str  # the Python function a hook defines
    params: tuple[str, ...]  # its arguments, in order
    # (event, state so far, this hook's secrets) -> the hook's keyword arguments
    arguments: Callable[[Mapping[str, Any], Any, Mapping[str, str]], dict[str, Any]]
    # (state so far, the hook's output) -> (new state, notes for the hook's log); BadOutput
    merge: Callable[[Any, Any], tuple[Any, list[str]]]
    # the flow's starting state for an event
    initial: Callable[[Mapping[str, Any]], Any]
    sample_event: Mapping[str, Any]
    template: str
    # The event's shape, checked when a caller supplies one (the runner)
    event_model: type[BaseModel]

    def check_event(self, event: Any) -> dict[str, Any]:
        """``event`` if it has this point's shape; BadEvent naming the first bad field."""
        try:
            checked = self.event_model.model_validate(event)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the event"
            raise BadEvent(f"event.{where}: {first['msg']}") from None
        return checked.model_dump(exclude_unset=False)


# What the runner's sample events share: a request and the default connection.
SAMPLE_REQUEST = {
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0",
    "hostname": "id.example.com",
    "language": "en",
}
SAMPLE_CONNECTION = {"id": "con_default", "name": "Username-Password-Authentication"}


def request_context(event: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """The ``context`` every point passes: plain data, no handles into the server."""
    return {
        "secrets": dict(secrets),
        "request": dict(event.get("request", {})),
        "server": event.get("server", "authhooks"),
    }
