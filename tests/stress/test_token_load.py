"""Sustained token load through a hook, quiet and then beside hostile hooks on
another point: the token flow answers every request, and its latency is reported."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.conftest import Server, create_machine, run_server, unique
from tests.observability.exposition import scrape, value
from tests.stress.conftest import FULL, Report
from tests.stress.load import Figures, hammer, run
from tests.users.helpers import PASSWORD, create_api, create_app, new_email, signup

SECONDS = 60.0 if FULL else 6.0
CONCURRENCY = 8
SCRAPE = "stress-scrape-token-0123456789"
ADD_CLAIM = (
    "def credentials_exchange(client, scope, audience, context):\n"
    "    return {'https://example.com/plan': 'gold'}\n"
)
HOSTILE = {
    "loops": "def password_exchange(user, client, scope, audience, context):\n"
    "    while True:\n        pass\n",
    "allocates": "def password_exchange(user, client, scope, audience, context):\n"
    "    hoard = []\n    while True:\n        hoard.append(bytearray(64 << 20))\n",
    "crashes": "import os\n\n"
    "def password_exchange(user, client, scope, audience, context):\n    os._exit(3)\n",
}


def add_hook(server: Server, point: str, script: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={"name": unique("stress"), "triggerId": point, "script": script, **fields},
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def describe(figures: Figures) -> str:
    return (
        f"{figures.requests} requests, {figures.errors} errors, {figures.rate:.0f}/s, "
        f"p50 {figures.percentile(0.5):.1f} ms, p99 {figures.percentile(0.99):.1f} ms"
    )


def killed(server: Server) -> dict[str, float]:
    text = scrape(server, SCRAPE)
    reasons = ("timeout", "out_of_memory", "crashed", "exited")
    return {
        reason: value(text, "authhooks_sandbox_workers_killed_total", reason=reason)
        for reason in reasons
    }


def test_token_flow_holds_beside_hostile_hooks(tmp_path: Path, report: Report) -> None:
    with run_server(tmp_path, "sqlite", metrics_token=SCRAPE) as server:
        machine = create_machine(server)
        add_hook(server, "credentials-exchange", ADD_CLAIM, enabled=True)
        token_form = machine.token_form()
        url = server.url + "/oauth/token"
        warm = httpx.post(url, data=token_form)
        assert warm.status_code == 200, warm.text
        claims = jwt.decode(warm.json()["access_token"], options={"verify_signature": False})
        assert claims["https://example.com/plan"] == "gold"  # the hook runs

        quiet = run(hammer(url, token_form, SECONDS, CONCURRENCY))
        report.add("token load, quiet", describe(quiet))
        assert quiet.errors == 0, quiet.failures
        assert quiet.requests > 0

        # Hostile hooks on password-exchange, each run on every password login
        # (on_error=continue: one failing does not spare the next).
        app = create_app(server)
        email = new_email()
        assert signup(server, app["client_id"], email).status_code == 200
        for script in HOSTILE.values():
            add_hook(
                server,
                "password-exchange",
                script,
                enabled=True,
                on_error="continue",
                timeout_ms=500,
            )
        login_form = {
            "grant_type": "password",
            "client_id": app["client_id"],
            "username": email,
            "password": PASSWORD,
            "audience": create_api(server),
        }
        before = killed(server)

        async def both() -> tuple[Figures, Figures]:
            hostile = asyncio.create_task(hammer(url, login_form, SECONDS, 3))
            measured = await hammer(url, token_form, SECONDS, CONCURRENCY)
            return measured, await hostile

        loaded, logins = run(both())
        after = killed(server)
        ended = {reason: count - before[reason] for reason, count in after.items()}
        ratio = loaded.percentile(0.99) / quiet.percentile(0.99)
        report.add("token load, hostile hooks beside", describe(loaded))
        report.add(
            "  hostile hooks",
            f"{logins.requests} logins ran them; workers killed: "
            + ", ".join(f"{reason} {count:.0f}" for reason, count in ended.items())
            + f"; token p99 {ratio:.2f}x quiet (target <= 2x)",
        )
        assert loaded.errors == 0, loaded.failures
        assert logins.errors == 0, logins.failures
        # The hostile hooks did run and were stopped, every way.
        assert ended["timeout"] >= 1
        assert ended["out_of_memory"] >= 1
        assert ended["crashed"] + ended["exited"] >= 1
        # Their logins still got tokens: each hook failed with on_error=continue.
        assert logins.errors == 0, logins.failures
