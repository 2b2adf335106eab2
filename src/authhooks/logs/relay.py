"""Carries the log bus between server processes through PostgreSQL LISTEN/NOTIFY.

Each process LISTENs on its deployment's channel (named after the database and
schema, so that deployments sharing a database never hear each other; any
role that can connect could still NOTIFY it, and what arrives is checked for
shape only — the database is trusted). Console lines written by local hooks are
batched (every 50 ms at most, each NOTIFY under PostgreSQL's 8,000-byte payload
limit) and sent; a process ignores its own notifications. After records are
stored, a short "records" notification wakes the other processes' streams,
which then read the records from the database. On SQLite there is no relay:
one process sees its own lines, and streams also poll for records.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from authhooks.logs.bus import LogBus

log = logging.getLogger(__name__)

_MAX_PAYLOAD = 7900
_FLUSH_EVERY = 0.05
_MAX_BUFFERED = 5000
_RECONNECT_AFTER = 1.0
# A listener that hears nothing for this long checks that its connection still works.
_KEEPALIVE = 30.0
_LINE_FIELDS = {"invocation_id": str, "hook_id": str, "point": str, "stream": str, "text": str}


class PgRelay:
    def __init__(self, database_url: str, bus: LogBus) -> None:
        self._conninfo = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._bus = bus
        self._origin = secrets.token_hex(6)
        self._channel: str | None = None
        self._lines: list[dict[str, Any]] = []
        self._records = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._bus.forward = self._queue_line
        self._tasks = [
            asyncio.create_task(self._listen_forever()),
            asyncio.create_task(self._send_forever()),
        ]

    async def close(self) -> None:
        self._bus.forward = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def records_stored(self) -> None:
        self._records = True
        self._wake.set()

    def _queue_line(self, line: dict[str, Any]) -> None:
        if len(self._lines) < _MAX_BUFFERED:  # a flood is cut here; the records keep it all
            self._lines.append(line)
            self._wake.set()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        if self._channel is None:
            # One channel per deployment (database and schema): LISTEN/NOTIFY ignore
            # the search path, and deployments sharing a database must not hear each other.
            cursor = await connection.execute("SELECT current_database(), current_schema()")
            where = await cursor.fetchone()
            digest = hashlib.sha256(f"{where}".encode()).hexdigest()[:24]
            self._channel = f"authhooks_logs_{digest}"
        return connection

    async def _listen_forever(self) -> None:
        failing = False
        while True:
            try:
                async with await self._connect() as connection:
                    await connection.execute(f"LISTEN {self._channel}")
                    if failing:
                        log.warning("log relay: listening again")
                    failing = False
                    # Whatever was stored while not listening: let streams look.
                    self._bus.records_stored()
                    while True:
                        heard = False
                        async for notification in connection.notifies(timeout=_KEEPALIVE):
                            heard = True
                            self._received(notification.payload)
                        if not heard:
                            await connection.execute("SELECT 1")  # a dead link raises here
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database went away: listen again shortly
                if not failing:
                    log.warning("log relay: listening failed (%s); retrying", type(error).__name__)
                failing = True
                await asyncio.sleep(_RECONNECT_AFTER)

    def _received(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("o") == self._origin:
            return
        lines = message.get("l")
        for line in lines if isinstance(lines, list) else ():
            if isinstance(line, dict) and all(
                isinstance(line.get(name), kind) for name, kind in _LINE_FIELDS.items()
            ):
                self._bus.line(line, local=False)
        # After the lines: they were written before the records the flag announces.
        if message.get("r") is True:
            self._bus.records_stored()

    async def _send_forever(self) -> None:
        connection: psycopg.AsyncConnection[Any] | None = None
        failing = False
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(_FLUSH_EVERY)  # let a burst of lines gather
            lines, self._lines = self._lines, []
            records, self._records = self._records, False
            try:
                if connection is None or connection.closed:
                    connection = await self._connect()
                for payload in _payloads(self._origin, lines, records):
                    await connection.execute("SELECT pg_notify(%s, %s)", (self._channel, payload))
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as error:  # lost lines stay in the records
                if not failing:
                    log.warning("log relay: sending failed (%s)", type(error).__name__)
                failing = True
                if records:  # the other processes must still look for the records
                    self._records = True
                    self._wake.set()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                connection = None
                await asyncio.sleep(_RECONNECT_AFTER)


def _payloads(origin: str, lines: list[dict[str, Any]], records: bool) -> list[str]:
    """NOTIFY payloads for ``lines`` (and the records flag), each under the size limit."""
    payloads: list[str] = []
    batch: list[str] = []
    size = 0
    for line in lines:
        encoded = json.dumps(line, separators=(",", ":"), ensure_ascii=False)
        length = len(encoded.encode())
        if length > _MAX_PAYLOAD - 100:
            continue  # a line this long reaches other processes in its record only
        if size + length > _MAX_PAYLOAD - 100 and batch:
            payloads.append(_payload(origin, batch, False))
            batch, size = [], 0
        batch.append(encoded)
        size += length + 1
    if batch or records:
        payloads.append(_payload(origin, batch, records))
    return payloads


def _payload(origin: str, encoded_lines: list[str], records: bool) -> str:
    flag = "true" if records else "false"
    return f'{{"o":{json.dumps(origin)},"r":{flag},"l":[{",".join(encoded_lines)}]}}'
