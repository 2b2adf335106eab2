"""The server's own log lines: JSON objects with the request's id and what it did,
and never a secret or a password."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server, create_machine, run_server, unique

FAILS = "def credentials_exchange(client, scope, audience, context):\n    raise ValueError('no')\n"


def lines(server: Server, tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / f"server-{server.env['AUTHHOOKS_PORT']}.log"
    parsed = []
    for text in log.read_text().splitlines():
        if text.startswith("{"):
            parsed.append(json.loads(text))
    return parsed


def wait_for_line(server: Server, tmp_path: Path, **fields: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in lines(server, tmp_path):
            if all(line.get(key) == wanted for key, wanted in fields.items()):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no log line with {fields}")


def test_json_lines_carry_the_request_and_never_its_secrets(tmp_path: Path) -> None:
    with run_server(tmp_path, "sqlite", log_level="info", log_format="json") as server:
        machine = create_machine(server)
        issued = httpx.post(
            server.url + "/oauth/token",
            data=machine.token_form(),
            headers={"X-Request-Id": "trace-42"},
        )
        assert issued.status_code == 200
        assert issued.headers["x-request-id"] == "trace-42"
        line = wait_for_line(server, tmp_path, request_id="trace-42")
        assert line["method"] == "POST"
        assert line["path"] == "/oauth/token"
        assert line["status"] == 200
        assert line["client_id"] == machine.client_id
        assert line["grant_type"] == "client_credentials"
        assert line["outcome"] == "issued"
        assert line["duration_ms"] > 0
        assert line["level"] == "info"

        # A password attempt: refused, logged, the password nowhere.
        password = "Sup3r-Secret-Passw0rd!"
        refused = httpx.post(
            server.url + "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": machine.client_id,
                "client_secret": machine.client_secret,
                "username": "nobody@example.com",
                "password": password,
            },
        )
        assert refused.status_code in (400, 401, 403)
        own_id = refused.headers["x-request-id"]
        assert len(own_id) == 16  # made by the server: the request sent none

        # A management call names its client; a hostile id is replaced, not logged.
        with server.api() as api:
            listed = api.get("/hooks", headers={"X-Request-Id": 'bad"id{}'})
        assert listed.status_code == 200
        assert listed.headers["x-request-id"] != 'bad"id{}'
        management = wait_for_line(server, tmp_path, request_id=listed.headers["x-request-id"])
        assert management["client_id"] == server.admin_id
        assert management["path"] == "/api/v2/hooks"

        # A hook that fails says so, with its id and point.
        with server.api() as api:
            hook = api.post(
                "/hooks",
                json={
                    "name": unique("fails"),
                    "script": FAILS,
                    "triggerId": "credentials-exchange",
                    "enabled": True,
                },
            ).json()
        failed = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
        assert failed.status_code >= 400
        hook_line = wait_for_line(server, tmp_path, hook_id=hook["id"])
        assert hook_line["point"] == "credentials-exchange"
        assert hook_line["outcome"] != "ok"

        everything = (tmp_path / f"server-{server.env['AUTHHOOKS_PORT']}.log").read_text()
        for secret in (machine.client_secret, password, server.admin_secret):
            assert secret not in everything
        assert '"path": "/oauth/token"' in everything


def test_text_lines_for_a_terminal(tmp_path: Path) -> None:
    with run_server(tmp_path, "sqlite", log_level="info", log_format="text") as server:
        response = httpx.get(server.url + "/healthz", headers={"X-Request-Id": "plain-1"})
        assert response.status_code == 200
        log = tmp_path / f"server-{server.env['AUTHHOOKS_PORT']}.log"
        deadline = time.monotonic() + 10
        while "[plain-1] GET /healthz 200" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
