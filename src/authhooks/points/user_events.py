"""Rules shared by the user points: what a hook may set on a user, and the
state of notification points (which return nothing)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from authhooks.points import events
from authhooks.points.base import (
    SAMPLE_CONNECTION,
    SAMPLE_REQUEST,
    BadOutput,
    Point,
    request_context,
)
from authhooks.runtime.protocol import depth

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 10


def check_metadata(name: str, value: Any) -> dict[str, Any]:
    """Auth0's rules for metadata: an object whose keys have no '.' and no leading '$';
    bounded in size and depth."""
    if not isinstance(value, dict):
        raise BadOutput(f"{name} must be an object")
    if depth(value) > MAX_METADATA_DEPTH:
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


def user_arguments(
    event: Mapping[str, Any], state: None, secrets: Mapping[str, str]
) -> dict[str, Any]:
    """``(user, context)`` of the notification points."""
    context = request_context(event, secrets)
    context["connection"] = dict(event.get("connection", {}))
    if "event_id" in event:  # queued deliveries: what a hook de-duplicates by
        context["event_id"] = event["event_id"]
        context["delivery"] = dict(event.get("delivery", {}))
    return {"user": dict(event["user"]), "context": context}


def notify(state: None, output: Any) -> tuple[None, list[str]]:
    """Notification points ignore what a hook returns; the log keeps it."""
    return None, [] if output is None else [f"returned {json.dumps(output)[:500]}"]


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


def notification_point(
    *, name: str, description: str, user: dict[str, Any], template: str
) -> Point:
    """An asynchronous user point: ``(user, context)``, delivered at least once, its
    hooks' return values only logged."""
    return Point(
        name=name,
        description=description,
        blocking=False,
        entry=name.replace("-", "_"),
        params=("user", "context"),
        arguments=user_arguments,
        merge=notify,
        initial=lambda event: None,
        sample_event={
            "user": {"id": "auth0|5f7c8ec7c33c6c004bbafe82", **user, "tenant": "authhooks"},
            "connection": SAMPLE_CONNECTION,
            "request": SAMPLE_REQUEST,
            "event_id": "evt_3f9a51c2d8e04b7a91c6e2f0",
            "delivery": {"id": "dlv_8b2e6f0a4c1d9e7b3a5f2c8d", "attempt": 1},
        },
        template=template,
        event_model=events.UserNotificationEvent,
    )
