"""Stored invocation records: the order they were stored in (``seq``), queries
for the logs API, the ordered reads that streams resume from, and retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Result,
    Select,
    Text,
    bindparam,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from authhooks.errors import NotFound
from authhooks.storage import models
from authhooks.storage.models import utcnow


@dataclass(frozen=True)
class Invocation:
    """The record of one hook run, as stored and shown in the hook's logs."""

    id: str
    hook_id: str
    version: int
    point: str
    started_at: datetime
    duration_ms: float
    outcome: str  # "ok", or the failure kind
    error: str | None
    console: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False  # console lines were dropped past the cap
    test: bool = False  # a runner call, not traffic
    captured: bytes | None = None  # the sealed event, when the hook captures events


@dataclass(frozen=True)
class RecordFilter:
    hook_id: str | None = None
    point: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        table = models.HookInvocation
        if self.hook_id is not None:
            query = query.where(table.hook_id == self.hook_id)
        if self.point is not None:
            query = query.where(table.point == self.point)
        if self.outcome is not None:
            query = query.where(table.outcome == self.outcome)
        if self.since is not None:
            query = query.where(table.started_at >= self.since)
        if self.until is not None:
            query = query.where(table.started_at < self.until)
        return query

    def matches(self, hook_id: str, point: str, outcome: str, started_at: datetime) -> bool:
        """What ``apply`` selects, for a record in memory."""
        return (
            (self.hook_id is None or hook_id == self.hook_id)
            and (self.point is None or point == self.point)
            and (self.outcome is None or outcome == self.outcome)
            and (self.since is None or started_at >= self.since)
            and (self.until is None or started_at < self.until)
        )


class RecordHead(Protocol):
    """A record's fields but its console lines: a stored record, a row, or one in
    memory that was just stored (``Invocation``)."""

    @property
    def id(self) -> str: ...

    @property
    def hook_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def point(self) -> str: ...

    @property
    def started_at(self) -> datetime: ...

    @property
    def duration_ms(self) -> float: ...

    @property
    def outcome(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    @property
    def truncated(self) -> bool: ...

    @property
    def test(self) -> bool: ...


class RecordLike(RecordHead, Protocol):
    @property
    def console(self) -> list[dict[str, Any]]: ...


def newest(
    session: Session, record_filter: RecordFilter, *, before: int | None, limit: int
) -> Sequence[models.HookInvocation]:
    """A page of records, newest first; ``before`` is the previous page's last ``seq``."""
    query = record_filter.apply(select(models.HookInvocation))
    if before is not None:
        query = query.where(models.HookInvocation.seq < before)
    return session.scalars(query.order_by(models.HookInvocation.seq.desc()).limit(limit)).all()


_TABLE = models.HookInvocation.__table__.c
# A streamed row: the arguments of ``head_of``, then the console lines as their JSON text.
STREAMED_COLUMNS: tuple[ColumnElement[Any], ...] = (
    _TABLE.id,
    _TABLE.seq,
    _TABLE.hook_id,
    _TABLE.version,
    _TABLE.point,
    _TABLE.started_at,
    _TABLE.duration_ms,
    _TABLE.outcome,
    _TABLE.error,
    _TABLE.truncated,
    _TABLE.test,
    cast(_TABLE.console, Text).label("console_json"),
)
_FETCH = 50
_POSITION = select(models.LogSequence.value).where(models.LogSequence.id == 1)


class StreamReads:
    """The reads a log stream repeats, for its one filter, built once: building a
    statement costs more than running it on the few records a stream reads at a
    time. They run on a plain connection and give plain rows: a stream passes
    them on as they are, without objects for them."""

    def __init__(self, record_filter: RecordFilter) -> None:
        table = models.HookInvocation
        self._after = (
            record_filter.apply(select(*STREAMED_COLUMNS))
            .where(table.seq > bindparam("after"), table.seq <= bindparam("upto"))
            .order_by(table.seq)
            .limit(bindparam("limit"))
            # A few rows at a time (a server-side cursor on PostgreSQL), so that a
            # reader that stops early never holds them all.
            .execution_options(yield_per=_FETCH)
        )
        self._count = record_filter.apply(select(func.count()).select_from(table)).where(
            table.seq > bindparam("after")
        )

    def after(
        self, connection: Connection, seq: int, upto: int, limit: int
    ) -> Result[*tuple[Any, ...]]:
        """Records numbered after ``seq`` up to ``upto``, oldest first, as rows of
        ``STREAMED_COLUMNS``; the caller closes the result."""
        return connection.execute(self._after, {"after": seq, "upto": upto, "limit": limit})

    def count_after(self, connection: Connection, seq: int) -> int:
        return int(connection.execute(self._count, {"after": seq}).scalar() or 0)


def position(connection: Connection) -> int:
    """The last number handed out and committed. Batches commit in number order
    (see ``logs/writer.py``), so every record up to it is already readable."""
    return int(connection.execute(_POSITION).scalar() or 0)


def get(session: Session, invocation_id: str) -> models.HookInvocation:
    record = session.get(models.HookInvocation, invocation_id)
    if record is None:
        raise NotFound(f"no log record with id {invocation_id!r}")
    return record


def view(record: models.HookInvocation) -> dict[str, Any]:
    """A record as the logs API and streams show it."""
    return view_of(record, record.seq)


def view_of(record: RecordLike, seq: int) -> dict[str, Any]:
    return {**head(record, seq), "console": record.console}


def head(record: RecordHead, seq: int) -> dict[str, Any]:
    """A record's view but its console lines."""
    return head_of(
        record.id,
        seq,
        record.hook_id,
        record.version,
        record.point,
        record.started_at,
        record.duration_ms,
        record.outcome,
        record.error,
        record.truncated,
        record.test,
    )


def head_of(
    record_id: str,
    seq: int,
    hook_id: str,
    version: int,
    point: str,
    started_at: datetime,
    duration_ms: float,
    outcome: str,
    error: str | None,
    truncated: bool,
    test: bool,
) -> dict[str, Any]:
    """``head`` from its values, in the order of ``STREAMED_COLUMNS``."""
    return {
        "id": record_id,
        "seq": seq,
        "hook_id": hook_id,
        "version": version,
        "point": point,
        "started_at": started_at.isoformat().replace("+00:00", "Z"),
        "duration_ms": duration_ms,
        "outcome": outcome,
        "error": error,
        "truncated": truncated,
        "test": test,
    }


def prune_invocations(session: Session, keep_per_hook: int, max_age: timedelta) -> None:
    """Retention: drop records older than ``max_age`` and beyond the newest ``keep_per_hook``,
    and captured events past their expiry."""
    session.execute(
        update(models.HookInvocation)
        .where(models.HookInvocation.capture_expires_at < utcnow())
        .values(captured_event=None, capture_expires_at=None)
    )
    session.execute(
        delete(models.HookInvocation).where(models.HookInvocation.started_at < utcnow() - max_age)
    )
    for hook_id, _ in session.execute(
        select(models.HookInvocation.hook_id, func.count())
        .group_by(models.HookInvocation.hook_id)
        .having(func.count() > keep_per_hook)
    ):
        cutoff: datetime | None = session.scalar(
            select(models.HookInvocation.started_at)
            .where(models.HookInvocation.hook_id == hook_id)
            .order_by(models.HookInvocation.started_at.desc())
            .offset(keep_per_hook)
            .limit(1)
        )
        if cutoff is not None:
            session.execute(
                delete(models.HookInvocation).where(
                    models.HookInvocation.hook_id == hook_id,
                    models.HookInvocation.started_at <= cutoff,
                )
            )
