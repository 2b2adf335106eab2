"""post-login: a person signed in through the browser (the authorization-code flow),
after authentication and before the application gets its authorization code; on
refresh too, when the server is configured so.

A flow of hooks may refuse the sign-in, add custom claims to the ID token and the
access token, change the access token's scopes, and change the user's
``app_metadata`` and ``user_metadata``. The caller builds an ``Event``, runs the
flow, and applies the ``PostLoginState`` it ends with (or answers the flow's
``Refusal`` at the application's callback).

A Hooks function returns a dict of what changes::

    {"access_token": {"https://example.com/roles": [...]},   # custom claims
     "id_token": {"https://example.com/roles": [...]},       # custom claims
     "scope": ["read:notes"],                                 # replaces the scopes
     "app_metadata": {"plan": "pro", "trial": None},          # key -> value; None deletes
     "user_metadata": {"theme": "dark"}}

and raises ``UnauthorizedError(message)`` to refuse. The Actions ``api`` builds the
same dict (``api.id_token.set_custom_claim``, ``api.access_token.add_scope``,
``api.user.set_app_metadata``, ...); ``api.access.deny(reason)`` refuses.

Both tokens follow the token points' rules (token.py): only http(s)-URL names
become claims, and a claim the server sets can never be overwritten; a hook may
narrow the scopes and add only scopes the API defines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from authhooks.points import token
from authhooks.points.contract import (
    ActionsConvention,
    BadOutput,
    Command,
    Denial,
    Denied,
    HooksConvention,
    Output,
    Point,
    Preview,
    Refusal,
    Secrets,
    refuse_as_server_error,
)
from authhooks.points.shapes import (
    SAMPLE_CONNECTION,
    SAMPLE_REQUEST,
    Authentication,
    Client,
    Connection,
    Request,
    Session,
    Shape,
    Stats,
    Transaction,
    User,
    dump,
    parser,
    request_context,
)
from authhooks.points.user_events import check_metadata

# --- the event --------------------------------------------------------------------------


class Event(Shape):
    user: User
    client: Client
    scope: list[str]  # the API scopes the access token starts with
    audience: str | None = None  # the API the access token is for; None: no API
    api_scopes: list[str] | None = None  # the API's scopes: what a hook may add
    connection: Connection = Field(default_factory=Connection)
    request: Request = Field(default_factory=Request)
    transaction: Transaction = Field(default_factory=Transaction)
    authentication: Authentication = Field(default_factory=Authentication)
    stats: Stats = Field(default_factory=Stats)
    session: Session | None = None


# --- the state, and the rules a hook's output follows ------------------------------------

# OpenID Connect Core §2 and §5.1, and what an ID token carries besides: the server
# sets these, never a hook.
ID_TOKEN_RESERVED_CLAIMS = frozenset(
    {
        "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp",
        "at_hash", "c_hash", "sid", "nbf", "jti",
        "name", "given_name", "family_name", "middle_name", "nickname",
        "preferred_username", "profile", "picture", "website", "email", "email_verified",
        "gender", "birthdate", "zoneinfo", "locale", "phone_number",
        "phone_number_verified", "address", "updated_at",
    }
)  # fmt: skip
METADATA = ("app_metadata", "user_metadata")
_KEYS = "access_token, id_token, scope, app_metadata and user_metadata"


@dataclass(frozen=True)
class PostLoginState:
    """What the flow has made of the sign-in so far."""

    # The access token's scopes and custom claims, bounded by the API's scopes.
    access_token: token.TokenState
    id_token_claims: dict[str, Any] = field(default_factory=dict)  # custom claims
    # Changes to the user's metadata: key -> new value; None deletes the key.
    app_metadata: dict[str, Any] = field(default_factory=dict)
    user_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.access_token.scopes

    @property
    def access_token_claims(self) -> dict[str, Any]:
        return self.access_token.claims


def initial(event: Event) -> PostLoginState:
    """The scopes asked for; the API's scopes bound what hooks may add. With no API
    (no audience) a hook may remove scopes but add none."""
    if event.api_scopes is not None:
        defined: frozenset[str] | None = frozenset(event.api_scopes)
    elif event.audience is None:
        defined = frozenset(event.scope)
    else:
        defined = None  # a runner event that does not say
    return PostLoginState(token.TokenState(tuple(event.scope), defined=defined))


def updated_metadata(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` metadata with ``changes`` applied: a key set to None is deleted,
    as Auth0's ``api.user.setAppMetadata(key, null)`` does."""
    updated = dict(current)
    for key, value in changes.items():
        if value is None:
            updated.pop(key, None)
        else:
            updated[key] = value
    return updated


