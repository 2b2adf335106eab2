"""post-change-password: after a password change; asynchronous, at least once."""

from __future__ import annotations

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
    },
    template='''\
def post_change_password(user, context):
    """Runs after a user's password changed, at least once. Its return value is only logged."""
    print("password changed for", user["email"])
''',
)
