"""credentials-exchange: POST /oauth/token with client_credentials, after the client
is authenticated and its grant checked, before the token is signed."""

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
from authhooks.points.shapes import Client, Request, Shape, dump, parser, request_context


class Event(Shape):
    client: Client
    scope: list[str]  # granted, and asked for
    audience: str
    api_scopes: list[str] | None = None  # the API's scopes: what a hook may add
    request: Request = Field(default_factory=Request)


def _arguments(event: Event, state: token.TokenState, secrets: Secrets) -> dict[str, Any]:
    context = request_context(event.request, dict(secrets))
    context["claims"] = dict(state.claims)  # custom claims added by earlier hooks
    return {
        "client": event.client.model_dump(),
        "scope": list(state.scopes),
        "audience": event.audience,
        "context": context,
    }


def _actions_event(event: Event, state: token.TokenState, secrets: Secrets) -> dict[str, Any]:
    """Auth0's credentials-exchange event, snake_case."""
    return {
        "client": {
            "client_id": event.client.id,
            "name": event.client.name,
            "metadata": dict(event.client.metadata),
        },
        "resource_server": {"identifier": event.audience},
        "transaction": {"requested_scopes": list(event.scope)},
        "access_token": {"scope": list(state.scopes), "custom_claims": dict(state.claims)},
        "request": event.request.model_dump(),
        "tenant": {"id": event.client.tenant},
        "secrets": dict(secrets),
    }


def preview(event: Event, state: token.TokenState, output: Any, server: Preview) -> dict[str, Any]:
    """The scopes and the claims as they would be signed (time and jti at signing)."""
    claims = token.access_token_claims(
        issuer=server.issuer,
        subject=f"{event.client.id}@clients",
        audience=event.audience,
        client_id=event.client.id,
        scopes=state.scopes,
        grant="client-credentials",
        custom=state.claims,
        issued_at=0,
        lifetime=server.token_lifetime,
        jti="",
    )
    for at_signing in ("iat", "exp", "jti"):
        del claims[at_signing]
    return {"scope": list(state.scopes), "claims": claims}


HOOKS_TEMPLATE = '''\
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
'''

ACTIONS_TEMPLATE = '''\
def on_execute_credentials_exchange(event, api):
    """Runs before a client-credentials access token is signed.

    event: {"client": {"client_id", "name", "metadata"}, "resource_server": {"identifier"},
            "transaction": {"requested_scopes"}, "access_token": {"scope", "custom_claims"},
            "request": {"ip", "user_agent", "hostname", "language"}, "tenant", "secrets"}
    api:   api.access_token.set_custom_claim(name, value), .add_scope(s), .remove_scope(s);
           api.access.deny(code, reason), code one of invalid_scope, invalid_request,
           server_error
    """
    tier = event["client"]["metadata"].get("tier", "free")
    api.access_token.set_custom_claim("https://example.com/tier", tier)
'''

HOOKS_TEMPLATE_JS = """\
/**
 * Runs before a client-credentials access token is signed.
 *
 * @param {object} client - {id, name, metadata, tenant}
 * @param {string[]} scope - the scopes granted so far
 * @param {string} audience - the API the token is for
 * @param {object} context - {webtask: {secrets}, request: {ip, user_agent, hostname,
 *   language}, claims (custom claims added by earlier hooks)}
 * @param {function} cb - cb(error, accessToken): accessToken.scope replaces the scopes,
 *   and http(s)-URL keys become claims; cb(new InvalidScopeError(message)) refuses
 */
module.exports = function (client, scope, audience, context, cb) {
  const accessToken = { scope };
  accessToken['https://example.com/tier'] = client.metadata.tier || 'free';
  cb(null, accessToken);
};
"""

ACTIONS_TEMPLATE_JS = """\
/**
 * Runs before a client-credentials access token is signed.
 *
 * @param {object} event - {client: {client_id, name, metadata}, resource_server: {identifier},
 *   transaction: {requested_scopes}, access_token: {scope, custom_claims}, request, tenant,
 *   secrets}
 * @param {object} api - api.accessToken.setCustomClaim(name, value), .addScope(scope),
 *   .removeScope(scope); api.access.deny(code, reason)
 */
exports.onExecuteCredentialsExchange = async (event, api) => {
  const tier = event.client.metadata.tier || 'free';
  api.accessToken.setCustomClaim('https://example.com/tier', tier);
};
"""

POINT: Point[Event, token.TokenState] = Point(
    id="credentials-exchange",
    description="Change the scopes and add custom claims of a client-credentials token.",
    blocking=True,
    parse_event=parser(Event),
    dump_event=dump,
    event_schema=Event.model_json_schema(),
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
    initial=lambda event: token.initial(event.scope, event.api_scopes),
    merge=token.merge,
    hooks=HooksConvention(
        function="credentials_exchange",
        params=("client", "scope", "audience", "context"),
        arguments=_arguments,
    ),
    actions=ActionsConvention(
        function="on_execute_credentials_exchange", event=_actions_event, api=token.API
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
