"""Several server processes: a change made through one is honoured by all within the cache TTL."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import CACHE_TTL, create_machine, run_server


def test_rotated_secret_is_refused_by_every_worker(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend, workers=2) as server:
        machine = create_machine(server)

        def attempts(secret: str) -> set[int]:
            codes = set()
            for _ in range(20):  # a new connection each time, so both workers answer some
                response = httpx.post(
                    server.url + "/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": machine.client_id,
                        "client_secret": secret,
                        "audience": machine.audience,
                    },
                )
                codes.add(response.status_code)
            return codes

        assert attempts(machine.client_secret) == {200}  # both workers now cache the client
        with server.api() as api:
            rotated = api.post(f"/clients/{machine.client_id}/rotate-secret")
        assert rotated.status_code == 200
        time.sleep(CACHE_TTL * 3)
        assert attempts(machine.client_secret) == {401}
        assert attempts(rotated.json()["client_secret"]) == {200}
