"""The PostgreSQL relay of live lines between server processes, as another role
that can connect to the database sees it: nothing to read, nothing to forge, and
nothing to replay for long, even to a process started after it was sent."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from authhooks.logs.bus import LineFilter, LogBus, Subscription
from authhooks.logs.notify import PgRelay, channel
from authhooks.masterkey import MasterKey
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


LINE = {
    "invocation_id": "inv_1",
    "hook_id": "hk_1",
    "point": "credentials-exchange",
    "stream": "stdout",
    "text": "heard",
}


def test_a_captured_payload_is_refused_by_every_process_once_its_window_is_over() -> None:
    """Numbers stop a replay to a process that heard the payload; a process started
    since has no numbers, so the payload's own time must: after the window, nobody
    takes it, and the numbers it needed are forgotten."""
    key = MasterKey(secrets.token_bytes(32))
    window = 0.3

    def relay() -> tuple[PgRelay, Subscription]:
        bus = LogBus()
        _, heard = bus.subscribe(LineFilter())
        made = PgRelay("postgresql+psycopg://a@db.invalid/a", bus, key, window=window)
        made._channel = channel("a", "public")  # named on connecting: no database here
        return made, heard

    def sent(sender: PgRelay) -> str:
        [payload] = sender._sealed([LINE], False)
        return payload

    async def scenario() -> dict[str, Any]:
        sender, other_sender = relay()[0], relay()[0]
        payload = sent(sender)
        first, first_heard = relay()
        first._received(payload)
        first._received(payload)  # a replay
        # Started meanwhile, within the window: it takes the payload once (the bound).
        started, started_heard = relay()
        started._received(payload)
        await asyncio.sleep(window + 0.1)
        late, late_heard = relay()
        late._received(payload)
        first._received(payload)
        first._received(sent(other_sender))
        return {
            "first": first_heard.lines.qsize(),
            "started": started_heard.lines.qsize(),
            "late": late_heard.lines.qsize(),
            "remembered": set(first._heard),
            "other": other_sender._origin,
        }

    found = asyncio.run(scenario())
    assert found["first"] == 2  # the payload, then the other sender's
    assert found["started"] == 1
    assert found["late"] == 0
    assert found["remembered"] == {found["other"]}
