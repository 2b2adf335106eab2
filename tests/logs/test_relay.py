"""The PostgreSQL relay of live lines between server processes, as another role
that can connect to the database sees it: nothing to read, nothing to forge."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from authhooks.logs.relay import channel
from tests.conftest import PG_URL, create_machine, run_server, serve_again, unique
from tests.logs.sse import Subscriber
from tests.logs.test_stream import create_hook, token

PRINTER = """
def credentials_exchange(client, scope, audience, context):
    print("overheard", client["id"])
"""


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: set AUTHHOOKS_TEST_DATABASE_URL")
def test_another_connection_can_neither_read_nor_forge_nor_replay_lines(tmp_path: Path) -> None:
    with (
        run_server(tmp_path, "postgresql") as first,
        serve_again(first, tmp_path) as second,
        psycopg.connect(
            first.database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        ) as other,
    ):
        where = other.execute("SELECT current_database(), current_schema()").fetchone()
        assert where is not None
        name = channel(*where)
        other.execute(f"LISTEN {name}")
        machine = create_machine(first)
        hook = create_hook(first, PRINTER)
        time.sleep(0.5)
        with Subscriber(
            second.url + "/api/v2/logs/stream",
            second.management_token("read:logs"),
            hook_id=hook["id"],
        ) as stream:
            # A hook on the first process: its line reaches the second through NOTIFY.
            assert token(first, machine).status_code == 200
            heard = stream.next("console")
            assert heard.data["text"] == f"overheard {machine.client_id}"
            overheard = [note.payload for note in other.notifies(timeout=1.0)]
            assert overheard
            for payload in overheard:
                assert "overheard" not in payload
                assert hook["id"] not in payload
                assert heard.data["invocation_id"] not in payload

            forged = {
                "o": "forger",
                "n": 10**9,
                "r": False,
                "l": [{**heard.data, "text": "forged", "invocation_id": unique("inv")}],
            }
            other.execute("SELECT pg_notify(%s, %s)", (name, json.dumps(forged)))
            for payload in overheard:  # replays
                other.execute("SELECT pg_notify(%s, %s)", (name, payload))
            # Notifications arrive in the order they were sent: the next call's line,
            # and then its record, come after whatever the forged and replayed ones bring.
            assert token(first, machine).status_code == 200
            seen = [stream.next()]
            while (
                seen[-1].kind != "invocation" or seen[-1].data["id"] == heard.data["invocation_id"]
            ):
                seen.append(stream.next())
            lines = [event.data["invocation_id"] for event in seen if event.kind == "console"]
            assert lines == [seen[-1].data["id"]]
