"""The in-process log bus: live console lines, and "records were stored" wake-ups.

Publishing never waits: each subscriber has a bounded queue, and one that
falls behind is dropped (its stream ends with a final event) rather than
slowing the hook path. With no subscriber in this process, publishing is a
dictionary check — plus, on PostgreSQL, appending the line to the next
batch ``logs.notify`` sends the other processes.
Records this process has just stored come here too, each encoded once as its
stream event, so that a stream forwards them without reading them back. A
stream reads the database (``logs.records``) only for what the bus cannot
vouch for: records stored by other processes, a gap before a batch, a
subscriber that let batches pile up, or a resume from ``Last-Event-ID``. That
is what makes resuming lossless.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authhooks.observability.metrics import LOG_SUBSCRIBERS

MAX_QUEUED_LINES = 2000
# Batches a stream may leave waiting before it is sent to read the database instead.
MAX_QUEUED_BATCHES = 100


@dataclass(frozen=True)
class StoredRecord:
    """One record of a batch: what filters look at, and its stream event, encoded once."""

    hook_id: str
    point: str
    outcome: str
    started_at: datetime
    event: bytes


@dataclass(frozen=True)
class RecordBatch:
    """Records stored by one transaction of this process: every ``seq`` from ``first``
    to ``last`` is in it, since a batch takes a contiguous run of numbers."""

    first: int
    last: int
    records: tuple[StoredRecord, ...]


@dataclass(frozen=True)
class LineFilter:
    hook_id: str | None = None
    point: str | None = None

    def matches(self, line: dict[str, Any]) -> bool:
        return (self.hook_id is None or line.get("hook_id") == self.hook_id) and (
            self.point is None or line.get("point") == self.point
        )


@dataclass(eq=False)
class Subscription:
    """One stream's view of the bus: its console lines and a wake-up for new records."""

    filter: LineFilter
    lines: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(MAX_QUEUED_LINES)
    )
    batches: deque[RecordBatch] = field(default_factory=deque)
    # Set when records exist that the batches do not carry: the stream must read them.
    records_stored: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: str | None = None  # why the bus let go of it
    closed: bool = False  # the server is stopping: the stream ends, its client reconnects
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class LogBus:
    def __init__(self) -> None:
        self._subscriptions: dict[int, Subscription] = {}
        self._ids = itertools.count()
        self.closed = False
        # Forwarders to other processes (logs.notify, on PostgreSQL), called for every line.
        self.forward: Callable[[dict[str, Any]], None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, line_filter: LineFilter) -> tuple[int, Subscription]:
        key = next(self._ids)
        subscription = Subscription(line_filter, closed=self.closed)
        self._subscriptions[key] = subscription
        LOG_SUBSCRIBERS.set(len(self._subscriptions))
        return key, subscription

    def close(self) -> None:
        """The server is stopping: end every stream, so that it does not wait on them."""
        self.closed = True
        for subscription in self._subscriptions.values():
            subscription.closed = True
            subscription.wake.set()

    def unsubscribe(self, key: int) -> None:
        self._subscriptions.pop(key, None)
        LOG_SUBSCRIBERS.set(len(self._subscriptions))

    def line(self, line: dict[str, Any], *, local: bool = True) -> None:
        """A console line written just now (already redacted) by a running hook."""
        if local and self.forward is not None:
            self.forward(line)
        for key, subscription in list(self._subscriptions.items()):
            if not subscription.filter.matches(line):
                continue
            try:
                subscription.lines.put_nowait(line)
            except asyncio.QueueFull:
                self._drop(key, subscription, "the subscriber fell behind the console lines")
                continue
            subscription.wake.set()

    def records_stored(self) -> None:
        """New records are in the database (stored by another process, or not carried)."""
        for subscription in self._subscriptions.values():
            subscription.records_stored.set()
            subscription.wake.set()

    def batch_stored(self, batch: Callable[[], RecordBatch]) -> None:
        """This process stored a batch; ``batch`` builds it, only if some stream listens."""
        if not self._subscriptions:
            return
        built = batch()
        for subscription in self._subscriptions.values():
            if len(subscription.batches) >= MAX_QUEUED_BATCHES:
                # Nothing is lost: the stream reads these records from the database.
                subscription.batches.clear()
                subscription.records_stored.set()
            else:
                subscription.batches.append(built)
            subscription.wake.set()

    def _drop(self, key: int, subscription: Subscription, reason: str) -> None:
        subscription.dropped = reason
        subscription.wake.set()
        self._subscriptions.pop(key, None)
