"""password-exchange: POST /oauth/token with grant_type=password, after the user
is authenticated, before the token is signed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authhooks.points import events, token
from authhooks.points.base import SAMPLE_CONNECTION, SAMPLE_REQUEST, Point, request_context


def _arguments(
    event: Mapping[str, Any], state: token.TokenState, secrets: Mapping[str, str]
) -> dict[str, Any]:
    context = request_context(event, secrets)
    context["claims"] = dict(state.claims)
    context["connection"] = dict(event.get("connection", {}))
    return {
        "user": dict(event["user"]),
        "client": dict(event["client"]),
        "scope": list(state.scopes),
        "audience": event["audience"],
        "context": context,
    }


POINT = Point(
    name="password-exchange",
    description="Change the scopes and add custom claims of a password-grant token.",
    blocking=True,
    entry="password_exchange",
    params=("user", "client", "scope", "audience", "context"),
    arguments=_arguments,
    merge=token.merge,
    initial=token.initial,
    sample_event={
        "user": {
            "id": "auth0|5f7c8ec7c33c6c004bbafe82",
            "email": "ada@example.com",
            "email_verified": True,
            "user_metadata": {"plan": "pro"},
            "app_metadata": {"roles": ["editor"]},
        },
        "client": {"id": "mobile-app", "name": "Mobile app", "metadata": {}, "tenant": "authhooks"},
        "scope": ["read:notes"],
        "api_scopes": ["read:notes", "write:notes"],
        "audience": "https://api.example.com/",
        "connection": SAMPLE_CONNECTION,
        "request": SAMPLE_REQUEST,
    },
    template='''\
def password_exchange(user, client, scope, audience, context):
    """Runs before a password-grant access token is signed.

    Return {"scope": [...]} to replace the scopes, and http(s)-URL keys to add
    claims. Raise InvalidScopeError / InvalidRequestError (400) or ServerError (500).
    """
    return {"scope": scope, "https://example.com/roles": user["app_metadata"].get("roles", [])}
''',
    event_model=events.PasswordExchangeEvent,
)
