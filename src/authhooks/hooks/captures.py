"""Captured events: what a blocking point's hook received, kept encrypted for a
while so that the runner can replay it (opt-in per hook: ``capture_events``).

An event is the point's input — client, user, scope, request — never the
hook's secrets (added only inside the call) and never a password (no point's
event holds one). Each is sealed with AES-GCM under the master key, bound to
its invocation id, and dropped at expiry by the records' retention.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from authhooks.errors import InvalidInput
from authhooks.logs import records
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.models import utcnow

# (invocation id, event) -> the sealed event, kept with its record
Sealer = Callable[[str, Mapping[str, Any]], bytes]


def sealer(master_key: MasterKey) -> Sealer:
    def seal(invocation_id: str, event: Mapping[str, Any]) -> bytes:
        plain = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        return master_key.encrypt(plain, _context(invocation_id))

    return seal


def captured_event(
    session: Session, master_key: MasterKey, invocation_id: str
) -> tuple[models.HookInvocation, dict[str, Any]]:
    """The record and its event; NotFound, or InvalidInput when nothing was kept."""
    record = records.get(session, invocation_id)
    expires = record.capture_expires_at
    if record.captured_event is None or expires is None or expires <= utcnow():
        raise InvalidInput(
            f"invocation {invocation_id!r} has no captured event: the hook did not capture "
            "events then, the point is asynchronous, or the capture expired"
        )
    event: dict[str, Any] = json.loads(
        master_key.decrypt(record.captured_event, _context(invocation_id))
    )
    return record, event


def reseal(session: Session, old: MasterKey, new: MasterKey) -> int:
    """Seal every captured event with ``new`` instead of ``old`` (master key rotation)."""
    count = 0
    table = models.HookInvocation
    kept = session.execute(
        select(table.id, table.captured_event).where(table.captured_event.is_not(None))
    ).all()
    for invocation_id, sealed in kept:
        assert sealed is not None  # selected so
        context = _context(invocation_id)
        session.execute(
            update(table)
            .where(table.id == invocation_id)
            .values(captured_event=new.encrypt(old.decrypt(sealed, context), context))
        )
        count += 1
    return count


def _context(invocation_id: str) -> bytes:
    return b"captured-event:" + invocation_id.encode()
