"""Server-Sent Events of hook logs: stored records in order, live console lines
in between, heartbeats, and an end event for a subscriber that fell behind.

Each ``invocation`` event carries its record's ``seq`` as the SSE ``id``, so a
client that reconnects with ``Last-Event-ID`` (browsers' EventSource does so by
itself) resumes right after the last record it got, from the database: nothing
stored is lost. ``console`` events are live only and carry no id; every line
is also in its invocation's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from anyio.to_thread import run_sync

from authhooks.logs import records
from authhooks.logs.bus import LineFilter, LogBus
from authhooks.storage.database import Database

_BATCH = 200
# Streams one server process serves at most: each reads the database when records arrive.
MAX_SUBSCRIBERS = 100
# A subscriber further behind than this many records is dropped: it would never catch up.
MAX_BACKLOG = 10_000


async def events(
    database: Database,
    bus: LogBus,
    record_filter: records.RecordFilter,
    last_event_id: int | None,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    """The stream's bytes; ends only when the subscriber is dropped or disconnects."""
    key, subscription = bus.subscribe(LineFilter(record_filter.hook_id, record_filter.point))
    live_lines = record_filter.outcome is None  # lines have no outcome yet
    try:
        cursor = last_event_id
        if cursor is None:
            cursor = await run_sync(_last_seq, database)
        # The id now, so that a client reconnecting before any record arrives
        # resumes from here rather than from whatever is newest then.
        yield f"retry: 2000\nid: {cursor}\n\n".encode()
        wrote = time.monotonic()
        read_records = last_event_id is not None
        while True:
            while read_records:
                rows = await run_sync(_after, database, record_filter, cursor)
                for row in rows:
                    cursor = row["seq"]
                    yield _event("invocation", row, event_id=str(row["seq"]))
                    wrote = time.monotonic()
                read_records = len(rows) == _BATCH
                # Between batches too: a busy stream must not let its lines pile up.
                while not subscription.lines.empty():
                    line = subscription.lines.get_nowait()
                    if live_lines:
                        yield _event("console", line)
                if (
                    read_records
                    and await run_sync(_backlog, database, record_filter, cursor) > MAX_BACKLOG
                ):
                    yield _event("dropped", {"reason": "the subscriber is too far behind"})
                    return
            while not subscription.lines.empty():
                line = subscription.lines.get_nowait()
                if live_lines:
                    yield _event("console", line)
                    wrote = time.monotonic()
            if subscription.dropped is not None:
                yield _event("dropped", {"reason": subscription.dropped})
                return
            quiet_for = time.monotonic() - wrote
            if quiet_for >= heartbeat:
                # Keeps proxies from closing the stream, carries the resume point, and
                # is the poll that finds records stored by processes without a relay.
                yield f": heartbeat\nid: {cursor}\n\n".encode()
                wrote = time.monotonic()
                read_records = True
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscription.wake.wait(), heartbeat - quiet_for)
            subscription.wake.clear()
            if subscription.records_stored.is_set():
                subscription.records_stored.clear()
                read_records = True
    finally:
        bus.unsubscribe(key)


def _event(kind: str, data: dict[str, Any], *, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return f"{head}event: {kind}\ndata: {body}\n\n".encode()


def _last_seq(database: Database) -> int:
    with database.session() as session:
        return records.last_seq(session)


def _after(
    database: Database, record_filter: records.RecordFilter, seq: int
) -> list[dict[str, Any]]:
    with database.session() as session:
        return [records.view(row) for row in records.after(session, record_filter, seq, _BATCH)]


def _backlog(database: Database, record_filter: records.RecordFilter, seq: int) -> int:
    with database.session() as session:
        return records.count_after(session, record_filter, seq)
