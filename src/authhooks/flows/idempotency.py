"""Idempotency keys of point invocations, as payment APIs keep them: the first
request with a key (per caller and point) is answered and its answer kept for a
day; a retry with the same key and the same event gets that answer again
without running anything; the same key with another event is refused, as is a
retry while the first is still being answered.

A request that fails before hooks decided anything (its event refused, a hook
that crashed or timed out) keeps nothing: retrying it is what the key is for.
A request whose process died midway leaves its claim, which a retry takes over
once it is older than any invocation can run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authhooks.errors import Conflict, DomainError, InvalidInput
from authhooks.storage import models
from authhooks.storage.models import utcnow

KEPT_FOR = timedelta(hours=24)
# Longer than a blocking flow may run (its hooks' timeouts, each at most 20 s, and
# max_hooks of them); a claim older than this was left by a process that died.
ABANDONED_AFTER = timedelta(minutes=40)
MAX_KEY_LENGTH = 255


class KeyInUse(Conflict):
    """Another request with the same key is being answered."""

    code = "idempotency_key_in_use"


class KeyReused(DomainError):
    """The key came before with another event."""

    status = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Answer:
    """What an invocation answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """A key held by the request being answered."""

    client_id: str
    point: str
    key: str


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a UUID, say)"
        )
    return key


def fingerprint(event: Any) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(session: Session, wanted: Claim, request_hash: str) -> Answer | None:
    """Hold ``wanted`` for this request (None: go on and answer it), or the answer a
    request with the same key and event got (replay it); KeyReused or KeyInUse."""
    now = utcnow()
    session.execute(delete(models.IdempotencyKey).where(models.IdempotencyKey.expires_at <= now))
    row = session.get(
        models.IdempotencyKey, (wanted.client_id, wanted.point, wanted.key), with_for_update=True
    )
    if row is not None:
        if row.request_hash != request_hash:
            raise KeyReused(
                "this Idempotency-Key was used with another event: use a new key for a new "
                "invocation"
            )
        if row.status_code is not None and row.response is not None:
            return Answer(row.status_code, row.response)
        if now - row.created_at < ABANDONED_AFTER:
            raise KeyInUse(
                "a request with this Idempotency-Key is being answered: retry after it ends"
            )
        row.created_at, row.expires_at = now, now + KEPT_FOR  # its process died: take it over
        return None
    try:
        with session.begin_nested():
            session.add(
                models.IdempotencyKey(
                    client_id=wanted.client_id,
                    point=wanted.point,
                    key=wanted.key,
                    request_hash=request_hash,
                    created_at=now,
                    expires_at=now + KEPT_FOR,
                )
            )
    except IntegrityError:  # a concurrent request inserted it first
        raise KeyInUse(
            "a request with this Idempotency-Key is being answered: retry after it ends"
        ) from None
    return None


def keep(session: Session, held: Claim, answer: Answer) -> None:
    """Keep the answer for retries with the same key."""
    row = session.get(models.IdempotencyKey, (held.client_id, held.point, held.key))
    if row is not None:
        row.status_code, row.response = answer.status, answer.body


def release(session: Session, held: Claim) -> None:
    """Keep nothing: a retry with the key runs again."""
    session.execute(
        delete(models.IdempotencyKey).where(
            models.IdempotencyKey.client_id == held.client_id,
            models.IdempotencyKey.point == held.point,
            models.IdempotencyKey.key == held.key,
        )
    )
