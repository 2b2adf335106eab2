"""pre-user-registration: signup, after input validation, before the user is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from authhooks.points.contract import (
    ActionsConvention,
    BadOutput,
    Denial,
    Denied,
    HooksConvention,
    Output,
    Point,
    Preview,
    Refusal,
    Secrets,
)
from authhooks.points.shapes import (
    SAMPLE_CONNECTION,
    SAMPLE_REQUEST,
    Connection,
    NewUser,
    Request,
    Shape,
    dump,
    parser,
    request_context,
)
from authhooks.points.user_events import check_metadata

# What a signup that a hook refused says when the hook gave no message for users.
REFUSED = "the signup was refused"


class Event(Shape):
    user: NewUser
    connection: Connection | None = None
    request: Request = Field(default_factory=Request)


@dataclass(frozen=True)
class SignupMetadata:
    """The flow's state: the metadata hooks set so far, stored with the user."""

    user_metadata: dict[str, Any] = field(default_factory=dict)
    app_metadata: dict[str, Any] = field(default_factory=dict)


def _user(event: Event, state: SignupMetadata) -> dict[str, Any]:
    user = event.user.model_dump()
    user["user_metadata"] = {**user["user_metadata"], **state.user_metadata}
    user["app_metadata"] = dict(state.app_metadata)
    return user


def _arguments(event: Event, state: SignupMetadata, secrets: Secrets) -> dict[str, Any]:
    context = request_context(event.request, dict(secrets))
    context["connection"] = event.connection.model_dump() if event.connection else {}
    return {"user": _user(event, state), "context": context}


def _actions_event(event: Event, state: SignupMetadata, secrets: Secrets) -> dict[str, Any]:
    return {
        "user": _user(event, state),
        "connection": event.connection.model_dump() if event.connection else {},
        "request": event.request.model_dump(),
        "tenant": {"id": event.user.tenant},
        "secrets": dict(secrets),
    }


def _merge(state: SignupMetadata, output: Any) -> tuple[SignupMetadata, list[str]]:
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
    return SignupMetadata(user_metadata, app_metadata), []


def _set_metadata(kind: str) -> Any:
    def command(state: SignupMetadata, output: Output, args: Sequence[Any]) -> None:
        if len(args) != 2 or not isinstance(args[0], str):
            raise BadOutput(f"api.user.set_{kind} takes (key, value)")
        output.setdefault("user", {}).setdefault(kind, {})[args[0]] = args[1]

    return command


def _deny(state: SignupMetadata, output: Output, args: Sequence[Any]) -> None:
    """Auth0's ``api.access.deny(reason, user_message)``."""
    if not 1 <= len(args) <= 2 or not all(isinstance(arg, str) for arg in args):
        raise BadOutput("api.access.deny takes (reason, user_message)")
    raise Denied(Denial("access_denied", args[0], args[1] if len(args) == 2 else None))


def refuse(hook: str, denial: Denial | None, failure: str) -> Refusal:
    """The end user sees the hook's user message when it refused on purpose, else a
    plain sentence: never what went wrong inside the hook."""
    message = denial.user_message if denial is not None else None
    return Refusal("extensibility_error", message or REFUSED, denial)


def preview(event: Event, state: SignupMetadata, output: Any, server: Preview) -> dict[str, Any]:
    return {"user": {"user_metadata": state.user_metadata, "app_metadata": state.app_metadata}}


HOOKS_TEMPLATE = '''\
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
'''

ACTIONS_TEMPLATE = '''\
def on_execute_pre_user_registration(event, api):
    """Runs before a new user is stored. The password is never passed.

    event: {"user": {"email", "username", "phone_number", "user_metadata", "app_metadata"},
            "connection", "request", "tenant", "secrets"}
    api:   api.user.set_user_metadata(key, value), api.user.set_app_metadata(key, value);
           api.access.deny(reason, user_message) refuses the signup (the user sees
           user_message only)
    """
    if event["user"]["email"].endswith("@example.org"):
        api.access.deny("blocked domain", "Sign-ups from this domain are closed")
        return
    api.user.set_app_metadata("plan", "free")
'''

HOOKS_TEMPLATE_JS = """\
/**
 * Runs before a new user is stored. The password is never passed.
 *
 * @param {object} user - {email, username, phone_number, user_metadata, app_metadata, tenant}
 * @param {object} context - {webtask: {secrets}, request, connection}
 * @param {function} cb - cb(null, {user: {user_metadata, app_metadata}}) stores metadata;
 *   cb(new PreUserRegistrationError(logMessage, userMessage)) refuses the signup
 */
module.exports = function (user, context, cb) {
  if (user.email.endsWith('@example.org')) {
    const userMessage = 'Sign-ups from this domain are closed';
    return cb(new PreUserRegistrationError('blocked domain', userMessage));
  }
  cb(null, { user: { app_metadata: { plan: 'free' } } });
};
"""

ACTIONS_TEMPLATE_JS = """\
/**
 * Runs before a new user is stored. The password is never passed.
 *
 * @param {object} event - {user: {email, username, phone_number, user_metadata,
 *   app_metadata}, connection, request, tenant, secrets}
 * @param {object} api - api.user.setUserMetadata(key, value), .setAppMetadata(key, value);
 *   api.access.deny(reason, userMessage) refuses the signup
 */
exports.onExecutePreUserRegistration = async (event, api) => {
  if (event.user.email.endsWith('@example.org')) {
    api.access.deny('blocked domain', 'Sign-ups from this domain are closed');
    return;
  }
  api.user.setAppMetadata('plan', 'free');
};
"""

POINT: Point[Event, SignupMetadata] = Point(
    id="pre-user-registration",
    description="Refuse a signup, or add metadata to the user before it is stored.",
    blocking=True,
    parse_event=parser(Event),
    dump_event=dump,
    event_schema=Event.model_json_schema(),
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
    initial=lambda event: SignupMetadata(),
    merge=_merge,
    hooks=HooksConvention(
        function="pre_user_registration", params=("user", "context"), arguments=_arguments
    ),
    actions=ActionsConvention(
        function="on_execute_pre_user_registration",
        event=_actions_event,
        api={
            "user": {
                "set_user_metadata": _set_metadata("user_metadata"),
                "set_app_metadata": _set_metadata("app_metadata"),
            },
            "access": {"deny": _deny},
        },
    ),
    refuse=refuse,
    preview=preview,
    templates={
        "hooks": HOOKS_TEMPLATE,
        "actions": ACTIONS_TEMPLATE,
        "hooks.js": HOOKS_TEMPLATE_JS,
        "actions.js": ACTIONS_TEMPLATE_JS,
    },
)
