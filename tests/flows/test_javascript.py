"""Auth0's JavaScript, unchanged, end to end on a real server: for every point, a
Hook and an Action written as Auth0's documentation shows them (its arguments,
callback, Webtask secrets and error globals; its event and camelCase api), created
through the API with no runtime (as Auth0's clients create them), then reached by
the requests that run them — tokens, signups, password changes — with the results
Auth0 documented."""

from __future__ import annotations

import pytest

from tests.conftest import Server, create_machine
from tests.flows.conftest import AddHook, claims, delivered_console
from tests.users.helpers import (
    PASSWORD,
    create_api,
    create_app,
    find_user,
    new_email,
    password_token,
    signup,
)

# --- Auth0 Hooks ---------------------------------------------------------------------

CLIENT_CREDENTIALS_HOOK = """
/**
@param {object} client - information about the client
@param {string} client.name - name of client
@param {string} client.id - client id
@param {string} client.tenant - Auth0 tenant name
@param {object} client.metadata - client metadata
@param {array|undefined} scope - array of strings representing the scope claim or undefined
@param {string} audience - token's audience claim
@param {object} context - additional authorization context
@param {function} cb - function (error, accessTokenClaims)
*/
module.exports = function(client, scope, audience, context, cb) {
  var access_token = {};
  access_token.scope = scope;

  // Modify scopes or add extra claims
  access_token['https://example.com/claim'] = 'bar';
  access_token['https://example.com/secret'] = context.webtask.secrets.CLAIM;
  access_token.scope.push('delete:things');

  cb(null, access_token);
};
"""

PRE_REGISTRATION_HOOK = """
/**
@param {object} user - user being created
@param {object} context - Auth0 connection and other context info
@param {function} cb - function (error, response)
*/
module.exports = function (user, context, cb) {
  if (user.email.endsWith('@blocked.example')) {
    return cb(new PreUserRegistrationError('Denied user registration in Pre User Registration Hook',
      'You are not allowed to register.'));
  }
  var response = {};

  response.user = {
    user_metadata: { foo: 'bar' },
    app_metadata: { vip: true, score: 7 }
  };

  cb(null, response);
};
"""

POST_HOOK = """
/**
@param {object} user - user being created or whose password changed
@param {object} context - Auth0 connection and other context info
@param {function} cb - function (error)
*/
module.exports = function (user, context, cb) {
  console.log('told of ' + user.email);
  cb();
};
"""

PASSWORD_EXCHANGE_HOOK = """
module.exports = function (user, client, scope, audience, context, cb) {
  const accessToken = { scope: scope };
  accessToken['https://example.com/email'] = user.email;
  cb(null, accessToken);
};
"""

# --- Auth0 Actions ---------------------------------------------------------------------

CREDENTIALS_ACTION = """
/**
* Handler that will be called during the execution of a Client Credentials exchange.
*
* @param {Event} event - Details about client credentials grant request.
* @param {CredentialsExchangeAPI} api - Interface whose methods can be used to change the
*   behavior of client credentials grant.
*/
exports.onExecuteCredentialsExchange = async (event, api) => {
  if (event.client.metadata.blocked === 'yes') {
    api.access.deny('invalid_request', 'Access from this client is blocked.');
    return;
  }
  api.accessToken.setCustomClaim('https://example.com/api', event.resource_server.identifier);
  api.accessToken.setCustomClaim('https://example.com/region', event.secrets.REGION);
};
"""

PRE_REGISTRATION_ACTION = """
/**
* Handler that will be called during the execution of a PreUserRegistration flow.
*
* @param {Event} event - Details about the context and user that is attempting to register.
* @param {PreUserRegistrationAPI} api - Interface whose methods can be used to change the
*   behavior of the signup.
*/
exports.onExecutePreUserRegistration = async (event, api) => {
  if (event.user.email.endsWith('@blocked.example')) {
    api.access.deny('blocked_domain', 'Sign-ups from this domain are closed');
    return;
  }
  api.user.setUserMetadata('screen_name', event.user.email.split('@')[0]);
  api.user.setAppMetadata('plan', 'free');
};
"""


def post_action(function: str) -> str:
    return f"""
/**
* @param {{Event}} event - Details about the user and the context in which they are acting.
* @param {{API}} api - Methods and utilities to help change the behavior of the flow.
*/
exports.{function} = async (event, api) => {{
  console.log('told of', event.user.email, 'attempt', event.delivery.attempt);
}};
"""


def test_the_server_reads_javascript_in_auth0s_code(server: Server, add_hook: AddHook) -> None:
    for script in (CLIENT_CREDENTIALS_HOOK, CREDENTIALS_ACTION):
        assert add_hook("credentials-exchange", script, enabled=False)["runtime"] == "node"