def merge(state: PostLoginState, output: Any) -> tuple[PostLoginState, list[str]]:
    if output is None:
        return state, []
    if not isinstance(output, dict):
        raise BadOutput(f"the hook must return a dict (or None), not {type(output).__name__}")
    notes: list[str] = []
    for_access_token: dict[str, Any] = {}
    id_claims = dict(state.id_token_claims)
    metadata = {kind: dict(getattr(state, kind)) for kind in METADATA}
    for key, value in output.items():
        if value is None:
            continue
        if key == "scope":
            for_access_token["scope"] = value
        elif key == "access_token":
            for name, claim in _claims(key, value).items():
                if name == "scope":
                    notes.append(
                        "access_token key 'scope' was ignored: the scopes are the result's "
                        "own 'scope' list"
                    )
                else:
                    for_access_token[name] = claim
        elif key == "id_token":
            for name, claim in _claims(key, value).items():
                if token.is_custom_claim(name):
                    id_claims[name] = claim
                else:
                    notes.append(_not_a_claim("ID token", name, ID_TOKEN_RESERVED_CLAIMS))
        elif key in METADATA:
            if not isinstance(value, dict):
                raise BadOutput(f"{key} must be an object of changes (key -> value)")
            metadata[key].update(value)
            check_metadata(key, metadata[key])
        elif token.is_custom_claim(key):
            notes.append(
                f"key {key!r} was ignored: put custom claims in 'access_token' or 'id_token'"
            )
        else:
            notes.append(f"key {key!r} was ignored: a post-login hook returns {_KEYS}")
    access_token, token_notes = token.merge(state.access_token, for_access_token)
    notes += [f"access token: {note}" for note in token_notes]
    if len(json.dumps(id_claims)) > token.MAX_CLAIMS_BYTES:
        raise BadOutput(f"ID token custom claims exceed {token.MAX_CLAIMS_BYTES} bytes")
    return PostLoginState(access_token, id_claims, **metadata), notes


def _claims(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(name, str) for name in value):
        raise BadOutput(f"{key} must be an object of claims (name -> value)")
    return value


def _not_a_claim(what: str, name: str, reserved: frozenset[str]) -> str:
    if name in reserved:
        return f"{what}: claim {name!r} is set by the server and cannot be overwritten"
    return (
        f"{what}: key {name!r} was ignored: custom claims must be namespaced with an "
        "http(s) URL, such as 'https://example.com/roles'"
    )


def refuse(hook: str, denial: Denial | None, failure: str) -> Refusal:
    """A deliberate refusal (``api.access.deny(reason)``, ``UnauthorizedError``) is
    ``access_denied``, described by its reason; anything else is a server_error
    naming the hook and what went wrong, never a traceback."""
    if denial is not None and denial.code == "access_denied":
        description = denial.user_message or denial.message or f"refused by hook {hook!r}"
        return Refusal("access_denied", description, denial)
    return refuse_as_server_error(hook, denial, failure)


# --- what hooks receive -------------------------------------------------------------------


