"""GET /metrics: who may scrape, and that the figures follow what the server did,
summed over every server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import Server, create_machine, free_port, run_server, unique
from tests.observability.exposition import scrape as scrape_with
from tests.observability.exposition import value

SCRAPE_TOKEN = "scrape-" + "x" * 24
ADD_CLAIM = (
    "def credentials_exchange(client, scope, audience, context):\n"
    "    return {'https://example.com/tier': 'gold'}\n"
)
LOOP = (
    "def credentials_exchange(client, scope, audience, context):\n    while True:\n        pass\n"
)


def scrape(server: Server) -> str:
    return scrape_with(server, SCRAPE_TOKEN)


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    """A server of two processes, scraped with a token and on a port of its own."""
    port = free_port()
    with run_server(
        tmp_path_factory.mktemp("metrics"),
        "sqlite",
        workers=2,
        metrics_token=SCRAPE_TOKEN,
        metrics_port=port,
    ) as running:
        yield running, port


def test_only_the_scrape_token_opens_metrics(watched: tuple[Server, int]) -> None:
    server, _ = watched
    bare = httpx.get(server.url + "/metrics")
    assert bare.status_code == 401
    assert "Bearer" in bare.headers["www-authenticate"]
    wrong = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # A management token is not a scrape token.
    management = httpx.get(
        server.url + "/metrics",
        headers={"Authorization": f"Bearer {server.management_token()}"},
    )
    assert management.status_code == 401
    assert SCRAPE_TOKEN not in scrape(server)


def test_tokens_and_hooks_are_counted_across_processes(watched: tuple[Server, int]) -> None:
    server, port = watched
    machine = create_machine(server)
    before = scrape(server)
    issued_before = value(
        before, "authhooks_token_requests_total", grant_type="client_credentials", outcome="issued"
    )
    refused_before = value(
        before,
        "authhooks_token_requests_total",
        grant_type="client_credentials",
        outcome="invalid_client",
    )
    with server.api() as api:
        hook = api.post(
            "/hooks",
            json={
                "name": unique("metered"),
                "script": ADD_CLAIM,
                "triggerId": "credentials-exchange",
                "enabled": True,
            },
        )
        assert hook.status_code == 201, hook.text
    try:
        # New connections each time, so that both server processes answer some.
        # A process may not run the new hook until its cache catches up (cache_ttl):
        # the count to expect is that of the tokens carrying the hook's claim.
        claimed = 0
        for _ in range(12):
            issued = server.token(
                machine.client_id, machine.client_secret, audience=machine.audience
            )
            assert issued.status_code == 200, issued.text
            token = issued.json()["access_token"]
            claims = jwt.decode(token, options={"verify_signature": False})
            claimed += "https://example.com/tier" in claims
        assert claimed >= 1
        refused = server.token(machine.client_id, "wrong", audience=machine.audience)
        assert refused.status_code == 401
        unknown = httpx.post(server.url + "/oauth/token", data={"grant_type": "made_up"})
        assert unknown.status_code == 400

        after = scrape(server)
        issued_after = value(
            after,
            "authhooks_token_requests_total",
            grant_type="client_credentials",
            outcome="issued",
        )
        # The management token of this test was issued too, hence at least.
        assert issued_after - issued_before >= 12
        assert (
            value(
                after,
                "authhooks_token_requests_total",
                grant_type="client_credentials",
                outcome="invalid_client",
            )
            == refused_before + 1
        )
        assert (
            value(
                after,
                "authhooks_token_requests_total",
                grant_type="other",
                outcome="unsupported_grant_type",
            )
            >= 1
        )
        assert (
            value(
                after,
                "authhooks_hook_invocations_total",
                hook=hook.json()["id"],
                point="credentials-exchange",
                outcome="ok",
            )
            == claimed
        )
        assert (
            value(
                after,
                "authhooks_token_request_duration_seconds_count",
                grant_type="client_credentials",
            )
            >= 13
        )
        assert (
            value(after, "authhooks_hook_duration_seconds_count", point="credentials-exchange")
            >= claimed
        )
        assert value(after, "authhooks_sandbox_workers", state="alive") >= 1

        # The metrics port shows the same figures, without a token.
        separate = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert separate.status_code == 200
        assert (
            value(
                separate.text,
                "authhooks_hook_invocations_total",
                hook=hook.json()["id"],
                point="credentials-exchange",
                outcome="ok",
            )
            == claimed
        )
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 404
    finally:
        with server.api() as api:
            api.delete(f"/hooks/{hook.json()['id']}")


def test_killed_workers_are_counted_by_reason(watched: tuple[Server, int]) -> None:
    server, _ = watched
    before = value(scrape(server), "authhooks_sandbox_workers_killed_total", reason="timeout")
    with server.api() as api:
        hook = api.post(
            "/hooks",
            json={
                "name": unique("loops"),
                "script": LOOP,
                "triggerId": "credentials-exchange",
                "timeout_ms": 200,
            },
        ).json()
        ran = api.post(f"/hooks/{hook['id']}/test", json={})
        assert ran.status_code == 200, ran.text
        assert ran.json()["outcome"] == "timeout"
        api.delete(f"/hooks/{hook['id']}")
    after = scrape(server)
    assert value(after, "authhooks_sandbox_workers_killed_total", reason="timeout") == before + 1
    # A runner call is not traffic: no invocation counted.
    assert (
        value(
            after,
            "authhooks_hook_invocations_total",
            hook=hook["id"],
            point="credentials-exchange",
            outcome="timeout",
        )
        == 0
    )


def test_metrics_are_off_unless_configured(server: Server) -> None:
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 404
    assert "AUTHHOOKS_METRICS_TOKEN" in response.json()["message"]


def test_metrics_port_alone_keeps_the_main_port_closed(tmp_path: Path) -> None:
    port = free_port()
    with run_server(tmp_path, "sqlite", metrics_port=port) as running:
        closed = httpx.get(running.url + "/metrics")
        assert closed.status_code == 404
        assert f"port {port}" in closed.json()["message"]
        running.management_token()
        opened = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert opened.status_code == 200
        assert (
            value(
                opened.text,
                "authhooks_token_requests_total",
                grant_type="client_credentials",
                outcome="issued",
            )
            == 1
        )
