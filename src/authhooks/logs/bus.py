"""The in-process log bus: live console lines, and "records were stored" wake-ups.

Publishing never waits: each subscriber has a bounded queue, and one that
falls behind is dropped (its stream ends with a final event) rather than
slowing the hook path. With no subscriber in this process, publishing is a
dictionary check — plus, on PostgreSQL, appending the line to the relay's
next batch for the other processes.
Records themselves are not carried here: subscribers read them from the
database in order (``logs.records``), which is what makes resuming lossless.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_QUEUED_LINES = 2000


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
    records_stored: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: str | None = None  # why the bus let go of it
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class LogBus:
    def __init__(self) -> None:
        self._subscriptions: dict[int, Subscription] = {}
        self._ids = itertools.count()
        # Forwarders to other processes (the PostgreSQL relay), called for every line.
        self.forward: Callable[[dict[str, Any]], None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, line_filter: LineFilter) -> tuple[int, Subscription]:
        key = next(self._ids)
        subscription = Subscription(line_filter)
        self._subscriptions[key] = subscription
        return key, subscription

    def unsubscribe(self, key: int) -> None:
        self._subscriptions.pop(key, None)

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
        """New records are in the database (stored by any process)."""
        for subscription in self._subscriptions.values():
            subscription.records_stored.set()
            subscription.wake.set()

    def _drop(self, key: int, subscription: Subscription, reason: str) -> None:
        subscription.dropped = reason
        subscription.wake.set()
        self._subscriptions.pop(key, None)