def _user(event: Event, state: PostLoginState) -> dict[str, Any]:
    """The user, with the metadata changes of earlier hooks applied."""
    user = event.user.model_dump()
    for kind in METADATA:
        user[kind] = updated_metadata(user[kind], getattr(state, kind))
    return user


def _arguments(event: Event, state: PostLoginState, secrets: Secrets) -> dict[str, Any]:
    """``post_login(user, context)``: the sign-in in ``context``, with what earlier
    hooks of the flow made of the tokens."""
    context = request_context(event.request, dict(secrets))
    context.update(
        {
            "client": event.client.model_dump(),
            "connection": event.connection.model_dump(),
            "audience": event.audience,
            "scope": list(state.scopes),
            "access_token": dict(state.access_token_claims),
            "id_token": dict(state.id_token_claims),
            "transaction": event.transaction.model_dump(),
            "authentication": event.authentication.model_dump(),
            "stats": event.stats.model_dump(),
            "session": event.session.model_dump() if event.session else None,
        }
    )
    return {"user": _user(event, state), "context": context}


def _actions_event(event: Event, state: PostLoginState, secrets: Secrets) -> dict[str, Any]:
    """Auth0's post-login event, snake_case; plus the tokens so far, as the token
    points give them."""
    user = _user(event, state)
    user = {"user_id": user.pop("id"), **user}
    return {
        "user": user,
        "client": {
            "client_id": event.client.id,
            "name": event.client.name,
            "metadata": dict(event.client.metadata),
        },
        "connection": event.connection.model_dump(),
        "resource_server": {"identifier": event.audience} if event.audience else None,
        "transaction": event.transaction.model_dump(),
        "authentication": event.authentication.model_dump(),
        "stats": event.stats.model_dump(),
        "session": event.session.model_dump() if event.session else None,
        "access_token": {
            "scope": list(state.scopes),
            "custom_claims": dict(state.access_token_claims),
        },
        "id_token": {"custom_claims": dict(state.id_token_claims)},
        "request": event.request.model_dump(),
        "tenant": {"id": event.client.tenant},
        "secrets": dict(secrets),
    }


def preview(event: Event, state: PostLoginState, output: Any, server: Preview) -> dict[str, Any]:
    """Both tokens' claims as they would be signed (times, ``jti``, ``nonce`` and the
    like at signing), and the metadata changes."""
    access = token.access_token_claims(
        issuer=server.issuer,
        subject=event.user.id,
        audience=event.audience or "",
        client_id=event.client.id,
        scopes=state.scopes,
        grant="",  # as in Auth0, a person's token carries no gty
        custom=state.access_token_claims,
        issued_at=0,
        lifetime=server.token_lifetime,
        jti="",
    )
    for at_signing in ("iat", "exp", "jti"):
        del access[at_signing]
    if event.audience is None:
        del access["aud"]  # no API: the caller decides what the token is for
    # The custom claims first, so that none can replace those the server sets.
    id_token = {
        **state.id_token_claims,
        "iss": server.issuer,
        "sub": event.user.id,
        "aud": event.client.id,
    }
    return {
        "access_token": {"scope": list(state.scopes), "claims": access},
        "id_token": {"claims": id_token},
        "app_metadata": dict(state.app_metadata),
        "user_metadata": dict(state.user_metadata),
    }


# --- the Actions convention's api ----------------------------------------------------------


def _set_custom_claim(token_name: str) -> Command:
    def command(state: PostLoginState, output: Output, args: Sequence[Any]) -> None:
        if len(args) != 2 or not isinstance(args[0], str):
            raise BadOutput(f"api.{token_name}.set_custom_claim takes (name, value)")
        output.setdefault(token_name, {})[args[0]] = args[1]

    return command


def _scope_change(add: bool) -> Command:
    def change(state: PostLoginState, output: Output, args: Sequence[Any]) -> None:
        if len(args) != 1 or not isinstance(args[0], str):
            name = "add_scope" if add else "remove_scope"
            raise BadOutput(f"api.access_token.{name} takes (scope)")
        scopes = list(output.get("scope", state.scopes))
        if add and args[0] not in scopes:
            scopes.append(args[0])
        elif not add:
            scopes = [scope for scope in scopes if scope != args[0]]
        output["scope"] = scopes

    return change


