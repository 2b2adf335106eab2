"""Stored invocation records: the order they were stored in (``seq``), queries
for the logs API, and the ordered reads that streams resume from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Result, Select, Text, cast, func, select
from sqlalchemy.orm import Session

from authhooks.errors import NotFound
from authhooks.storage import models


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
    memory that was just stored (``points.flow.Invocation``)."""

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


def after(
    session: Session, record_filter: RecordFilter, seq: int, upto: int, limit: int
) -> Result[Any]:
    """Records numbered after ``seq`` up to ``upto``, oldest first: what a stream sends
    next. Plain rows, with the console lines as their JSON text (``console_json``):
    a stream passes them on as they are, without building objects for them.
    Fetched a few at a time (a server-side cursor on PostgreSQL), so that a
    reader that stops early never holds them all."""
    table = models.HookInvocation
    columns = [column for column in table.__table__.columns if column.name not in _NOT_STREAMED]
    query = select(*columns, cast(table.console, Text).label("console_json"))
    query = record_filter.apply(query).where(table.seq > seq, table.seq <= upto)
    # On the connection: rows of plain columns need nothing of the ORM's loading.
    return session.connection().execute(
        query.order_by(table.seq).limit(limit).execution_options(yield_per=_FETCH)
    )


_NOT_STREAMED = {"console", "captured_event", "capture_expires_at"}
_FETCH = 50


def position(session: Session) -> int:
    """The last number handed out and committed. Batches commit in number order
    (see ``hooks.invocations``), so every record up to it is already readable."""
    value = session.scalar(select(models.LogSequence.value).where(models.LogSequence.id == 1))
    return int(value or 0)


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
    return {
        "id": record.id,
        "seq": seq,
        "hook_id": record.hook_id,
        "version": record.version,
        "point": record.point,
        "started_at": record.started_at.isoformat().replace("+00:00", "Z"),
        "duration_ms": record.duration_ms,
        "outcome": record.outcome,
        "error": record.error,
        "truncated": record.truncated,
        "test": record.test,
    }


def count_after(session: Session, record_filter: RecordFilter, seq: int) -> int:
    query = record_filter.apply(select(func.count()).select_from(models.HookInvocation))
    return int(session.scalar(query.where(models.HookInvocation.seq > seq)) or 0)