def test_a_client_credentials_hook(server: Server, add_hook: AddHook) -> None:
    hook = add_hook("credentials-exchange", CLIENT_CREDENTIALS_HOOK)
    with server.api() as api:
        assert api.post(f"/hooks/{hook['id']}/secrets", json={"CLAIM": "s3"}).status_code == 201
    machine = create_machine(server, granted=["read:things"])
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 200, response.text
    found = claims(response.json()["access_token"])
    assert found["https://example.com/claim"] == "bar"
    assert found["https://example.com/secret"] == "s3"
    assert found["scope"].split() == ["read:things", "delete:things"]


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        ("InvalidScopeError('no admin for you')", "invalid_scope", 400),
        ("InvalidRequestError('not today')", "invalid_request", 400),
        ("ServerError('the CRM is down')", "server_error", 500),
    ],
)
def test_a_hooks_error_globals(
    server: Server, add_hook: AddHook, error: str, code: str, status: int
) -> None:
    add_hook(
        "credentials-exchange",
        f"module.exports = function (client, scope, audience, context, cb) {{\n"
        f"  cb(new {error});\n}};\n",
    )
    machine = create_machine(server)
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["error_description"] == error.split("'")[1]


def test_a_thrown_error_and_a_rejected_promise_fail_the_hook(
    server: Server, add_hook: AddHook
) -> None:
    for script in (
        "module.exports = function (client, scope, audience, context, cb) {\n"
        "  throw new Error('boom');\n};\n",
        "module.exports = async function (client, scope, audience, context) {\n"
        "  await Promise.reject(new Error('boom'));\n};\n",
    ):
        hook = add_hook("credentials-exchange", script)
        machine = create_machine(server)
        response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
        assert response.status_code == 500, response.text
        assert response.json()["error_description"] == f"hook {hook['name']!r} failed: raised"
        with server.api() as api:
            api.patch(f"/hooks/{hook['id']}", json={"enabled": False})


def test_a_password_exchange_hook(server: Server, add_hook: AddHook) -> None:
    add_hook("password-exchange", PASSWORD_EXCHANGE_HOOK)
    app = create_app(server)
    email = new_email()
    assert signup(server, app["client_id"], email).status_code == 200
    response = password_token(server, app["client_id"], email, PASSWORD, create_api(server))
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["https://example.com/email"] == email


def test_a_pre_user_registration_hook(server: Server, add_hook: AddHook) -> None:
    add_hook("pre-user-registration", PRE_REGISTRATION_HOOK)
    app = create_app(server)
    email = new_email()
    assert signup(server, app["client_id"], email).status_code == 200
    user = find_user(server, email)
    assert user["user_metadata"] == {"foo": "bar"}
    assert user["app_metadata"] == {"vip": True, "score": 7}

    refused = signup(server, app["client_id"], new_email("blocked.example"))
    assert refused.status_code == 400, refused.text
    assert refused.json()["description"] == "You are not allowed to register."


@pytest.mark.parametrize("point", ["post-user-registration", "post-change-password"])
@pytest.mark.parametrize("convention", ["hooks", "actions"])
def test_asynchronous_points(
    server: Server, add_hook: AddHook, point: str, convention: str
) -> None:
    function = "onExecute" + "".join(word.title() for word in point.split("-"))
    hook = add_hook(point, POST_HOOK if convention == "hooks" else post_action(function))
    email, text = delivered_console(server, hook["id"], point)
    assert f"told of {email}" in text
    if convention == "actions":
        assert "attempt 1" in text


def test_a_credentials_exchange_action(server: Server, add_hook: AddHook) -> None:
    hook = add_hook("credentials-exchange", CREDENTIALS_ACTION)
    with server.api() as api:
        assert api.post(f"/hooks/{hook['id']}/secrets", json={"REGION": "eu"}).status_code == 201
    machine = create_machine(server)
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 200, response.text
    found = claims(response.json()["access_token"])
    assert found["https://example.com/api"] == machine.audience
    assert found["https://example.com/region"] == "eu"

    blocked = create_machine(server)
    with server.api() as api:
        api.patch(f"/clients/{blocked.client_id}", json={"client_metadata": {"blocked": "yes"}})
    refused = server.token(blocked.client_id, blocked.client_secret, audience=blocked.audience)
    assert refused.status_code == 400, refused.text
    assert refused.json() == {
        "error": "invalid_request",
        "error_description": "Access from this client is blocked.",
    }


def test_a_pre_user_registration_action(server: Server, add_hook: AddHook) -> None:
    add_hook("pre-user-registration", PRE_REGISTRATION_ACTION)
    app = create_app(server)
    email = new_email()
    assert signup(server, app["client_id"], email).status_code == 200
    user = find_user(server, email)
    assert user["user_metadata"] == {"screen_name": email.split("@")[0]}
    assert user["app_metadata"] == {"plan": "free"}
    refused = signup(server, app["client_id"], new_email("blocked.example"))
    assert refused.status_code == 400, refused.text
    assert refused.json()["description"] == "Sign-ups from this domain are closed"
