"""post-login: the contract's rules (claims on both tokens, scopes within the API's,
metadata changes, one-argument denials), then hooks of both conventions in both
languages run through the flow engine in real sandboxes, and the runner on a real
server."""

from __future__ import annotations

from typing import Any

import pytest

from authhooks.flows.engine import FlowResult, run_flow
from authhooks.hooks.store import FlowHook
from authhooks.logs.records import Invocation
from authhooks.points import credentials_exchange, post_login
from authhooks.points.contract import BadEvent, BadOutput, Denial, Denied, Preview, Refusal
from authhooks.points.post_login import POINT, PostLoginState, updated_metadata
from authhooks.points.token import TokenState
from tests.conftest import Server, unique
from tests.runtime.conftest import Harness

SERVER = Preview(issuer="https://id.example.com/", token_lifetime=3600)


def event(**changes: Any) -> post_login.Event:
    return POINT.parse_event({**POINT.sample_event, **changes})


# --- the contract ------------------------------------------------------------------------


def test_hooks_get_auth0s_event() -> None:
    sample = POINT.sample()
    given = POINT.actions.event(sample, POINT.initial(sample), {"API_KEY": "k"})
    assert given["user"]["user_id"] == "auth0|5f7c8ec7c33c6c004bbafe82"
    assert given["client"]["client_id"] == "notes-web"
    assert given["stats"]["logins_count"] == 12
    assert given["transaction"]["requested_scopes"] == ["openid", "profile", "email", "read:notes"]
    assert given["transaction"]["protocol"] == "oidc-basic-profile"
    assert given["authentication"]["methods"] == [
        {"name": "pwd", "timestamp": "2026-11-27T10:00:00Z"}
    ]
    assert given["resource_server"] == {"identifier": "https://api.example.com/"}
    assert given["session"] == {"id": "ses_7QmTz3kR9vXw2LpA"}
    assert given["request"]["ip"] == "203.0.113.7"
    assert given["tenant"] == {"id": "authhooks"}
    assert given["secrets"] == {"API_KEY": "k"}
    # No API, no session: Auth0 leaves them out; here they are null.
    bare = event(audience=None, session=None)
    given = POINT.actions.event(bare, POINT.initial(bare), {})
    assert (given["resource_server"], given["session"]) == (None, None)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"transaction": {"protocol": "samlp"}}, "event.transaction.protocol"),
        (
            {"authentication": {"methods": [{"name": "pwd", "timestamp": "yesterday"}]}},
            "event.authentication.methods.0.timestamp",
        ),
        ({"stats": {"logins_count": -1}}, "event.stats.logins_count"),
        ({"sesion": {"id": "s"}}, "event.sesion"),
    ],
)
def test_a_bad_event_names_its_field(changes: dict[str, Any], where: str) -> None:
    with pytest.raises(BadEvent, match=where):
        event(**changes)


def test_both_tokens_claims_follow_the_token_rules() -> None:
    state = POINT.initial(POINT.sample())
    new, notes = POINT.merge(
        state,
        {
            "access_token": {"https://e.com/tier": "gold", "sub": "x", "scope": "admin"},
            "id_token": {"https://e.com/tier": "gold", "nonce": "n", "email": "e", "nick": 1},
            "https://e.com/top": 1,
            "user": {"app_metadata": {}},
        },
    )
    assert new.access_token_claims == {"https://e.com/tier": "gold"}
    assert new.id_token_claims == {"https://e.com/tier": "gold"}
    assert new.scopes == ("read:notes",)
    assert notes == [
        "access_token key 'scope' was ignored: the scopes are the result's own 'scope' list",
        "ID token: claim 'nonce' is set by the server and cannot be overwritten",
        "ID token: claim 'email' is set by the server and cannot be overwritten",
        "ID token: key 'nick' was ignored: custom claims must be namespaced with an http(s) "
        "URL, such as 'https://example.com/roles'",
        "key 'https://e.com/top' was ignored: put custom claims in 'access_token' or 'id_token'",
        "key 'user' was ignored: a post-login hook returns access_token, id_token, scope, "
        "app_metadata and user_metadata",
        "access token: claim 'sub' is set by the server and cannot be overwritten",
    ]
    for bad in (
        ["not", "a", "dict"],
        {"id_token": ["https://e.com/x"]},
        {"access_token": "https://e.com/x"},
        {"scope": "read:notes"},
        {"id_token": {"https://e.com/big": "x" * 20_000}},
        {"access_token": {"https://e.com/big": "x" * 20_000}},
    ):
        with pytest.raises(BadOutput):
            POINT.merge(state, bad)


