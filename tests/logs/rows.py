"""Rows the log tests store directly: a hook, and invocation records of it."""

from __future__ import annotations

from datetime import timedelta

from authhooks.logs.records import Invocation
from authhooks.storage import models
from authhooks.storage.models import utcnow


def hook_row(hook_id: str) -> models.Hook:
    return models.Hook(
        id=hook_id,
        name=hook_id,
        trigger_id="credentials-exchange",
        runtime="python",
        timeout_ms=1000,
        on_error="fail",
        version=1,
        last_version=1,
    )


def invocation(
    invocation_id: str,
    hook_id: str,
    *,
    outcome: str = "ok",
    age: timedelta = timedelta(0),
    captured: bytes | None = None,
) -> Invocation:
    return Invocation(
        id=invocation_id,
        hook_id=hook_id,
        version=1,
        point="credentials-exchange",
        started_at=utcnow() - age,
        duration_ms=1.0,
        outcome=outcome,
        error=None,
        captured=captured,
    )
