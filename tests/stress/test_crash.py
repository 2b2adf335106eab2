"""kill -9 of the server in the middle of a burst of signups: after a restart every
committed user has its post-registration hook delivered exactly once (one
event, one delivery), and no user is half-created."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import Server, run_server, serve_again, unique
from tests.stress.conftest import FULL, Report
from tests.users.helpers import PASSWORD, create_app

SIGNUPS = 400 if FULL else 80
NOTIFY = "def post_user_registration(user, context):\n    print('welcome', user['id'])\n"


async def burst(server: Server, client_id: str, emails: list[str], kill_after: int) -> set[str]:
    """Sign up ``emails`` 8 at a time; kill -9 the server once ``kill_after`` have
    answered. The emails whose signup was answered 200 (certainly committed)."""
    committed: set[str] = set()
    queue = list(emails)
    killed = False

    async def one_client(client: httpx.AsyncClient) -> None:
        nonlocal killed
        while queue:
            email = queue.pop()
            try:
                response = await client.post(
                    server.url + "/dbconnections/signup",
                    json={"client_id": client_id, "email": email, "password": PASSWORD},
                )
            except httpx.HTTPError:
                continue  # the server died under it: committed or not, unknown
            if response.status_code == 200:
                committed.add(email)
            if len(committed) >= kill_after and not killed:
                killed = True
                assert server.process is not None
                # SIGKILL: no shutdown of any kind. Its sandbox workers die with it
                # (bwrap --die-with-parent).
                server.process.send_signal(signal.SIGKILL)

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(one_client(client) for _ in range(8)))
    return committed


def test_kill_9_during_signups_loses_and_repeats_nothing(
    backend: str, tmp_path: Path, report: Report
) -> None:
    settings = {"delivery_lease": 2, "delivery_backoff": 0.2, "delivery_poll_interval": 0.2}
    with run_server(tmp_path, backend, **settings) as first:
        app = create_app(first, app_type="regular_web")
        with first.api() as api:
            hook = api.post(
                "/hooks",
                json={
                    "name": unique("welcome"),
                    "triggerId": "post-user-registration",
                    "script": NOTIFY,
                    "enabled": True,
                },
            ).json()
        emails = [f"{unique('burst')}@example.com" for _ in range(SIGNUPS)]
        began = time.monotonic()
        committed = asyncio.run(burst(first, app["client_id"], emails, SIGNUPS // 3))
        assert first.process is not None
        first.process.wait(timeout=10)
        assert first.process.returncode == -signal.SIGKILL

        with serve_again(first, tmp_path) as second:
            database = Database(second.database_url)
            try:
                deadline = time.monotonic() + 60
                while True:
                    with database.session() as session:
                        users = {
                            user.id: user.email
                            for user in session.scalars(
                                select(models.User).where(models.User.email.like("burst-%"))
                            )
                        }
                        deliveries = list(
                            session.scalars(
                                select(models.HookDelivery).where(
                                    models.HookDelivery.hook_id == hook["id"]
                                )
                            )
                        )
                    if all(d.status == "delivered" for d in deliveries):
                        break
                    assert time.monotonic() < deadline, Counter(d.status for d in deliveries)
                    time.sleep(0.2)
            finally:
                database.dispose()
            recovered = time.monotonic() - began

        # Every answered signup is stored; every stored user (answered or not) has
        # exactly one delivery of one event, delivered: none lost, none repeated.
        assert committed <= set(users.values())
        per_user = Counter(str(d.payload["user"]["id"]) for d in deliveries)
        assert set(per_user) == set(users)
        assert all(count == 1 for count in per_user.values()), per_user.most_common(3)
        assert len({d.event_id for d in deliveries}) == len(users)
        rerun = sum(1 for d in deliveries if d.attempts > 1)
        report.add(
            f"kill -9 during {SIGNUPS} signups ({backend})",
            f"{len(committed)} answered before the kill, {len(users)} stored, one event "
            f"each, all delivered ({rerun} run again after the kill: same event id), "
            f"settled {recovered:.1f} s after the burst began",
        )
