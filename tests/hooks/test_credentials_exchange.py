"""credentials-exchange end to end: hooks made through the management API change
the tokens a real OAuth client gets."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import Machine, Server, create_machine, unique

CLAIM_HOOK = """
def credentials_exchange(client, scope, audience, context):
    print("issuing for", client["name"], context["secrets"]["TIER"])
    return {"scope": scope, "https://example.com/tier": context["secrets"]["TIER"] + "-v%s"}
"""


def create_hook(server: Server, script: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("hook"),
                "script": script,
                "triggerId": "credentials-exchange",
                **fields,
            },
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def fetch_claims(server: Server, machine: Machine) -> dict[str, Any]:
    with OAuth2Client(machine.client_id, machine.client_secret) as oauth:
        token = oauth.fetch_token(
            server.url + "/oauth/token", grant_type="client_credentials", audience=machine.audience
        )
    key = jwt.PyJWKClient(server.url + "/.well-known/jwks.json").get_signing_key_from_jwt(
        token["access_token"]
    )
    return dict(
        jwt.decode(
            token["access_token"],
            key.key,
            algorithms=["RS256", "ES256"],
            audience=machine.audience,
            issuer=server.issuer,
        )
    )


@pytest.fixture
def solo(backend: str, tmp_path: Any) -> Any:
    """A server of its own: the tests below enable hooks for the whole point."""
    from tests.conftest import run_server

    with run_server(tmp_path, backend) as running:
        yield running


def test_hook_with_secret_versions_and_rollback(solo: Server) -> None:
    machine = create_machine(solo)
    hook = create_hook(solo, CLAIM_HOOK.replace("%s", "1"))
    with solo.api() as api:
        added = api.post(f"/hooks/{hook['id']}/secrets", json={"TIER": "gold"})
        assert added.status_code == 201, added.text
        assert added.json() == {"TIER": "_VALUE_NOT_SHOWN_"}
        assert api.patch(f"/hooks/{hook['id']}", json={"enabled": True}).status_code == 200
    time.sleep(0.3)
    assert fetch_claims(solo, machine)["https://example.com/tier"] == "gold-v1"

    with solo.api() as api:
        updated = api.patch(f"/hooks/{hook['id']}", json={"script": CLAIM_HOOK.replace("%s", "2")})
        assert updated.status_code == 200, updated.text
        assert updated.json()["version"] == 2
    time.sleep(0.3)
    assert fetch_claims(solo, machine)["https://example.com/tier"] == "gold-v2"

    with solo.api() as api:
        rolled = api.post(f"/hooks/{hook['id']}/versions/1/deploy")
        assert rolled.status_code == 200, rolled.text
        versions = api.get(f"/hooks/{hook['id']}/versions").json()
        assert [(v["number"], v["deployed"]) for v in versions] == [(2, False), (1, True)]
    time.sleep(0.3)
    assert fetch_claims(solo, machine)["https://example.com/tier"] == "gold-v1"

    time.sleep(1.0)  # records are written in batches
    with solo.api() as api:
        logs = api.get(f"/hooks/{hook['id']}/logs").json()
        secrets_listed = api.get(f"/hooks/{hook['id']}/secrets").json()
    assert logs[0]["outcome"] == "ok"
    assert logs[0]["console"][0]["text"] == "issuing for " + machine_name(solo, machine) + " ***"
    assert secrets_listed == {"TIER": "_VALUE_NOT_SHOWN_"}
    assert_secret_encrypted(solo, hook["id"], "gold")


def machine_name(server: Server, machine: Machine) -> str:
    with server.api() as api:
        return str(api.get(f"/clients/{machine.client_id}").json()["name"])


def assert_secret_encrypted(server: Server, hook_id: str, value: str) -> None:
    url = server.database_url
    database = Database(url)
    try:
        with database.session() as session:
            row = session.scalars(
                select(models.HookSecret).where(models.HookSecret.hook_id == hook_id)
            ).one()
            assert value.encode() not in bytes(row.value)
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("raise_line", "status", "error"),
    [
        ("raise InvalidScopeError('no admin for you')", 400, "invalid_scope"),
        ("raise InvalidRequestError('bad client state')", 400, "invalid_request"),
        ("raise ServerError('upstream down')", 500, "server_error"),
        ("return 1 / 0", 500, "server_error"),
    ],
)
def test_failing_hook_fails_the_token_request(
    solo: Server, raise_line: str, status: int, error: str
) -> None:
    machine = create_machine(solo)
    script = (
        "from authhooks.hook import InvalidScopeError, InvalidRequestError, ServerError\n"
        f"def credentials_exchange(client, scope, audience, context):\n    {raise_line}\n"
    )
    create_hook(solo, script, enabled=True)
    time.sleep(0.3)
    response = solo.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "Traceback" not in response.text
    assert "/" not in response.json()["error_description"].replace("1 / 0", "")


def test_on_error_continue_skips_the_failing_hook(solo: Server) -> None:
    machine = create_machine(solo)
    create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    while True:\n        pass\n",
        enabled=True,
        on_error="continue",
        timeout_ms=300,
        order=1,
    )
    create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'https://example.com/second': context['claims'] == {}}\n",
        enabled=True,
        order=2,
    )
    time.sleep(0.3)
    claims = fetch_claims(solo, machine)
    assert claims["https://example.com/second"] is True


def test_flow_order_and_claims_so_far(solo: Server) -> None:
    machine = create_machine(solo, scopes=["a", "b", "c"], granted=["a", "b"])
    create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'scope': scope + ['c'], 'https://e.com/n': 1, 'sub': 'evil',"
        " 'plain': 1}\n",
        enabled=True,
        order=1,
    )
    create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    n = context['claims']['https://e.com/n']\n"
        "    return {'scope': [s for s in scope if s != 'a'], 'https://e.com/n': n + 1}\n",
        enabled=True,
        order=2,
    )
    time.sleep(0.3)
    claims = fetch_claims(solo, machine)
    assert claims["scope"] == "b c"
    assert claims["https://e.com/n"] == 2
    assert claims["sub"] == f"{machine.client_id}@clients"
    assert "plain" not in claims


def test_exclusive_enable_disables_the_others(solo: Server) -> None:
    first = create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n    return None\n",
        enabled=True,
    )
    second = create_hook(
        solo, "def credentials_exchange(client, scope, audience, context):\n    return None\n"
    )
    with solo.api() as api:
        response = api.patch(f"/hooks/{second['id']}", json={"enabled": True, "exclusive": True})
        assert response.status_code == 200, response.text
        assert api.get(f"/hooks/{first['id']}").json()["enabled"] is False
        enabled = api.get("/hooks", params={"triggerId": "credentials-exchange", "enabled": "true"})
    assert [hook["id"] for hook in enabled.json()] == [second["id"]]


def test_continue_never_forgives_a_deliberate_refusal(solo: Server) -> None:
    machine = create_machine(solo)
    create_hook(
        solo,
        "from authhooks.hook import InvalidScopeError\n"
        "def credentials_exchange(client, scope, audience, context):\n"
        "    raise InvalidScopeError('internal note', 'tier too low')\n",
        enabled=True,
        on_error="continue",
    )
    time.sleep(0.3)
    response = solo.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_scope", "error_description": "tier too low"}


def test_a_broken_hook_never_locks_out_the_management_api(solo: Server) -> None:
    create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n    return 'not a dict'\n",
        enabled=True,
    )
    time.sleep(0.3)
    response = solo.token(solo.admin_id, solo.admin_secret, audience=solo.management_audience)
    assert response.status_code == 200, response.text


def test_hooks_cannot_add_scopes_the_api_does_not_define(solo: Server) -> None:
    machine = create_machine(solo, scopes=["a", "b"], granted=["a"])
    hook = create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'scope': scope + ['b', 'create:clients']}\n",
        enabled=True,
    )
    time.sleep(0.3)
    assert fetch_claims(solo, machine)["scope"] == "a b"  # b is the API's; create:clients is not
    time.sleep(1.0)
    with solo.api() as api:
        console = api.get(f"/hooks/{hook['id']}/logs").json()[0]["console"]
    assert any("create:clients was dropped" in line["text"] for line in console)


def test_notes_about_a_hooks_output_are_redacted(solo: Server) -> None:
    machine = create_machine(solo)
    hook = create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {context['secrets']['KEY']: 1}\n",
        enabled=True,
    )
    with solo.api() as api:
        api.post(f"/hooks/{hook['id']}/secrets", json={"KEY": "supersecretvalue"})
    time.sleep(0.3)
    assert fetch_claims(solo, machine)
    time.sleep(1.0)
    with solo.api() as api:
        logs = api.get(f"/hooks/{hook['id']}/logs").text
    assert "supersecretvalue" not in logs
    assert "***" in logs


def test_hooks_cannot_add_scopes_to_an_api_that_defines_none(solo: Server) -> None:
    machine = create_machine(solo, scopes=[])
    hook = create_hook(
        solo,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'scope': scope + ['create:clients']}\n",
        enabled=True,
    )
    time.sleep(0.3)
    assert "scope" not in fetch_claims(solo, machine)  # an API without scopes allows none
    time.sleep(1.0)
    with solo.api() as api:
        console = api.get(f"/hooks/{hook['id']}/logs").json()[0]["console"]
    assert any("create:clients was dropped" in line["text"] for line in console)
