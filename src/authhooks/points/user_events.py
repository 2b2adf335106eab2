"""What the user points share: the rules for metadata a hook sets on a user, and
the asynchronous points that tell hooks about a user (which return nothing)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from authhooks.points.contract import ActionsConvention, BadOutput, HooksConvention, Point, Secrets
from authhooks.points.shapes import (
    SAMPLE_CONNECTION,
    SAMPLE_REQUEST,
    Connection,
    Delivery,
    Request,
    Shape,
    User,
    dump,
    parser,
    request_context,
)

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 10


def check_metadata(name: str, value: Any) -> dict[str, Any]:
    """Auth0's rules for metadata: an object whose keys have no '.' and no leading '$';
    bounded in size and depth."""
    if not isinstance(value, dict):
        raise BadOutput(f"{name} must be an object")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise BadOutput(f"{name} is nested deeper than {MAX_METADATA_DEPTH} levels")
    for key in _keys(value):
        if not key or "." in key or key.startswith("$"):
            raise BadOutput(f"{name} key {key!r} may not be empty, contain '.' or start with '$'")
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode())
    except UnicodeEncodeError:
        raise BadOutput(f"{name} holds an unpaired surrogate, which is not text") from None
    if size > MAX_METADATA_BYTES:
        raise BadOutput(f"{name} exceeds {MAX_METADATA_BYTES} bytes")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def _keys(value: Any) -> list[str]:
    keys: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys += [str(key) for key in item]
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return keys


class UserEvent(Shape):
    """The event of an asynchronous user point: the stored user, and for queued
    deliveries what a hook de-duplicates by."""

    user: User
    connection: Connection | None = None
    request: Request = Field(default_factory=Request)
    event_id: str | None = None
    delivery: Delivery | None = None


def _arguments(event: UserEvent, state: None, secrets: Secrets) -> dict[str, Any]:
    """``(user, context)`` of the notification points."""
    context = request_context(event.request, dict(secrets))
    context["connection"] = event.connection.model_dump() if event.connection else {}
    if event.event_id is not None:  # queued deliveries: what a hook de-duplicates by
        context["event_id"] = event.event_id
        context["delivery"] = event.delivery.model_dump() if event.delivery else {}
    return {"user": event.user.model_dump(), "context": context}


def _actions_event(event: UserEvent, state: None, secrets: Secrets) -> dict[str, Any]:
    user = event.user.model_dump()
    user["user_id"] = user.pop("id")
    found: dict[str, Any] = {
        "user": user,
        "connection": event.connection.model_dump() if event.connection else {},
        "request": event.request.model_dump(),
        "tenant": {"id": event.user.tenant},
        "secrets": dict(secrets),
    }
    if event.event_id is not None:
        found["event_id"] = event.event_id
        found["delivery"] = event.delivery.model_dump() if event.delivery else {}
    return found


def notify(state: None, output: Any) -> tuple[None, list[str]]:
    """Notification points ignore what a hook returns; the log keeps it."""
    return None, [] if output is None else [f"returned {json.dumps(output)[:500]}"]


def notification_point(
    *, id: str, description: str, user: Mapping[str, Any], templates: Mapping[str, str]
) -> Point[UserEvent, None]:
    """An asynchronous user point: ``(user, context)`` or ``(event, api)``, delivered
    at least once, its hooks' return values only logged."""
    function = id.replace("-", "_")
    return Point(
        id=id,
        description=description,
        blocking=False,
        parse_event=parser(UserEvent),
        dump_event=dump,
        event_schema=UserEvent.model_json_schema(),
        sample_event={
            "user": {"id": "auth0|5f7c8ec7c33c6c004bbafe82", **user, "tenant": "authhooks"},
            "connection": SAMPLE_CONNECTION,
            "request": SAMPLE_REQUEST,
            "event_id": "evt_3f9a51c2d8e04b7a91c6e2f0",
            "delivery": {"id": "dlv_8b2e6f0a4c1d9e7b3a5f2c8d", "attempt": 1},
        },
        initial=lambda event: None,
        merge=notify,
        hooks=HooksConvention(function=function, params=("user", "context"), arguments=_arguments),
        # Auth0's api for these points has nothing to change: the user exists already.
        actions=ActionsConvention(function=f"on_execute_{function}", event=_actions_event),
        templates=templates,
    )
