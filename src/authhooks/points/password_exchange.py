"""password-exchange: POST /oauth/token with grant_type=password, after the user
is authenticated, before the token is signed."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from authhooks.points import token
from authhooks.points.contract import (
    ActionsConvention,
    HooksConvention,
    Point,
    Preview,
    Secrets,
)
from authhooks.points.shapes import (
    SAMPLE_CONNECTION,
    SAMPLE_REQUEST,
    Client,
    Connection,
    Request,
    Shape,
    User,
    dump,
    parser,
    request_context,
)


class Event(Shape):
    user: User
    client: Client
    scope: list[str]
    audience: str
    api_scopes: list[str] | None = None
    connection: Connection | None = None
    request: Request = Field(default_factory=Request)


def _arguments(event: Event, state: token.TokenState, secrets: Secrets) -> dict[str, Any]:
    context = request_context(event.request, dict(secrets))
    context["claims"] = dict(state.claims)
    context["connection"] = event.connection.model_dump() if event.connection else {}
    return {
        "user": event.user.model_dump(),
        "client": event.client.model_dump(),
        "scope": list(state.scopes),
        "audience": event.audience,
        "context": context,
    }


def _actions_event(event: Event, state: token.TokenState, secrets: Secrets) -> dict[str, Any]:
    user = event.user.model_dump()
    user["user_id"] = user.pop("id")
    return {
        "user": user,
        "client": {
            "client_id": event.client.id,
            "name": event.client.name,
            "metadata": dict(event.client.metadata),
        },
        "resource_server": {"identifier": event.audience},
        "transaction": {"requested_scopes": list(event.scope)},
        "access_token": {"scope": list(state.scopes), "custom_claims": dict(state.claims)},
        "connection": event.connection.model_dump() if event.connection else {},
        "request": event.request.model_dump(),
        "tenant": {"id": event.client.tenant},
        "secrets": dict(secrets),
    }


def preview(event: Event, state: token.TokenState, output: Any, server: Preview) -> dict[str, Any]:
    claims = token.access_token_claims(
        issuer=server.issuer,
        subject=event.user.id,
        audience=event.audience,
        client_id=event.client.id,
        scopes=state.scopes,
        grant="password",
        custom=state.claims,
        issued_at=0,
        lifetime=server.token_lifetime,
        jti="",
    )
    for at_signing in ("iat", "exp", "jti"):
        del claims[at_signing]
    return {"scope": list(state.scopes), "claims": claims}


HOOKS_TEMPLATE = '''\
def password_exchange(user, client, scope, audience, context):
    """Runs before a password-grant access token is signed.

    Return {"scope": [...]} to replace the scopes, and http(s)-URL keys to add
    claims. Raise InvalidScopeError / InvalidRequestError (400) or ServerError (500).
    """
    return {"scope": scope, "https://example.com/roles": user["app_metadata"].get("roles", [])}
'''

ACTIONS_TEMPLATE = '''\
def on_execute_password_exchange(event, api):
    """Runs before a password-grant access token is signed.

    event: {"user": {"user_id", "email", "app_metadata", ...}, "client", "resource_server",
            "transaction": {"requested_scopes"}, "access_token", "connection", "request",
            "tenant", "secrets"}
    api:   api.access_token.set_custom_claim(name, value), .add_scope(s), .remove_scope(s);
           api.access.deny(code, reason)
    """
    roles = event["user"]["app_metadata"].get("roles", [])
    api.access_token.set_custom_claim("https://example.com/roles", roles)
'''

HOOKS_TEMPLATE_JS = """\
/**
 * Runs before a password-grant access token is signed.
 *
 * @param {object} user - {id, email, email_verified, user_metadata, app_metadata, ...}
 * @param {object} client - {id, name, metadata, tenant}
 * @param {string[]} scope - the scopes granted so far
 * @param {string} audience - the API the token is for
 * @param {object} context - {webtask: {secrets}, request, connection, claims}
 * @param {function} cb - cb(error, accessToken)
 */
module.exports = function (user, client, scope, audience, context, cb) {
  const accessToken = { scope };
  accessToken['https://example.com/roles'] = user.app_metadata.roles || [];
  cb(null, accessToken);
};
"""

ACTIONS_TEMPLATE_JS = """\
/**
 * Runs before a password-grant access token is signed.
 *
 * @param {object} event - {user: {user_id, email, app_metadata, ...}, client,
 *   resource_server, transaction, access_token, connection, request, tenant, secrets}
 * @param {object} api - api.accessToken.setCustomClaim(name, value), .addScope(scope),
 *   .removeScope(scope); api.access.deny(code, reason)
 */
exports.onExecutePasswordExchange = async (event, api) => {
  api.accessToken.setCustomClaim('https://example.com/roles', event.user.app_metadata.roles || []);
};
"""

POINT: Point[Event, token.TokenState] = Point(
    id="password-exchange",
    description="Change the scopes and add custom claims of a password-grant token.",
    blocking=True,
    parse_event=parser(Event),
    dump_event=dump,
    event_schema=Event.model_json_schema(),
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
    initial=lambda event: token.initial(event.scope, event.api_scopes),
    merge=token.merge,
    hooks=HooksConvention(
        function="password_exchange",
        params=("user", "client", "scope", "audience", "context"),
        arguments=_arguments,
    ),
    actions=ActionsConvention(
        function="on_execute_password_exchange", event=_actions_event, api=token.API
    ),
    refuse=token.refuse,
    preview=preview,
    templates={
        "hooks": HOOKS_TEMPLATE,
        "actions": ACTIONS_TEMPLATE,
        "hooks.js": HOOKS_TEMPLATE_JS,
        "actions.js": ACTIONS_TEMPLATE_JS,
    },
)
