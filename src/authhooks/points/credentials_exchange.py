"""credentials-exchange: POST /oauth/token with client_credentials, after the client
is authenticated and its grant checked, before the token is signed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authhooks.points import events, token
from authhooks.points.base import Point, request_context


def _arguments(
    event: Mapping[str, Any], state: token.TokenState, secrets: Mapping[str, str]
) -> dict[str, Any]:
    context = request_context(event, secrets)
    context["claims"] = dict(state.claims)  # custom claims added by earlier hooks
    return {
        "client": dict(event["client"]),
        "scope": list(state.scopes),
        "audience": event["audience"],
        "context": context,
    }


POINT = Point(
    name="credentials-exchange",
    description="Change the scopes and add custom claims of a client-credentials token.",
    blocking=True,
    entry="credentials_exchange",
    params=("client", "scope", "audience", "context"),
    arguments=_arguments,
    merge=token.merge,
    initial=token.initial,
    sample_event={
        "client": {
            "id": "6qL3rOvcuBsYrvDvyIZgHYd3ZKbv3B0O",
            "name": "billing-worker",
            "metadata": {"tier": "gold"},
            "tenant": "authhooks",
        },
        "scope": ["read:invoices", "write:invoices"],
        "api_scopes": ["read:invoices", "write:invoices", "delete:invoices"],
        "audience": "https://api.example.com/",
        "request": {
            "ip": "203.0.113.7",
            "user_agent": "billing-worker/2.1",
            "hostname": "id.example.com",
            "language": "en",
        },
    },
    template='''\
from authhooks.hook import InvalidScopeError


def credentials_exchange(client, scope, audience, context):
    """Runs before a client-credentials access token is signed.

    client:   {"id", "name", "metadata", "tenant"}
    scope:    the scopes granted so far (a list)
    audience: the API the token is for
    context:  {"secrets", "request": {"ip", "user_agent", "hostname", "language"},
               "claims" (custom claims added by earlier hooks), "server"}

    Return {"scope": [...]} to replace the scopes, and http(s)-URL keys to add
    claims. Raise InvalidScopeError / InvalidRequestError (400) or ServerError
    (500) to refuse the token.
    """
    # if "admin" in scope and client["metadata"].get("tier") != "gold":
    #     raise InvalidScopeError("admin needs the gold tier")
    return {
        "scope": scope,
        "https://example.com/tier": client["metadata"].get("tier", "free"),
    }
''',
    event_model=events.CredentialsExchangeEvent,
)
