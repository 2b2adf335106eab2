"""Server-Sent Events of hook logs: stored records in order, live console lines
in between, heartbeats, and a last event for a subscriber that fell behind, whose
token expired (``dropped``: reconnect) or whose access was taken away (``end``).

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
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

import orjson
from anyio.to_thread import run_sync
from sqlalchemy.exc import DBAPIError

from authhooks.logs import records
from authhooks.logs.bus import LineFilter, LogBus, RecordBatch, StoredRecord, Subscription
from authhooks.logs.writer import StoredBatch
from authhooks.storage.database import Database

log = logging.getLogger(__name__)

# Records read from the database per query. A stream on one of several processes
# reads back every record the others stored: a page covers a few batches'
# worth of them, so one query usually does, without counting the backlog.
_BATCH = 1000
# ...and at most about this many bytes of events: a record's console lines can
# run to megabytes, so rows are fetched a few at a time and the page cut short.
_PAGE_BYTES = 8 * 1024 * 1024
# Streams one server process serves at most.
MAX_SUBSCRIBERS = 100
# The shortest time between two writes to one stream.
GATHER = 0.005
# A subscriber further behind than this many records is dropped: it would never catch up.
MAX_BACKLOG = 10_000

# Whether a subscriber may still read: None, or why not as (reason, message).
AccessCheck = Callable[[], Awaitable[tuple[str, str] | None]]


async def events(
    database: Database,
    bus: LogBus,
    record_filter: records.RecordFilter,
    last_event_id: int | None,
    heartbeat: float,
    *,
    expires_at: float | None = None,
    access: AccessCheck | None = None,
    access_every: float = 1.0,
) -> AsyncIterator[bytes]:
    """The stream's bytes; ends only when the subscriber is dropped, loses its
    access (``access`` is asked every ``access_every`` seconds; one that fails
    with a database error is asked again next time), or disconnects.

    ``cursor`` is a position in the records' numbering: every record up to it
    that matches the filter has been sent. It is the resume point the events
    carry, and a batch from the bus is forwarded as it is only when it starts
    right after it; otherwise the records in between are read first.
    """
    key, subscription = bus.subscribe(LineFilter(record_filter.hook_id, record_filter.point))
    reads = records.StreamReads(record_filter)
    live_lines = record_filter.outcome is None  # lines have no outcome yet
    try:
        if last_event_id is None:
            cursor = await run_sync(_position, database)
        else:
            cursor = last_event_id
            subscription.records_stored.set()
        # The id now, so that a client reconnecting before any record arrives
        # resumes from here rather than from whatever is newest then.
        yield f"retry: 2000\nid: {cursor}\n\n".encode()
        wrote = time.monotonic()
        check_at = wrote + access_every
        check_failing = False  # the last access check met a database error
        while True:
            if subscription.records_stored.is_set():
                subscription.records_stored.clear()
                subscription.batches.clear()  # what they carry is read now
                async for page in _read(database, reads, cursor, None):
                    # Lines first: an invocation's lines were all written before its record.
                    yield _lines(subscription, live_lines) + page.events
                    wrote = time.monotonic()
                    cursor = page.cursor
            while subscription.batches:
                batch = subscription.batches.popleft()
                if batch.last <= cursor:
                    continue  # already read from the database
                if batch.first > cursor + 1:  # stored meanwhile by another process
                    async for page in _read(database, reads, cursor, batch.first - 1):
                        yield _lines(subscription, live_lines) + page.events
                out = bytearray(_lines(subscription, live_lines))
                for record in batch.records:
                    if record_filter.matches(
                        record.hook_id, record.point, record.outcome, record.started_at
                    ):
                        out += record.event
                cursor = batch.last
                if out:
                    yield bytes(out)
                    wrote = time.monotonic()
            lines = _lines(subscription, live_lines)
            if lines:
                yield lines
                wrote = time.monotonic()
            if subscription.dropped is not None:
                yield _event("dropped", {"reason": subscription.dropped})
                return
            if subscription.closed:
                yield b": the server is stopping; reconnect to resume\n\n"
                return
            # A stream is no longer-lived than the token that opened it.
            token_left = math.inf if expires_at is None else expires_at - time.time()
            if token_left <= 0:
                yield _event(
                    "dropped", {"reason": "the access token expired: reconnect with a new one"}
                )
                return
            # Nor than its access (a deleted client or admin, a revoked grant), looked
            # at again every ``access_every`` seconds: a timer, not a look per event.
            check_left = math.inf
            if access is not None:
                check_left = check_at - time.monotonic()
                if check_left <= 0:
                    try:
                        refused = await access()
                    except DBAPIError as error:
                        # The database is away: go on, as requests are served from the
                        # cache meanwhile, and look again at the next check.
                        if not check_failing:
                            log.warning(
                                "log stream: access check failed, streaming on (%s)",
                                type(error.orig).__name__,
                            )
                        check_failing, refused = True, None
                    else:
                        check_failing = False
                    if refused is not None:
                        yield _event("end", {"reason": refused[0], "message": refused[1]})
                        return
                    check_at = time.monotonic() + access_every
                    check_left = access_every
            if subscription.records_stored.is_set() or subscription.batches:
                continue
            quiet_for = time.monotonic() - wrote
            if quiet_for >= heartbeat:
                # Keeps proxies from closing the stream, carries the resume point, and
                # is the poll that finds records stored by processes that do not
                # notify (logs.notify: none do on SQLite).
                yield f": heartbeat\nid: {cursor}\n\n".encode()
                wrote = time.monotonic()
                subscription.records_stored.set()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    subscription.wake.wait(), min(heartbeat - quiet_for, token_left, check_left)
                )
            # Under a flood of lines, gather for a moment and write them as one chunk
            # rather than one write each; a line after a quiet spell goes out at once.
            since_write = time.monotonic() - wrote
            if since_write < GATHER:
                await asyncio.sleep(GATHER - since_write)
            subscription.wake.clear()
    except _TooFarBehind:
        yield _lines(subscription, live_lines) + _event(
            "dropped", {"reason": "the subscriber is too far behind"}
        )
    finally:
        bus.unsubscribe(key)


class _TooFarBehind(Exception):
    """More records wait for the subscriber than it could ever catch up with."""


class _Page(NamedTuple):
    events: bytes  # the page's records, as events
    cursor: int  # where the page ends in the records' numbering


async def _read(
    database: Database, reads: records.StreamReads, cursor: int, upto: int | None
) -> AsyncIterator[_Page]:
    """Stored records after ``cursor`` (up to ``upto``, or all committed), a page
    at a time; raises _TooFarBehind, after a page, for a subscriber too far behind
    to catch up."""
    while True:
        events, cursor, more = await run_sync(_page, database, reads, cursor, upto)
        yield _Page(events, cursor)
        if not more:
            return
        if await run_sync(_backlog, database, reads, cursor) > MAX_BACKLOG:
            raise _TooFarBehind


def batch_of(stored: StoredBatch) -> RecordBatch:
    """A batch this process has just stored, with each record's event encoded once."""
    return RecordBatch(
        stored.first_seq,
        stored.first_seq + len(stored.invocations) - 1,
        tuple(
            StoredRecord(
                item.hook_id,
                item.point,
                item.outcome,
                item.started_at,
                _invocation_event(records.head(item, seq), _json(item.console)),
            )
            for seq, item in enumerate(stored.invocations, stored.first_seq)
        ),
    )