def test_scopes_stay_within_the_apis() -> None:
    state = POINT.initial(POINT.sample())  # the API defines read:notes and write:notes
    new, notes = POINT.merge(state, {"scope": ["write:notes", "admin"]})
    assert new.scopes == ("write:notes",)
    assert notes == ["access token: scope admin was dropped: the API does not define it"]
    # No API: scopes may be removed, never added.
    bare = event(audience=None, api_scopes=None, scope=["read:notes"])
    new, notes = POINT.merge(POINT.initial(bare), {"scope": ["write:notes"]})
    assert new.scopes == ()
    assert notes == ["access token: scope write:notes was dropped: the API does not define it"]


def test_metadata_changes_and_their_bounds() -> None:
    state = POINT.initial(POINT.sample())
    first, _ = POINT.merge(state, {"app_metadata": {"roles": None, "plan": "pro"}})
    second, _ = POINT.merge(first, {"app_metadata": {"plan": "team"}, "user_metadata": {"a": 1}})
    assert second.app_metadata == {"roles": None, "plan": "team"}
    assert second.user_metadata == {"a": 1}
    # None deletes, as in Auth0: what a later hook, and the caller, see of the user.
    assert updated_metadata({"roles": ["editor"], "x": 1}, second.app_metadata) == {
        "x": 1,
        "plan": "team",
    }
    sample = POINT.sample()
    user = POINT.hooks.arguments(sample, second, {})["user"]
    assert user["app_metadata"] == {"plan": "team"}
    assert user["user_metadata"] == {"theme": "dark", "a": 1}
    for bad in (
        {"app_metadata": ["plan"]},
        {"user_metadata": {"$where": 1}},
        {"app_metadata": {"a.b": 1}},
        {"app_metadata": {"big": "x" * 20_000}},
    ):
        with pytest.raises(BadOutput):
            POINT.merge(state, bad)


def test_the_two_conventions_make_the_same_state() -> None:
    state = POINT.initial(POINT.sample())
    output = POINT.actions.apply(
        state,
        [
            ("id_token", "set_custom_claim", ["https://e.com/roles", ["editor"]]),
            ("access_token", "set_custom_claim", ["https://e.com/tier", "gold"]),
            ("access_token", "add_scope", ["write:notes"]),
            ("access_token", "remove_scope", ["read:notes"]),
            ("user", "set_app_metadata", ["plan", "pro"]),
            ("user", "set_user_metadata", ["theme", None]),
        ],
    )
    hooks_output = {
        "id_token": {"https://e.com/roles": ["editor"]},
        "access_token": {"https://e.com/tier": "gold"},
        "scope": ["write:notes"],
        "app_metadata": {"plan": "pro"},
        "user_metadata": {"theme": None},
    }
    assert POINT.merge(state, output) == POINT.merge(state, hooks_output)
    assert set(POINT.actions.methods()) == {"access", "access_token", "id_token", "user"}
    for bad in (
        [("id_token", "set_custom_claim", ["only a name"])],
        [("access_token", "add_scope", [42])],
        [("user", "set_app_metadata", [1, "x"])],
    ):
        with pytest.raises(BadOutput):
            POINT.actions.apply(state, bad)


