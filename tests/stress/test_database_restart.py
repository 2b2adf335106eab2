"""PostgreSQL restarted under load: while it is down, requests that need it fail
cleanly with 503 (and warm token requests, which need no database, go on); once
it is back the server recovers by itself."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import create_machine, run_server
from tests.stress.conftest import FULL, Report
from tests.stress.postgres import own_postgres
from tests.users.helpers import PASSWORD, create_app

DOWN_SECONDS = 10.0 if FULL else 3.0


def test_postgres_restart_gives_503s_then_recovers(tmp_path: Path, report: Report) -> None:
    with (
        own_postgres() as database,
        run_server(tmp_path, "sqlite", database_url=database.url) as server,
    ):
        machine = create_machine(server)
        app = create_app(server, app_type="regular_web")
        token_form = machine.token_form()
        phase = "before"
        seen: dict[str, Counter[str]] = {"before": Counter(), "down": Counter(), "after": Counter()}
        stop = threading.Event()

        def one_round(client: httpx.Client, email: str) -> None:
            current = phase
            requests = {
                "token": lambda: client.post(server.url + "/oauth/token", data=token_form),
                "signup": lambda: client.post(
                    server.url + "/dbconnections/signup",
                    json={"client_id": app["client_id"], "email": email, "password": PASSWORD},
                ),
                "api": lambda: client.get(
                    server.url + "/api/v2/users",
                    headers={"Authorization": f"Bearer {server.management_token()}"},
                ),
            }
            for kind, send in requests.items():
                try:
                    status = str(send().status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                seen[current][f"{kind} {status}"] += 1

        def load() -> None:
            with httpx.Client(timeout=15) as client:
                while not stop.is_set():
                    one_round(client, f"restart-{time.monotonic_ns()}@example.com")

        server.management_token()  # cached before the database goes away
        worker = threading.Thread(target=load)
        worker.start()
        try:
            time.sleep(2)
            phase = "down"
            database.stop("fast")
            time.sleep(DOWN_SECONDS)
            database.start()
            restarted = time.monotonic()
            phase = "after"
            # Recovered: a signup goes through again, no server restart.
            while seen["after"]["signup 200"] == 0:
                assert time.monotonic() - restarted < 30, seen
                time.sleep(0.1)
            recovered = time.monotonic() - restarted
            time.sleep(1)
        finally:
            stop.set()
            worker.join(timeout=30)

        statuses = {answer.split()[1] for answers in seen.values() for answer in answers}
        assert statuses <= {"200", "503"}, seen  # nothing else: no 500, no hang
        assert seen["down"]["signup 503"] >= 1, seen
        assert seen["down"]["token 200"] >= 1, seen  # warm tokens need no database
        report.add(
            f"PostgreSQL stopped for {DOWN_SECONDS:.0f} s under load",
            "while down: "
            + ", ".join(f"{key} x{count}" for key, count in sorted(seen["down"].items()))
            + f"; signups succeed {recovered:.1f} s after it is back",
        )
