"""GET /api/v2/logs and /api/v2/logs/{id}: filters, pages, one record, bounds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, create_machine, run_server
from tests.logs.test_stream import create_hook, token

FLOOD = """
def credentials_exchange(client, scope, audience, context):
    for n in range(1_000_000):
        print("line", n)
"""


@pytest.fixture
def solo(backend: str, tmp_path: Path) -> Any:
    with run_server(tmp_path, backend) as running:
        yield running


NUL_RAISER = """
def credentials_exchange(client, scope, audience, context):
    raise ValueError("nul\\x00byte")
"""


def logs(server: Server, **params: Any) -> Any:
    with server.api("read:logs") as api:
        return api.get("/logs", params=params)


def test_filters_and_pages(solo: Server) -> None:
    machine = create_machine(solo)
    quiet = create_hook(
        solo, "def credentials_exchange(client, scope, audience, context):\n    pass\n"
    )
    time.sleep(0.3)
    began = time.time()
    for _ in range(5):
        assert token(solo, machine).status_code == 200
    time.sleep(0.4)
    first = logs(solo, hook_id=quiet["id"], take=2).json()
    assert len(first["logs"]) == 2
    second = logs(solo, hook_id=quiet["id"], take=2, before=first["next"]).json()
    third = logs(solo, hook_id=quiet["id"], take=2, before=second["next"]).json()
    assert third["next"] is None
    seqs = [record["seq"] for page in (first, second, third) for record in page["logs"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(seqs) == 5
    assert logs(solo, point="credentials-exchange", outcome="ok").json()["logs"]
    assert logs(solo, outcome="timeout").json()["logs"] == []
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began + 3600))
    assert logs(solo, since=since).json()["logs"] == []
    one = first["logs"][0]
    with solo.api("read:logs") as api:
        assert api.get(f"/logs/{one['id']}").json() == one
        assert api.get("/logs/inv_nothing").status_code == 404


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"point": "nowhere"}, "unknown point"),
        ({"since": "2026-01-01T00:00:00"}, "time zone"),
        ({"take": 0}, "take"),
        ({"take": 101}, "take"),
        ({"before": "x"}, "before"),
        ({"outcome": "NOT OK"}, "outcome"),
    ],
)
def test_bad_queries(server: Server, params: dict[str, Any], says: str) -> None:
    response = logs(server, **params)
    assert response.status_code == 400, response.text
    assert says in response.json()["message"]


def test_a_million_lines_are_capped_and_marked(solo: Server) -> None:
    machine = create_machine(solo)
    hook = create_hook(solo, FLOOD, timeout_ms=20000)
    time.sleep(0.3)
    assert token(solo, machine).status_code == 200
    time.sleep(0.5)
    record = logs(solo, hook_id=hook["id"]).json()["logs"][0]
    assert record["truncated"] is True
    assert len(record["console"]) <= 1100
    assert any("dropped past the cap" in line["text"] for line in record["console"])


def test_an_error_holding_a_nul_is_stored(solo: Server) -> None:
    """PostgreSQL's text refuses NUL: the record is stored with a replacement
    character, and the records stored with it are not lost."""
    machine = create_machine(solo)
    failing = create_hook(solo, NUL_RAISER, on_error="continue")
    quiet = create_hook(
        solo, "def credentials_exchange(client, scope, audience, context):\n    pass\n", order=1
    )
    time.sleep(0.3)
    assert token(solo, machine).status_code == 200
    time.sleep(0.5)
    record = logs(solo, hook_id=failing["id"]).json()["logs"][0]
    assert "nul\ufffdbyte" in record["error"]
    assert logs(solo, hook_id=quiet["id"]).json()["logs"]