def test_deny_takes_the_reason_alone() -> None:
    state = POINT.initial(POINT.sample())
    with pytest.raises(Denied) as denied:
        POINT.actions.apply(state, [("access", "deny", ["Your account is locked"])])
    assert denied.value.denial == Denial(
        "access_denied", "Your account is locked", "Your account is locked"
    )
    # The token points' two-argument form is a mistake here, said as one.
    with pytest.raises(BadOutput, match=r"takes \(reason\)"):
        POINT.actions.apply(state, [("access", "deny", ["access_denied", "locked"])])


def test_refusals() -> None:
    locked = Denial("access_denied", "locked", "locked")
    assert POINT.refuse("gate", locked, "raised") == Refusal("access_denied", "locked", locked)
    # UnauthorizedError(message): the message is the application's description.
    raised = Denial("access_denied", "verify your email", None)
    assert POINT.refuse("gate", raised, "raised").description == "verify your email"
    assert POINT.refuse("gate", Denial("access_denied"), "raised").description == (
        "refused by hook 'gate'"
    )
    # Another point's refusal (InvalidScopeError) and accidents fail the sign-in.
    scope = Denial("invalid_scope", "no")
    assert POINT.refuse("gate", scope, "raised") == Refusal(
        "server_error", "hook 'gate' failed: raised", scope
    )
    assert POINT.refuse("gate", None, "timeout") == Refusal(
        "server_error", "hook 'gate' failed: timeout"
    )
    # The token points keep refusing access_denied as a failure.
    assert credentials_exchange.POINT.refuse("gate", locked, "raised").error == "server_error"


def test_the_preview_shows_both_tokens_and_the_metadata() -> None:
    sample = POINT.sample()
    state, _ = POINT.merge(
        POINT.initial(sample),
        {
            "access_token": {"https://e.com/tier": "gold"},
            "id_token": {"https://e.com/roles": ["editor"]},
            "scope": ["read:notes", "write:notes"],
            "app_metadata": {"plan": "pro"},
        },
    )
    assert POINT.preview(sample, state, None, SERVER) == {
        "access_token": {
            "scope": ["read:notes", "write:notes"],
            "claims": {
                "https://e.com/tier": "gold",
                "iss": "https://id.example.com/",
                "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
                "aud": "https://api.example.com/",
                "client_id": "notes-web",
                "azp": "notes-web",
                "scope": "read:notes write:notes",
            },
        },
        "id_token": {
            "claims": {
                "https://e.com/roles": ["editor"],
                "iss": "https://id.example.com/",
                "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
                "aud": "notes-web",
            }
        },
        "app_metadata": {"plan": "pro"},
        "user_metadata": {},
    }
    refresh = event(audience=None, transaction={"protocol": "oauth2-refresh-token"})
    shown = POINT.preview(refresh, POINT.initial(refresh), None, SERVER)
    assert "aud" not in shown["access_token"]["claims"]
    assert "gty" not in shown["access_token"]["claims"]  # as in Auth0, a person's token has none


# --- in the sandbox, through the flow engine ---------------------------------------------