def _set_metadata(kind: str) -> Command:
    def command(state: PostLoginState, output: Output, args: Sequence[Any]) -> None:
        if len(args) != 2 or not isinstance(args[0], str):
            raise BadOutput(f"api.user.set_{kind} takes (key, value)")
        output.setdefault(kind, {})[args[0]] = args[1]

    return command


def _deny(state: PostLoginState, output: Output, args: Sequence[Any]) -> None:
    """Auth0's post-login ``api.access.deny(reason)``: one argument, the reason the
    application is given."""
    if len(args) != 1 or not isinstance(args[0], str):
        raise BadOutput("api.access.deny takes (reason), the reason the application is given")
    raise Denied(Denial("access_denied", args[0], args[0]))


API: Mapping[str, Mapping[str, Command]] = {
    "access": {"deny": _deny},
    "access_token": {
        "set_custom_claim": _set_custom_claim("access_token"),
        "add_scope": _scope_change(add=True),
        "remove_scope": _scope_change(add=False),
    },
    "id_token": {"set_custom_claim": _set_custom_claim("id_token")},
    "user": {
        "set_app_metadata": _set_metadata("app_metadata"),
        "set_user_metadata": _set_metadata("user_metadata"),
    },
}

# --- starter code ------------------------------------------------------------------------

HOOKS_TEMPLATE = '''\
from authhooks.hook import UnauthorizedError


def post_login(user, context):
    """Runs after a person signs in, before the application gets its authorization code.

    user:    {"id", "email", "email_verified", "user_metadata", "app_metadata", ...}
    context: {"client", "connection", "audience", "scope" (granted so far),
              "access_token" / "id_token" (custom claims so far), "transaction",
              "authentication", "stats": {"logins_count"}, "session", "request",
              "secrets"}

    Return {"access_token": {...}, "id_token": {...}} to add claims (http(s)-URL names),
    {"scope": [...]} to replace the scopes, {"app_metadata": {...}} or
    {"user_metadata": {...}} to change the user's metadata (None deletes a key).
    Raise UnauthorizedError(message) to refuse the sign-in: the application gets
    access_denied with the message.
    """
    if not user["email_verified"]:
        raise UnauthorizedError("Please verify your email before signing in")
    roles = user["app_metadata"].get("roles", [])
    return {
        "id_token": {"https://example.com/roles": roles},
        "access_token": {"https://example.com/roles": roles},
    }
'''

ACTIONS_TEMPLATE = '''\
def on_execute_post_login(event, api):
    """Runs after a person signs in, before the application gets its authorization code.

    event: {"user": {"user_id", "email", "app_metadata", ...}, "client", "connection",
            "resource_server", "transaction": {"requested_scopes", "protocol", ...},
            "authentication": {"methods"}, "stats": {"logins_count"}, "session",
            "request", "tenant", "secrets"}
    api:   api.id_token.set_custom_claim(name, value);
           api.access_token.set_custom_claim(name, value), .add_scope(s), .remove_scope(s);
           api.user.set_app_metadata(key, value), .set_user_metadata(key, value);
           api.access.deny(reason) refuses the sign-in (access_denied, with the reason)
    """
    if not event["user"]["email_verified"]:
        api.access.deny("Please verify your email before signing in")
        return
    roles = event["user"]["app_metadata"].get("roles", [])
    api.id_token.set_custom_claim("https://example.com/roles", roles)
    api.access_token.set_custom_claim("https://example.com/roles", roles)
'''

