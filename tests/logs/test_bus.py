"""The log bus and a stream over a real database: publishing never waits, and a
subscriber that falls behind is dropped with a final event."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from authhooks.logs.bus import MAX_QUEUED_BATCHES, MAX_QUEUED_LINES, LineFilter, LogBus
from authhooks.logs.records import Invocation, RecordFilter, newest, view
from authhooks.logs.stream import _BATCH, _PAGE_BYTES, _stored_console, batch_of, events
from authhooks.logs.writer import InvocationLog
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from tests.conftest import postgres_schema
from tests.logs.rows import hook_row, invocation


def line(n: int, hook_id: str = "hk_1") -> dict[str, object]:
    return {"invocation_id": "inv_1", "hook_id": hook_id, "point": "credentials-exchange", "n": n}


def _database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'logs.db'}")
    database.migrate()
    return database


def _database_with_hook(tmp_path: Path) -> Database:
    """A database holding the hook hk_1, whose records the tests store."""
    database = _database(tmp_path)
    with database.session() as session:
        session.add(hook_row("hk_1"))
    return database


def test_a_subscriber_that_falls_behind_is_dropped(tmp_path: Path) -> None:
    database = _database(tmp_path)
    bus = LogBus()

    async def scenario() -> list[bytes]:
        stream = events(database, bus, RecordFilter(), None, heartbeat=5)
        assert (await anext(stream)).startswith(b"retry:")
        assert bus.subscribers == 1
        # Publishing is synchronous: it cannot wait for a reader, and nobody reads.
        for n in range(MAX_QUEUED_LINES * 3):
            bus.line(line(n))
        assert bus.subscribers == 0
        return [chunk async for chunk in stream]

    chunks = asyncio.run(scenario())
    database.dispose()
    assert chunks[-1].startswith(b"event: dropped\n")
    assert b"fell behind" in chunks[-1]
    sent = b"".join(chunks[:-1])
    # What it had queued, in order, then the end.
    assert sent.count(b"event: console\n") == MAX_QUEUED_LINES
    assert b'"n":1999}' in sent
    assert b'"n":2000}' not in sent


def test_lines_reach_matching_subscribers_only() -> None:
    async def scenario() -> tuple[int, int]:
        bus = LogBus()
        _, mine = bus.subscribe(LineFilter(hook_id="hk_1"))
        _, theirs = bus.subscribe(LineFilter(point="post-change-password"))
        bus.line(line(1))
        bus.line(line(2, hook_id="hk_2"))
        return mine.lines.qsize(), theirs.lines.qsize()

    assert asyncio.run(scenario()) == (1, 0)


def _numbered(n: int) -> Invocation:
    """Record ``n`` of the hook hk_1; the odd ones failed."""
    return invocation(f"inv_{n}", "hk_1", outcome="error" if n % 2 else "ok")


def _records(chunks: list[bytes]) -> list[dict[str, Any]]:
    """The data of each invocation event in the chunks, in order."""
    found = []
    for event in b"".join(chunks).split(b"\n\n"):
        fields = dict(line.split(b": ", 1) for line in event.split(b"\n") if b": " in line)
        if fields.get(b"event") == b"invocation":
            data = json.loads(fields[b"data"])
            assert fields[b"id"] == str(data["seq"]).encode()
            found.append(data)
    return found


@pytest.mark.parametrize("record_filter", [RecordFilter(), RecordFilter(outcome="error")])
def test_a_stream_interleaves_its_own_batches_with_other_processes_records(
    tmp_path: Path, record_filter: RecordFilter
) -> None:
    """Batches this process stored come from memory; those another process stored
    in between (or that piled up) are read from the database; none is lost or doubled."""
    database = _database_with_hook(tmp_path)
    bus = LogBus()
    here, elsewhere = InvocationLog(database), InvocationLog(database)
    here.stored.append(lambda stored: bus.batch_stored(partial(batch_of, stored)))

    async def scenario() -> list[bytes]:
        stream = events(database, bus, record_filter, None, heartbeat=60)
        chunks = [await anext(stream)]
        reading = asyncio.ensure_future(_collect(stream, chunks))
        number = 0
        for writer in [here, here, elsewhere, here, elsewhere, elsewhere, here]:
            for _ in range(3):
                number += 1
                writer.record(_numbered(number))
            await writer.flush()
            await asyncio.sleep(0.05)
        # More batches than a stream may keep waiting: it reads them back instead.
        bus_queue_full = MAX_QUEUED_BATCHES + 5
        for _ in range(bus_queue_full):
            number += 1
            here.record(_numbered(number))
            await here.flush()
        await asyncio.sleep(0.3)
        reading.cancel()
        return chunks

    chunks = asyncio.run(scenario())
    with database.session() as session:
        # Whether sent from memory or read back, an event is the record as the API shows it.
        stored = [view(row) for row in newest(session, record_filter, before=None, limit=1000)]
    database.dispose()
    sent = _records(chunks)
    assert [(data["seq"], data["id"]) for data in sent] == [
        (n, f"inv_{n}")
        for n in range(1, 3 * 7 + MAX_QUEUED_BATCHES + 6)
        if record_filter.outcome is None or n % 2
    ]
    assert sent == stored[::-1]


async def _collect(stream: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for chunk in stream:
        into.append(chunk)


def test_a_stream_ends_when_its_token_expires(tmp_path: Path) -> None:
    database = _database(tmp_path)
    bus = LogBus()

    async def scenario() -> list[bytes]:
        expires_at = time.time() + 0.5
        stream = events(database, bus, RecordFilter(), None, heartbeat=60, expires_at=expires_at)
        return [chunk async for chunk in stream]

    began = time.monotonic()
    chunks = asyncio.run(scenario())
    database.dispose()
    assert 0.4 < time.monotonic() - began < 5
    assert chunks[-1].startswith(b"event: dropped\n")
    assert b"token expired" in chunks[-1]


def test_a_stream_checks_its_access_on_a_timer_not_per_line(tmp_path: Path) -> None:
    """Under a flood of lines, as on a quiet stream, the check runs every
    ``access_every`` seconds, and a refusal ends the stream with why."""
    database = _database(tmp_path)
    bus = LogBus()
    checks: list[float] = []

    async def access() -> tuple[str, str] | None:
        checks.append(time.monotonic())
        return ("grant_revoked", "its client's grant was revoked") if len(checks) == 6 else None

    async def flood() -> None:
        for n in itertools.count():
            bus.line(line(n))
            if n % 50 == 0:
                await asyncio.sleep(0.001)

    async def scenario() -> list[bytes]:
        stream = events(
            database, bus, RecordFilter(), None, heartbeat=60, access=access, access_every=0.1
        )
        chunks = [await anext(stream)]
        flooding = asyncio.ensure_future(flood())
        chunks += [chunk async for chunk in stream]
        flooding.cancel()
        return chunks

    began = time.monotonic()
    chunks = asyncio.run(scenario())
    database.dispose()
    assert 0.55 < time.monotonic() - began < 5
    assert len(checks) == 6
    assert all(later - earlier >= 0.099 for earlier, later in itertools.pairwise(checks))
    sent = b"".join(chunks[:-1])
    assert sent.count(b"event: console\n") > 10 * len(checks)
    assert chunks[-1].endswith(
        b'event: end\ndata: {"reason":"grant_revoked",'
        b'"message":"its client\'s grant was revoked"}\n\n'
    )
    assert bus.subscribers == 0


def test_a_database_error_in_the_access_check_does_not_end_the_stream(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While the database is away the stream goes on (requests are served from the
    cache meanwhile), says so in the log once, and is checked again at the next tick."""
    database = _database(tmp_path)
    bus = LogBus()
    failed: list[float] = []
    published: list[float] = []

    async def access() -> tuple[str, str] | None:
        if len(failed) < 3:
            failed.append(time.monotonic())
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("the database is away"))
        if len(published) < 6:
            return None
        return "admin_deleted", "its admin no longer exists"

    async def scenario() -> list[bytes]:
        stream = events(
            database, bus, RecordFilter(), None, heartbeat=60, access=access, access_every=0.05
        )
        chunks = [await anext(stream)]
        reading = asyncio.ensure_future(_collect(stream, chunks))
        for n in range(6):
            await asyncio.sleep(0.05)
            bus.line(line(n))
            published.append(time.monotonic())
        await asyncio.wait_for(reading, 5)  # it ends at the first check that refuses
        return chunks

    with caplog.at_level(logging.WARNING, logger="authhooks.logs.stream"):
        chunks = asyncio.run(scenario())
    database.dispose()
    assert len(failed) == 3
    assert published[-1] > failed[-1]  # lines went on after the failures
    assert b"".join(chunks).count(b"event: console\n") == 6
    assert chunks[-1].startswith(b"event: end\n")
    assert b"admin_deleted" in chunks[-1]
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 1, warned  # once while it lasts, not at every check
    assert "ConnectionRefusedError" in warned[0]
    assert bus.subscribers == 0


