"""post-user-registration: after the user is stored; asynchronous, at least once."""

from __future__ import annotations

from authhooks.points import events
from authhooks.points.base import SAMPLE_CONNECTION, SAMPLE_REQUEST, Point
from authhooks.points.user_events import notify, user_arguments

POINT = Point(
    name="post-user-registration",
    description="React to a new user (notify a CRM, send a welcome message).",
    blocking=False,
    entry="post_user_registration",
    params=("user", "context"),
    arguments=user_arguments,
    merge=notify,
    initial=lambda event: None,
    sample_event={
        "user": {
            "id": "auth0|5f7c8ec7c33c6c004bbafe82",
            "email": "ada@example.com",
            "email_verified": False,
            "user_metadata": {},
            "app_metadata": {},
            "created_at": "2026-11-27T10:00:00Z",
            "tenant": "authhooks",
        },
        "connection": SAMPLE_CONNECTION,
        "request": SAMPLE_REQUEST,
        "event_id": "evt_3f9a51c2d8e04b7a91c6e2f0",
        "delivery": {"id": "dlv_8b2e6f0a4c1d9e7b3a5f2c8d", "attempt": 1},
    },
    template='''\
def post_user_registration(user, context):
    """Runs after a user is stored, at least once: de-duplicate by context["event_id"].

    Its return value is only logged.
    """
    print("welcome", user["email"])
''',
    event_model=events.UserNotificationEvent,
)
