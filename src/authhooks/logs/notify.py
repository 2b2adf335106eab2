"""Carries the log bus between server processes through PostgreSQL LISTEN/NOTIFY.

Each process LISTENs on its deployment's channel (named after the database and
schema, so that deployments sharing a database never hear each other). Console
lines written by local hooks are batched (every 50 ms at most, each NOTIFY under
PostgreSQL's 8,000-byte payload limit) and sent; a process ignores its own
notifications. After records are stored, a short "records" notification wakes
the other processes' streams, which then read the records from the database. On
SQLite nothing is carried: one process sees its own lines, and streams also poll
for records.

Any role that can connect to the database may LISTEN and NOTIFY on any channel,
so every payload is sealed with AES-GCM under a key derived from the master key,
bound to the channel: another role reads nothing of the hooks' output, and what
it sends, or sends again, is dropped. A payload carries the time it was sent,
and one sent more than ``REPLAY_WINDOW`` seconds away from now is refused, by
any process, however recently started; within the window, each sender numbers
its payloads, and one numbered no higher than the last heard from its sender
is a replay. A sender's number is kept only while its last payload is within
the window: anything it sent before is refused by its time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from authhooks.logs.bus import LogBus
from authhooks.masterkey import SEALED_OVERHEAD, MasterKey, MasterKeyError

log = logging.getLogger(__name__)

# What the key that seals payloads is derived for, from the master key.
LOG_RELAY_PURPOSE = "log-relay"
# Seconds a payload is accepted after it was sent (and before, for a sender whose
# clock is ahead): long enough for a notification to be read on a busy host,
# short enough that a captured one is soon worthless. Hosts' clocks must agree
# within it, as NTP keeps them.
REPLAY_WINDOW = 5.0
_MAX_PAYLOAD = 7900
# What fits in a payload once sealed and in base64 (NOTIFY carries text).
_MAX_PLAINTEXT = _MAX_PAYLOAD // 4 * 3 - SEALED_OVERHEAD
# Room for a message's own fields around its lines (sender, number, time, flag).
_HEAD_ROOM = 120
# The senders whose last payload number is kept: one per server process started.
_MAX_SENDERS = 1000
_FLUSH_EVERY = 0.05
_MAX_BUFFERED = 5000
_RECONNECT_AFTER = 1.0
# A listener that hears nothing for this long checks that its connection still works.
_KEEPALIVE = 30.0
_LINE_FIELDS = {"invocation_id": str, "hook_id": str, "point": str, "stream": str, "text": str}


class PgRelay:
    def __init__(
        self,
        database_url: str,
        bus: LogBus,
        master_key: MasterKey,
        *,
        window: float = REPLAY_WINDOW,
    ) -> None:
        self._conninfo = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._bus = bus
        self._origin = secrets.token_hex(6)
        self._sealer = MasterKey(master_key.derive(LOG_RELAY_PURPOSE))
        self._window = window
        self._numbers = itertools.count(1)
        # sender: the number of its last payload and when that was sent, oldest heard first
        self._heard: dict[str, tuple[int, float]] = {}
        self._refused = 0  # payloads that did not open, and replays
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
            assert where is not None
            self._channel = channel(*where)
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

    def _seal(self, plaintext: str) -> str:
        assert self._channel is not None  # named on connecting, before anything is sent
        return base64.b64encode(
            self._sealer.encrypt(plaintext.encode(), self._channel.encode())
        ).decode()

    def _sealed(self, lines: list[dict[str, Any]], records: bool) -> list[str]:
        """The payloads that carry ``lines`` (and the records flag), numbered and sealed now."""
        plaintexts = _payloads(self._origin, self._numbers, time.time(), lines, records)
        return [self._seal(plaintext) for plaintext in plaintexts]

    def _open(self, payload: str) -> dict[str, Any] | None:
        """The message a payload carries; None for one not sealed by a server process
        of this deployment, sent outside the window, or heard before."""
        assert self._channel is not None
        try:
            plaintext = self._sealer.decrypt(
                base64.b64decode(payload, validate=True), self._channel.encode()
            )
        except (binascii.Error, ValueError, MasterKeyError):
            self._refuse("does not open")
            return None
        message: dict[str, Any] = json.loads(plaintext)
        origin, number, sent_at = message["o"], message["n"], message.get("t")
        now = time.time()
        if not isinstance(sent_at, float | int) or abs(now - sent_at) > self._window:
            self._refuse("was not sent within the replay window")
            return None
        last = self._heard.pop(origin, None)
        if last is not None and number <= last[0]:
            self._heard[origin] = last
            self._refuse("is a replay")
            return None
        self._heard[origin] = (number, sent_at)  # now the sender heard from last
        self._forget(now)
        return message

    def _forget(self, now: float) -> None:
        """Drop the numbers no longer needed: a sender's whose last payload is older
        than the window (all it sent before is refused by its time), and past
        ``_MAX_SENDERS``, the one heard from longest ago."""
        while self._heard:
            oldest = next(iter(self._heard))
            if now - self._heard[oldest][1] <= self._window and len(self._heard) <= _MAX_SENDERS:
                return
            del self._heard[oldest]

    def _refuse(self, why: str) -> None:
        self._refused += 1
        log.debug("log relay: dropped a notification that %s (%d so far)", why, self._refused)

    def _received(self, payload: str) -> None:
        message = self._open(payload)
        if message is None or message["o"] == self._origin:
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
                for payload in self._sealed(lines, records):
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


def channel(database: str, schema: str) -> str:
    """The NOTIFY channel of the deployment in ``database`` and ``schema``."""
    digest = hashlib.sha256(f"{(database, schema)}".encode()).hexdigest()[:24]
    return f"authhooks_logs_{digest}"


def _payloads(
    origin: str,
    numbers: Iterator[int],
    sent_at: float,
    lines: list[dict[str, Any]],
    records: bool,
) -> list[str]:
    """The messages for ``lines`` (and the records flag), each under the size limit once
    sealed, and each numbered and stamped with when it is sent."""
    payloads: list[str] = []
    batch: list[str] = []
    size = 0
    room = _MAX_PLAINTEXT - _HEAD_ROOM
    for line in lines:
        encoded = json.dumps(line, separators=(",", ":"), ensure_ascii=False)
        length = len(encoded.encode())
        if length > room:
            continue  # a line this long reaches other processes in its record only
        if size + length > room and batch:
            payloads.append(_payload(origin, next(numbers), sent_at, batch, False))
            batch, size = [], 0
        batch.append(encoded)
        size += length + 1
    if batch or records:
        payloads.append(_payload(origin, next(numbers), sent_at, batch, records))
    return payloads


def _payload(
    origin: str, number: int, sent_at: float, encoded_lines: list[str], records: bool
) -> str:
    flag = "true" if records else "false"
    lines = ",".join(encoded_lines)
    return f'{{"o":{json.dumps(origin)},"n":{number},"t":{sent_at!r},"r":{flag},"l":[{lines}]}}'