CLAIMS = {
    ("hooks", "python"): """\
def post_login(user, context):
    print("logins", context["stats"]["logins_count"], context["transaction"]["protocol"])
    return {
        "access_token": {"https://example.com/tier": context["secrets"]["TIER"]},
        "id_token": {"https://example.com/email": user["email"], "nonce": "mine"},
        "scope": [s for s in context["scope"] if s != "read:notes"] + ["write:notes", "admin"],
        "app_metadata": {"roles": None, "last_client": context["client"]["id"]},
        "user_metadata": {"seen": context["session"]["id"]},
    }
""",
    ("actions", "python"): """\
def on_execute_post_login(event, api):
    print("logins", event["stats"]["logins_count"], event["transaction"]["protocol"])
    api.access_token.set_custom_claim("https://example.com/tier", event["secrets"]["TIER"])
    api.id_token.set_custom_claim("https://example.com/email", event["user"]["email"])
    api.id_token.set_custom_claim("nonce", "mine")
    api.access_token.remove_scope("read:notes")
    api.access_token.add_scope("write:notes")
    api.access_token.add_scope("admin")
    api.user.set_app_metadata("roles", None)
    api.user.set_app_metadata("last_client", event["client"]["client_id"])
    api.user.set_user_metadata("seen", event["session"]["id"])
""",
    ("hooks", "node"): """\
module.exports = function (user, context, cb) {
  console.log('logins', context.stats.logins_count, context.transaction.protocol);
  cb(null, {
    access_token: { 'https://example.com/tier': context.webtask.secrets.TIER },
    id_token: { 'https://example.com/email': user.email, nonce: 'mine' },
    scope: context.scope.filter((s) => s !== 'read:notes').concat(['write:notes', 'admin']),
    app_metadata: { roles: null, last_client: context.client.id },
    user_metadata: { seen: context.session.id },
  });
};
""",
    ("actions", "node"): """\
exports.onExecutePostLogin = async (event, api) => {
  console.log('logins', event.stats.logins_count, event.transaction.protocol);
  api.accessToken.setCustomClaim('https://example.com/tier', event.secrets.TIER);
  api.idToken
    .setCustomClaim('https://example.com/email', event.user.email)
    .idToken.setCustomClaim('nonce', 'mine');
  api.accessToken.removeScope('read:notes').accessToken.addScope('write:notes');
  api.accessToken.addScope('admin');
  api.user.setAppMetadata('roles', null).user.setAppMetadata('last_client', event.client.client_id);
  api.user.setUserMetadata('seen', event.session.id);
};
""",
}

DENY = {
    ("hooks", "python"): """\
from authhooks.hook import UnauthorizedError


def post_login(user, context):
    if not user["email_verified"]:
        raise UnauthorizedError("Please verify your email first")
""",
    ("actions", "python"): """\
def on_execute_post_login(event, api):
    if not event["user"]["email_verified"]:
        api.access.deny("Please verify your email first")
        return
    api.id_token.set_custom_claim("https://example.com/after", "deny")
""",
    ("hooks", "node"): """\
module.exports = function (user, context, cb) {
  if (!user.email_verified) {
    return cb(new UnauthorizedError('Please verify your email first'));
  }
  cb(null, {});
};
""",
    ("actions", "node"): """\
exports.onExecutePostLogin = async (event, api) => {
  if (!event.user.email_verified) {
    api.access.deny('Please verify your email first');
    return;
  }
};
""",
}

FAIL = {
    "python": "def post_login(user, context):\n    return user['no such key']\n",
    "node": "module.exports = async function (user, context) {\n  return user.no.such.key;\n};\n",
}

CONVENTIONS = sorted(CLAIMS)


def flow_hook(name: str, script: str, runtime: str, **fields: Any) -> FlowHook:
    return FlowHook(
        id=unique(f"post-login-{name}"),
        name=name,
        version=1,
        script=script,
        timeout_ms=5000,
        on_error=fields.pop("on_error", "fail"),
        secrets=fields.pop("secrets", {}),
        runtime=runtime,
        **fields,
    )


def run(
    harness: Harness, hooks: list[FlowHook], sample: post_login.Event | None = None
) -> tuple[FlowResult, list[Invocation]]:
    if any(hook.runtime == "node" for hook in hooks) and harness.runtime.sandbox.node is None:
        pytest.skip(f"JavaScript hooks cannot run here: {harness.runtime.sandbox.node_unavailable}")
    records: list[Invocation] = []
    result = harness.loop.run(
        run_flow(harness.runtime, POINT, hooks, sample or POINT.sample(), records.append)
    )
    return result, records


def notes(record: Invocation) -> list[str]:
    return [line["text"] for line in record.console if line["stream"] == "authhooks"]


