"""post-change-password: after a password change; asynchronous, at least once."""

from __future__ import annotations

from authhooks.points import events
from authhooks.points.base import SAMPLE_CONNECTION, SAMPLE_REQUEST, Point
from authhooks.points.user_events import notify, user_arguments

POINT = Point(
    name="post-change-password",
    description="React to a password change (notify the user, revoke sessions elsewhere).",
    blocking=False,
    entry="post_change_password",
    params=("user", "context"),
    arguments=user_arguments,
    merge=notify,
    initial=lambda event: None,
    sample_event={
        "user": {
            "id": "auth0|5f7c8ec7c33c6c004bbafe82",
            "email": "ada@example.com",
            "last_password_reset": "2026-11-27T10:00:00Z",
            "tenant": "authhooks",
        },
        "connection": SAMPLE_CONNECTION,
        "request": SAMPLE_REQUEST,
        "event_id": "evt_3f9a51c2d8e04b7a91c6e2f0",
        "delivery": {"id": "dlv_8b2e6f0a4c1d9e7b3a5f2c8d", "attempt": 1},
    },
    template='''\
def post_change_password(user, context):
    """Runs after a user's password changed, at least once: de-duplicate by
    context["event_id"]. Its return value is only logged."""
    print("password changed for", user["email"])
''',
    event_model=events.UserNotificationEvent,
)