ODD_TEXT = 'said "hi"\\ then\nnext line\r\tàé ✓ \u2028 \u2029 \x85 \x00 end'
# Workers cannot send one (runtime.protocol refuses it), but a stream must not
# choke on one in a console line, whatever its source: stored, it is an escape.
LONE_SURROGATE = "half a pair: \ud800"
# An error as the flow stores it (flows/engine.py): PostgreSQL's text refuses NUL.
STORED_ERROR = ODD_TEXT.replace("\x00", "\ufffd")


def _odd(n: int) -> Invocation:
    """A record whose text needs every kind of escaping; every tenth starts on a
    whole second."""
    started = utcnow().replace(microsecond=0 if n % 10 == 0 else 123456)
    return Invocation(
        id=f"inv_{n}",
        hook_id="hk_1",
        version=2,
        point="credentials-exchange",
        started_at=started,
        duration_ms=0.1 + n,
        outcome="error",
        error=STORED_ERROR,
        console=[
            {"at": 1.5, "stream": "stdout", "text": ODD_TEXT},
            {"at": 1.75, "stream": "stderr", "text": LONE_SURROGATE},
        ],
        truncated=n % 2 == 0,
    )


@contextmanager
def _database_on(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A database holding the hook hk_1: SQLite, or a fresh PostgreSQL schema."""
    sqlite = nullcontext(f"sqlite:///{tmp_path / 'logs.db'}")
    with postgres_schema() if backend == "postgresql" else sqlite as url:
        database = Database(url)
        database.migrate()
        with database.session() as session:
            session.add(hook_row("hk_1"))
        try:
            yield database
        finally:
            database.dispose()


def test_events_sent_from_memory_and_read_back_are_the_records_the_api_shows(
    tmp_path: Path, backend: str
) -> None:
    """Odd text, whole-second times, and more records stored elsewhere than one
    read fetches: the stream's events, from either source, are exactly the records."""
    with _database_on(backend, tmp_path) as database:
        _check_events_are_the_records(database)


def _check_events_are_the_records(database: Database) -> None:
    bus = LogBus()
    here, elsewhere = InvocationLog(database), InvocationLog(database)
    here.stored.append(lambda stored: bus.batch_stored(partial(batch_of, stored)))
    many = 2 * _BATCH + 7

    async def scenario() -> list[bytes]:
        stream = events(database, bus, RecordFilter(), None, heartbeat=60)
        chunks = [await anext(stream)]
        reading = asyncio.ensure_future(_collect(stream, chunks))
        for n in range(1, many + 1):
            elsewhere.record(_odd(n))
        await elsewhere.flush()
        for n in range(many + 1, many + 11):
            here.record(_odd(n))
        await here.flush()
        await asyncio.sleep(0.5)
        reading.cancel()
        return chunks

    chunks = asyncio.run(scenario())
    with database.session() as session:
        stored = [view(row) for row in newest(session, RecordFilter(), before=None, limit=5000)]
    sent = _records(chunks)
    assert [data["seq"] for data in sent] == list(range(1, many + 11))
    assert sent == stored[::-1]
    assert sent[-1]["error"] == STORED_ERROR
    assert [line["text"] for line in sent[-1]["console"]] == [ODD_TEXT, LONE_SURROGATE]
    assert re.fullmatch(r"[-\d]+T[:\d]+Z", sent[9]["started_at"])  # a whole second: no fraction
    # One line per field for any reader, even one that splits at NEL, LS and PS
    # as str.splitlines() does (httpx's iter_lines, and so the CLI).
    text = b"".join(chunks).decode()
    assert text.splitlines() == text.replace("\r\n", "\n").split("\n")[:-1]


def test_a_page_read_back_stops_at_its_byte_budget(tmp_path: Path) -> None:
    """Records with megabytes of console lines each: read back a few at a time,
    in several pages, none lost."""
    database = _database_with_hook(tmp_path)
    bus = LogBus()
    elsewhere = InvocationLog(database)
    lines = [{"at": 1.0, "stream": "stdout", "text": "\x01" * 2000}] * 200  # 2.4 MB stored
    count = 2 + _PAGE_BYTES // (2000 * 6 * 200)  # one past a full page

    async def scenario() -> list[bytes]:
        stream = events(database, bus, RecordFilter(), None, heartbeat=60)
        chunks = [await anext(stream)]
        for n in range(1, count + 1):
            record = invocation(f"inv_{n}", "hk_1")
            elsewhere.record(dataclasses.replace(record, console=lines))
        await elsewhere.flush()
        bus.records_stored()  # as a relay or heartbeat would tell it
        reading = asyncio.ensure_future(_collect(stream, chunks))
        await asyncio.sleep(3)
        reading.cancel()
        return chunks

    chunks = asyncio.run(scenario())
    database.dispose()
    assert [data["id"] for data in _records(chunks)] == [f"inv_{n}" for n in range(1, count + 1)]
    pages = [chunk for chunk in chunks if b"event: invocation" in chunk]
    assert len(pages) >= 2
    assert all(len(page) < _PAGE_BYTES + 2000 * 6 * 200 + 1024 for page in pages)


@pytest.mark.parametrize(
    "stored",
    [
        '[{"at": 1.0, "stream": "stdout", "text": "plain"}]',
        '[{"at": 1.0, "stream": "stdout", "text": "caf\u00e9 \u2713"}]',
        # As another writer could have left it: pretty-printed, or with raw separators
        # (PostgreSQL's jsonb, say, writes U+2028 as it is).
        '[\n  {"at": 1.0,\r\n "text": "a"}\n]',
        '[{"at": 1.0, "text": "line\u2028separator \u2029 next\u0085line"}]',
    ],
)
def test_stored_console_lines_go_out_on_one_line(stored: str) -> None:
    """A record's console lines, as its row holds them, are spliced into one data
    line that no reader splits, and mean what was stored."""
    sent = _stored_console(stored)
    assert json.loads(sent) == json.loads(stored)
    assert len(sent.decode().splitlines()) == 1
    if not any(mark in stored for mark in "\n\r\u2028\u2029\u0085"):
        assert sent == stored.encode()  # ours: passed on as it is