@pytest.mark.parametrize(("convention", "runtime"), CONVENTIONS)
def test_a_hook_changes_both_tokens_the_scopes_and_the_metadata(
    harness: Harness, convention: str, runtime: str
) -> None:
    hook = flow_hook("claims", CLAIMS[convention, runtime], runtime, secrets={"TIER": "gold"})
    result, (record,) = run(harness, [hook])
    assert result.stop is None, record.error
    state: PostLoginState = result.state
    assert state.access_token == TokenState(
        ("write:notes",),
        {"https://example.com/tier": "gold"},
        frozenset({"read:notes", "write:notes"}),
    )
    assert state.id_token_claims == {"https://example.com/email": "ada@example.com"}
    assert state.app_metadata == {"roles": None, "last_client": "notes-web"}
    assert state.user_metadata == {"seen": "ses_7QmTz3kR9vXw2LpA"}
    console = [line["text"] for line in record.console]
    assert "logins 12 oidc-basic-profile" in console, console
    assert notes(record) == [
        "ID token: claim 'nonce' is set by the server and cannot be overwritten",
        "access token: scope admin was dropped: the API does not define it",
    ]


@pytest.mark.parametrize(("convention", "runtime"), CONVENTIONS)
def test_a_deliberate_refusal_is_access_denied(
    harness: Harness, convention: str, runtime: str
) -> None:
    sample = event(user={**POINT.sample_event["user"], "email_verified": False})
    # A deliberate refusal is never forgiven, whatever on_error says.
    hook = flow_hook("gate", DENY[convention, runtime], runtime, on_error="continue")
    result, (record,) = run(harness, [hook], sample)
    assert result.stop is not None
    refusal = result.stop.refusal
    assert (refusal.error, refusal.description) == (
        "access_denied",
        "Please verify your email first",
    )
    assert refusal.denial == Denial(
        "access_denied",
        "Please verify your email first",
        "Please verify your email first" if convention == "actions" else None,
    )
    assert record.outcome == "raised"
    # A verified user passes.
    passed, _ = run(harness, [hook])
    assert passed.stop is None


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_a_failing_hook_is_a_server_error(harness: Harness, runtime: str) -> None:
    hook = flow_hook("broken", FAIL[runtime], runtime)
    result, (record,) = run(harness, [hook])
    assert result.stop is not None
    assert result.stop.refusal == Refusal("server_error", "hook 'broken' failed: raised")
    assert record.outcome == "raised"
    # on_error=continue forgives it: the flow goes on without its output.
    forgiven = flow_hook("broken", FAIL[runtime], runtime, on_error="continue")
    result, _ = run(harness, [forgiven])
    assert result.stop is None
    assert result.state == POINT.initial(POINT.sample())


def test_another_points_error_fails_the_sign_in(harness: Harness) -> None:
    hook = flow_hook(
        "scope",
        "from authhooks.hook import InvalidScopeError\n\n\n"
        "def post_login(user, context):\n    raise InvalidScopeError('no')\n",
        "python",
    )
    result, _ = run(harness, [hook])
    assert result.stop is not None
    assert result.stop.refusal.error == "server_error"


def test_unauthorized_error_elsewhere_is_a_failure(harness: Harness) -> None:
    """Only post-login honours UnauthorizedError: a token point refuses it as it
    refuses any code it does not know."""
    if harness.runtime.sandbox.node is None:
        pytest.skip(f"JavaScript hooks cannot run here: {harness.runtime.sandbox.node_unavailable}")
    point = credentials_exchange.POINT
    hook = flow_hook(
        "elsewhere",
        "module.exports = function (client, scope, audience, context, cb) {\n"
        "  cb(new UnauthorizedError('no'));\n};\n",
        "node",
    )
    records: list[Invocation] = []
    result = harness.loop.run(
        run_flow(harness.runtime, point, [hook], point.sample(), records.append)
    )
    assert result.stop is not None
    assert result.stop.refusal.error == "server_error"
    assert "UnauthorizedError" in str(records[0].error)


