"""The log bus and a stream over a real database: publishing never waits, and a
subscriber that falls behind is dropped with a final event."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from authhooks.logs.bus import MAX_QUEUED_LINES, LineFilter, LogBus
from authhooks.logs.records import RecordFilter
from authhooks.logs.stream import events
from authhooks.storage.database import Database


def line(n: int, hook_id: str = "hk_1") -> dict[str, object]:
    return {"invocation_id": "inv_1", "hook_id": hook_id, "point": "credentials-exchange", "n": n}


def test_a_subscriber_that_falls_behind_is_dropped(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'logs.db'}")
    database.migrate()
    bus = LogBus()

    async def scenario() -> list[bytes]:
        stream = events(database, bus, RecordFilter(), None, heartbeat=5)
        assert (await anext(stream)).startswith(b"retry:")
        assert bus.subscribers == 1
        began = time.perf_counter()
        for n in range(MAX_QUEUED_LINES * 3):  # nobody reads meanwhile
            bus.line(line(n))
        assert time.perf_counter() - began < 1.0  # publishing did not wait
        assert bus.subscribers == 0
        return [chunk async for chunk in stream]

    chunks = asyncio.run(scenario())
    database.dispose()
    assert chunks[-1].startswith(b"event: dropped\n")
    assert b"fell behind" in chunks[-1]
    assert len(chunks) == MAX_QUEUED_LINES + 1  # what it had queued, then the end


def test_lines_reach_matching_subscribers_only() -> None:
    async def scenario() -> tuple[int, int]:
        bus = LogBus()
        _, mine = bus.subscribe(LineFilter(hook_id="hk_1"))
        _, theirs = bus.subscribe(LineFilter(point="post-change-password"))
        bus.line(line(1))
        bus.line(line(2, hook_id="hk_2"))
        return mine.lines.qsize(), theirs.lines.qsize()

    assert asyncio.run(scenario()) == (1, 0)
