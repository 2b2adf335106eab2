"""Many hooks: a thousand created, two hundred enabled across the points. The
sandbox stays within its worker cap, memory with it, and flows stay correct."""

from __future__ import annotations

import time
from pathlib import Path

import jwt

from tests.conftest import create_machine, run_server
from tests.stress.conftest import FULL, Report

CREATED, ENABLED = (1000, 200) if FULL else (100, 20)
MAX_WORKERS = 64  # the runtime's cap on live sandbox workers per server process


def tree_rss(pid: int) -> tuple[int, int]:
    """(processes, resident bytes) of ``pid`` and everything under it."""
    count, total, pending = 0, 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        count += 1
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return count, total


def test_a_thousand_hooks_stay_within_the_worker_cap(tmp_path: Path, report: Report) -> None:
    with run_server(tmp_path, "sqlite") as server:
        assert server.process is not None
        with server.api() as api:
            points = [point["name"] for point in api.get("/points").json()]
            templates = {name: api.get(f"/points/{name}").json()["template"] for name in points}
        began = time.monotonic()
        claim_hooks = []
        with server.api() as api:
            for number in range(CREATED):
                point = points[number % len(points)]
                enable = number < ENABLED
                script = templates[point]
                if point == "credentials-exchange":
                    # Each adds a claim of its own: the token shows every one ran, in order.
                    script = (
                        "def credentials_exchange(client, scope, audience, context):\n"
                        f"    return {{'https://example.com/h{number}': {number}}}\n"
                    )
                response = api.post(
                    "/hooks",
                    json={
                        "name": f"many-{number}",
                        "triggerId": point,
                        "script": script,
                        "enabled": enable,
                        "order": number,
                        # A scheduled hook needs its schedule: one that never comes due here.
                        **({"schedule": {"cron": "0 0 1 1 *"}} if point == "schedule" else {}),
                    },
                    timeout=60,
                )
                assert response.status_code == 201, response.text
                if enable and point == "credentials-exchange":
                    claim_hooks.append(number)
        created_in = time.monotonic() - began

        machine = create_machine(server)
        for _ in range(3):
            issued = server.token(
                machine.client_id, machine.client_secret, audience=machine.audience
            )
            assert issued.status_code == 200, issued.text
        # The claims, unverified: the signature is tested elsewhere.
        payload = jwt.decode(issued.json()["access_token"], options={"verify_signature": False})
        for number in claim_hooks:
            assert payload[f"https://example.com/h{number}"] == number

        processes, rss = tree_rss(server.process.pid)
        # The server process, and at most MAX_WORKERS workers (each a bwrap and its Python).
        assert processes <= 1 + 2 * MAX_WORKERS
        report.add(
            f"{CREATED} hooks, {ENABLED} enabled",
            f"created in {created_in:.0f} s; {len(claim_hooks)} credentials-exchange hooks "
            f"in every token, {processes} processes, {rss / 2**20:.0f} MiB resident in all "
            f"(cap {MAX_WORKERS} workers)",
        )
