"""Every point in Auth0's Actions convention, end to end on a real server: claims,
scopes, metadata, denials, and the asynchronous points' deliveries. (The Hooks
convention has its own tests beside each point's; JavaScript, test_javascript.py.)"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Server, create_machine, unique
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


def test_credentials_exchange_claims_scopes_and_secrets(server: Server, add_hook: AddHook) -> None:
    hook = add_hook(
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    token = api.access_token\n"
        "    token.set_custom_claim('https://example.com/tier', event['secrets']['TIER'])\n"
        "    token.set_custom_claim('https://example.com/client', event['client']['name'])\n"
        "    token.set_custom_claim('plain', 'ignored: not a URL')\n"
        "    token.remove_scope('write:things')\n"
        "    token.add_scope('delete:things')\n",
    )
    with server.api() as api:
        assert api.post(f"/hooks/{hook['id']}/secrets", json={"TIER": "gold"}).status_code == 201
    machine = create_machine(server, granted=["read:things", "write:things"])
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 200, response.text
    found = claims(response.json()["access_token"])
    assert found["https://example.com/tier"] == "gold"
    assert found["https://example.com/client"].startswith("machine-")
    assert "plain" not in found
    # The API defines delete:things, so a hook may add it, as a Hooks function may.
    assert found["scope"].split() == ["read:things", "delete:things"]
    assert response.json()["scope"] == "read:things delete:things"


@pytest.mark.parametrize(
    ("deny", "error", "status"),
    [
        ("api.access.deny('invalid_scope', 'no admin for you')", "invalid_scope", 400),
        ("api.access.deny('not today')", "invalid_request", 400),
        ("api.access.deny('server_error', 'the CRM is down')", "server_error", 500),
    ],
)
def test_credentials_exchange_denial(
    server: Server, add_hook: AddHook, deny: str, error: str, status: int
) -> None:
    add_hook(
        "credentials-exchange",
        f"def on_execute_credentials_exchange(event, api):\n    {deny}\n"
        "    api.access_token.set_custom_claim('https://example.com/after', 'deny')\n",
        # A deliberate refusal is never forgiven, whatever on_error says.
        on_error="continue",
    )
    machine = create_machine(server)
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    reason = deny.split("'")[-2]
    assert body["error_description"] == reason


def test_a_denial_with_an_unknown_code_is_the_hooks_failure(
    server: Server, add_hook: AddHook
) -> None:
    hook = add_hook(
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access.deny('teapot', 'short and stout')\n",
    )
    machine = create_machine(server)
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 500, response.text
    assert response.json()["error_description"] == f"hook {hook['name']!r} failed: bad result"


def test_password_exchange(server: Server, add_hook: AddHook) -> None:
    add_hook(
        "password-exchange",
        "def on_execute_password_exchange(event, api):\n"
        "    user = event['user']\n"
        "    api.access_token.set_custom_claim('https://example.com/email', user['email'])\n"
        "    api.access_token.set_custom_claim('https://example.com/uid', user['user_id'])\n",
    )
    app = create_app(server)
    email = new_email()
    assert signup(server, app["client_id"], email).status_code == 200
    audience = create_api(server)
    response = password_token(server, app["client_id"], email, PASSWORD, audience)
    assert response.status_code == 200, response.text
    found = claims(response.json()["access_token"])
    assert found["https://example.com/email"] == email
    assert found["https://example.com/uid"] == found["sub"]


def test_pre_user_registration_metadata_and_denial(server: Server, add_hook: AddHook) -> None:
    add_hook(
        "pre-user-registration",
        "def on_execute_pre_user_registration(event, api):\n"
        "    if event['user']['email'].endswith('@blocked.example'):\n"
        "        api.access.deny('blocked domain', 'Sign-ups from this domain are closed')\n"
        "        return\n"
        "    api.user.set_app_metadata('plan', 'free')\n"
        "    api.user.set_user_metadata('source', event['request']['ip'])\n",
    )
    app = create_app(server)
    email = new_email()
    response = signup(server, app["client_id"], email, user_metadata={"theme": "dark"})
    assert response.status_code == 200, response.text
    user = find_user(server, email)
    assert user["app_metadata"] == {"plan": "free"}
    assert user["user_metadata"] == {"theme": "dark", "source": "127.0.0.1"}

    refused = signup(server, app["client_id"], new_email("blocked.example"))
    assert refused.status_code == 400, refused.text
    assert refused.json()["description"] == "Sign-ups from this domain are closed"


@pytest.mark.parametrize("point", ["post-user-registration", "post-change-password"])
def test_asynchronous_points_are_delivered(server: Server, add_hook: AddHook, point: str) -> None:
    function = "on_execute_" + point.replace("-", "_")
    hook = add_hook(
        point,
        f"def {function}(event, api):\n"
        "    attempt = event['delivery']['attempt']\n"
        "    print('told of', event['user']['email'], event['event_id'], 'attempt', attempt)\n",
    )
    email, text = delivered_console(server, hook["id"], point)
    assert f"told of {email} evt_" in text
    assert text.count("attempt 1") >= 1


def test_a_script_that_defines_neither_function_is_refused(server: Server) -> None:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("neither"),
                "triggerId": "credentials-exchange",
                "script": "def on_execute(event, api):\n    pass\n",
            },
        )
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert "'on_execute_credentials_exchange' or 'credentials_exchange'" in message


def test_the_runner_runs_both_conventions(server: Server) -> None:
    with server.api() as api:
        created = api.post(
            "/hooks",
            json={
                "name": unique("runner"),
                "triggerId": "credentials-exchange",
                "script": "def credentials_exchange(client, scope, audience, context):\n"
                "    return {'https://example.com/by': 'hooks'}\n",
            },
        ).json()
        actions = api.post(
            f"/hooks/{created['id']}/test",
            json={
                "script": "def on_execute_credentials_exchange(event, api):\n"
                "    api.access_token.set_custom_claim('https://example.com/by', 'actions')\n"
            },
        ).json()
        hooks = api.post(f"/hooks/{created['id']}/test", json={}).json()
        api.delete(f"/hooks/{created['id']}")
    assert actions["outcome"] == "ok", actions
    assert actions["result"]["claims"]["https://example.com/by"] == "actions"
    assert hooks["result"]["claims"]["https://example.com/by"] == "hooks"


def test_points_list_both_conventions_over_http(server: Server) -> None:
    listed = httpx.get(
        server.url + "/api/v2/points",
        headers={"Authorization": f"Bearer {server.management_token()}"},
    ).json()
    for point in listed:
        assert set(point["conventions"]) == {"hooks", "actions"}
        assert point["conventions"]["actions"]["signature"].endswith("(event, api)")
        for convention in point["conventions"].values():
            assert "declare class InvalidScopeError" in convention["javascript"]["declarations"]
