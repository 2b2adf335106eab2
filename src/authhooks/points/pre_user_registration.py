"""pre-user-registration: signup, after input validation, before the user is stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authhooks.points import events
from authhooks.points.base import (
    SAMPLE_CONNECTION,
    SAMPLE_REQUEST,
    BadOutput,
    Point,
    request_context,
)
from authhooks.points.user_events import check_metadata


@dataclass(frozen=True)
class Registration:
    user_metadata: dict[str, Any] = field(default_factory=dict)
    app_metadata: dict[str, Any] = field(default_factory=dict)


def _arguments(
    event: Mapping[str, Any], state: Registration, secrets: Mapping[str, str]
) -> dict[str, Any]:
    context = request_context(event, secrets)
    context["connection"] = dict(event.get("connection", {}))
    user = dict(event["user"])
    user["user_metadata"] = {**user.get("user_metadata", {}), **state.user_metadata}
    user["app_metadata"] = dict(state.app_metadata)
    return {"user": user, "context": context}


def _merge(state: Registration, output: Any) -> tuple[Registration, list[str]]:
    if output is None:
        return state, []
    if not isinstance(output, dict) or set(output) - {"user"}:
        raise BadOutput('return {"user": {"user_metadata": ..., "app_metadata": ...}} or None')
    user = output.get("user") or {}
    if not isinstance(user, dict) or set(user) - {"user_metadata", "app_metadata"}:
        raise BadOutput("only user.user_metadata and user.app_metadata may be set")
    user_metadata = dict(state.user_metadata)
    app_metadata = dict(state.app_metadata)
    if "user_metadata" in user:
        user_metadata.update(check_metadata("user_metadata", user["user_metadata"]))
    if "app_metadata" in user:
        app_metadata.update(check_metadata("app_metadata", user["app_metadata"]))
    return Registration(user_metadata, app_metadata), []


POINT = Point(
    name="pre-user-registration",
    description="Refuse a signup, or add metadata to the user before it is stored.",
    blocking=True,
    entry="pre_user_registration",
    params=("user", "context"),
    arguments=_arguments,
    merge=_merge,
    initial=lambda event: Registration(),
    sample_event={
        "user": {
            "email": "ada@example.com",
            "username": "ada",
            "phone_number": None,
            "user_metadata": {"referrer": "newsletter"},
            "tenant": "authhooks",
        },
        "connection": SAMPLE_CONNECTION,
        "request": SAMPLE_REQUEST,
    },
    template='''\
from authhooks.hook import PreUserRegistrationError


def pre_user_registration(user, context):
    """Runs before a new user is stored. The password is never passed.

    Return {"user": {"user_metadata": {...}, "app_metadata": {...}}} to store
    metadata with the user; raise PreUserRegistrationError(log_message,
    user_message) to refuse the signup (the user sees user_message only).
    """
    if user["email"].endswith("@example.org"):
        raise PreUserRegistrationError("blocked domain", "Sign-ups from this domain are closed")
    return {"user": {"app_metadata": {"plan": "free"}}}
''',
    event_model=events.PreUserRegistrationEvent,
)