HOOKS_TEMPLATE_JS = """\
/**
 * Runs after a person signs in, before the application gets its authorization code.
 *
 * @param {object} user - {id, email, email_verified, user_metadata, app_metadata, ...}
 * @param {object} context - {client, connection, audience, scope (granted so far),
 *   access_token, id_token (custom claims so far), transaction, authentication,
 *   stats: {logins_count}, session, request, webtask: {secrets}}
 * @param {function} cb - cb(null, {access_token, id_token, scope, app_metadata,
 *   user_metadata}); cb(new UnauthorizedError(message)) refuses the sign-in
 */
module.exports = function (user, context, cb) {
  if (!user.email_verified) {
    return cb(new UnauthorizedError('Please verify your email before signing in'));
  }
  const roles = user.app_metadata.roles || [];
  cb(null, {
    id_token: { 'https://example.com/roles': roles },
    access_token: { 'https://example.com/roles': roles },
  });
};
"""

ACTIONS_TEMPLATE_JS = """\
/**
 * Runs after a person signs in, before the application gets its authorization code.
 *
 * @param {object} event - {user: {user_id, email, app_metadata, ...}, client, connection,
 *   resource_server, transaction, authentication, stats, session, request, tenant, secrets}
 * @param {object} api - api.idToken.setCustomClaim(name, value);
 *   api.accessToken.setCustomClaim(name, value), .addScope(scope), .removeScope(scope);
 *   api.user.setAppMetadata(key, value), .setUserMetadata(key, value);
 *   api.access.deny(reason) refuses the sign-in
 */
exports.onExecutePostLogin = async (event, api) => {
  if (!event.user.email_verified) {
    api.access.deny('Please verify your email before signing in');
    return;
  }
  const roles = event.user.app_metadata.roles || [];
  api.idToken.setCustomClaim('https://example.com/roles', roles);
  api.accessToken.setCustomClaim('https://example.com/roles', roles);
};
"""

POINT: Point[Event, PostLoginState] = Point(
    id="post-login",
    description=(
        "Refuse a sign-in, add claims to its ID and access tokens, change the scopes "
        "and the user's metadata."
    ),
    blocking=True,
    parse_event=parser(Event),
    dump_event=dump,
    event_schema=Event.model_json_schema(),
    sample_event={
        "user": {
            "id": "auth0|5f7c8ec7c33c6c004bbafe82",
            "email": "ada@example.com",
            "email_verified": True,
            "user_metadata": {"theme": "dark"},
            "app_metadata": {"roles": ["editor"]},
            "created_at": "2026-03-02T09:15:00Z",
            "tenant": "authhooks",
        },
        "client": {"id": "notes-web", "name": "Notes", "metadata": {}, "tenant": "authhooks"},
        "scope": ["read:notes"],
        "audience": "https://api.example.com/",
        "api_scopes": ["read:notes", "write:notes"],
        "connection": SAMPLE_CONNECTION,
        "request": SAMPLE_REQUEST,
        "transaction": {
            "requested_scopes": ["openid", "profile", "email", "read:notes"],
            "prompt": ["login"],
            "redirect_uri": "https://notes.example.com/callback",
            "response_type": ["code"],
            "protocol": "oidc-basic-profile",
            "ui_locales": ["en"],
            "login_hint": "ada@example.com",
        },
        "authentication": {"methods": [{"name": "pwd", "timestamp": "2026-11-27T10:00:00Z"}]},
        "stats": {"logins_count": 12},
        "session": {"id": "ses_7QmTz3kR9vXw2LpA"},
    },
    initial=initial,
    merge=merge,
    hooks=HooksConvention(function="post_login", params=("user", "context"), arguments=_arguments),
    actions=ActionsConvention(function="on_execute_post_login", event=_actions_event, api=API),
    refuse=refuse,
    preview=preview,
    templates={
        "hooks": HOOKS_TEMPLATE,
        "actions": ACTIONS_TEMPLATE,
        "hooks.js": HOOKS_TEMPLATE_JS,
        "actions.js": ACTIONS_TEMPLATE_JS,
    },
)