def _lines(subscription: Subscription, live_lines: bool) -> bytes:
    """The console lines waiting for this stream (read, and dropped when not wanted)."""
    out = bytearray()
    while not subscription.lines.empty():
        line = subscription.lines.get_nowait()
        if live_lines:
            out += _event("console", line)
    return bytes(out)


def _invocation_event(head: dict[str, Any], console: bytes) -> bytes:
    """A record's event, its console lines spliced in as JSON text already encoded."""
    encoded = _json(head)
    return b'id: %d\nevent: invocation\ndata: %s,"console":%s}\n\n' % (
        head["seq"],
        encoded[:-1],
        console,
    )


def _stored_console(console_json: str) -> bytes:
    """Console lines as stored, made safe for an event's data line."""
    console = console_json.encode()
    # ASCII text can break lines only with CR or LF: byte scans, not the pattern.
    breaks = (
        b"\n" in console or b"\r" in console
        if console.isascii()
        else _LINE_BREAKING.search(console) is not None
    )
    if breaks:  # not ours: re-encode
        return _json(json.loads(console))
    return console


def _event(kind: str, data: dict[str, Any], *, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: ".encode() + _json(data) + b"\n\n"


# Characters that end a line for some reader: CR and LF for SSE itself, and
# NEL, LS and PS for readers that split with str.splitlines() (httpx's
# iter_lines, and so the CLI). JSON escapes the first two; orjson writes the
# others as they are.
_LINE_BREAKING = re.compile(b"[\n\r]|\xc2\x85|\xe2\x80[\xa8\xa9]")
_ESCAPES = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def _json(value: Any) -> bytes:
    """Compact JSON as UTF-8, on one line for any reader. orjson, for it is
    several times faster than the standard library on what every stream sends;
    the standard library for what orjson refuses (a lone surrogate, an integer
    over 64 bits, a key that is not a string), which no record of ours holds
    but a stream must not fail on."""
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()
    if b"\xc2\x85" in encoded or b"\xe2\x80" in encoded:
        for raw, escaped in _ESCAPES:
            encoded = encoded.replace(raw, escaped)
    return encoded


def _position(database: Database) -> int:
    with database.engine.connect() as connection:
        return records.position(connection)


def _page(
    database: Database, reads: records.StreamReads, cursor: int, upto: int | None
) -> tuple[bytes, int, bool]:
    """One page of events after ``cursor``; the cursor after it; whether more may follow."""
    events: list[bytes] = []
    size = 0
    # No shared snapshot is needed: batches commit in number order (logs/writer.py),
    # so every record up to the position read first is there for the read after it.
    with database.engine.connect() as connection:
        if upto is None:
            upto = records.position(connection)
        rows = reads.after(connection, cursor, upto, _BATCH)
        try:
            for row in rows:
                event = _invocation_event(records.head_of(*row[:-1]), _stored_console(row[-1]))
                events.append(event)
                size += len(event)
                if size >= _PAGE_BYTES or len(events) == _BATCH:
                    return b"".join(events), row.seq, True
        finally:
            rows.close()
    return b"".join(events), max(cursor, upto), False


def _backlog(database: Database, reads: records.StreamReads, seq: int) -> int:
    with database.engine.connect() as connection:
        return reads.count_after(connection, seq)