FIRST = """\
def post_login(user, context):
    return {
        "access_token": {"https://example.com/tier": "gold"},
        "id_token": {"https://example.com/roles": user["app_metadata"]["roles"]},
        "scope": context["scope"] + ["write:notes"],
        "app_metadata": {"roles": None, "plan": "pro"},
    }
"""

SECOND = """\
exports.onExecutePostLogin = async (event, api) => {
  const seen = {
    scope: event.access_token.scope,
    access: event.access_token.custom_claims,
    id: event.id_token.custom_claims,
    app_metadata: event.user.app_metadata,
  };
  api.idToken.setCustomClaim('https://example.com/seen', seen);
  api.accessToken.removeScope('read:notes');
};
"""

THIRD = """\
def post_login(user, context):
    return {"id_token": {"https://example.com/third": {
        "scope": context["scope"],
        "id": sorted(context["id_token"]),
        "app_metadata": user["app_metadata"],
    }}}
"""


def test_each_hook_of_a_flow_sees_the_state_so_far(harness: Harness) -> None:
    hooks = [
        flow_hook("first", FIRST, "python"),
        flow_hook("second", SECOND, "node"),
        flow_hook("third", THIRD, "python"),
    ]
    result, records = run(harness, hooks)
    assert result.stop is None, [record.error for record in records]
    state: PostLoginState = result.state
    assert state.id_token_claims["https://example.com/seen"] == {
        "scope": ["read:notes", "write:notes"],
        "access": {"https://example.com/tier": "gold"},
        "id": {"https://example.com/roles": ["editor"]},
        "app_metadata": {"plan": "pro"},
    }
    assert state.id_token_claims["https://example.com/third"] == {
        "scope": ["write:notes"],
        "id": ["https://example.com/roles", "https://example.com/seen"],
        "app_metadata": {"plan": "pro"},
    }
    assert state.scopes == ("write:notes",)
    assert state.access_token_claims == {"https://example.com/tier": "gold"}
    assert state.app_metadata == {"roles": None, "plan": "pro"}


# --- the runner and the points list, on a real server ------------------------------------


def test_the_runner_previews_both_tokens(server: Server) -> None:
    with server.api() as api:
        created = api.post(
            "/hooks",
            json={
                "name": unique("post-login"),
                "triggerId": "post-login",
                "script": POINT.templates["actions.js"],
            },
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        try:
            ran = api.post(f"/hooks/{hook['id']}/test", json={}).json()
            unverified = {**POINT.sample_event["user"], "email_verified": False}
            denied = api.post(
                f"/hooks/{hook['id']}/test",
                json={
                    "script": POINT.templates["hooks"],
                    "event": {**POINT.sample_event, "user": unverified},
                },
            ).json()
            listed = api.get("/points/post-login").json()
        finally:
            api.delete(f"/hooks/{hook['id']}")
    assert hook["runtime"] == "node"
    assert ran["outcome"] == "ok", ran
    result = ran["result"]
    assert result["access_token"]["claims"]["https://example.com/roles"] == ["editor"]
    assert result["access_token"]["scope"] == ["read:notes"]
    assert result["id_token"]["claims"]["https://example.com/roles"] == ["editor"]
    assert result["id_token"]["claims"]["aud"] == "notes-web"
    assert result["id_token"]["claims"]["iss"] == result["access_token"]["claims"]["iss"]
    assert denied["outcome"] == "raised", denied
    assert denied["error"]["type"] == "UnauthorizedError"
    assert "Please verify your email before signing in" in denied["error"]["message"]
    assert listed["blocking"] is True
    assert listed["conventions"]["actions"]["javascript"]["api"] == {
        "access": ["deny"],
        "accessToken": ["setCustomClaim", "addScope", "removeScope"],
        "idToken": ["setCustomClaim"],
        "user": ["setAppMetadata", "setUserMetadata"],
    }
    assert listed["conventions"]["hooks"]["signature"] == "def post_login(user, context)"
