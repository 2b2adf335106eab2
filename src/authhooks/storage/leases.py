"""Leases on claimed rows, renewed while their work runs.

A process claims a row (a hook delivery, a git deployment) by setting its
``claim`` token and ``lease_until``; while it works it renews the lease every
third of its length, so that only a process that stopped lets a lease lapse
and another take the row up. A renewal names the token: a row another process
took over is not renewed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from authhooks.storage.models import utcnow


def renew(
    session: Session, table: Any, held: Iterable[tuple[str, str]], seconds: float, *still: Any
) -> int:
    """Extend by ``seconds`` the leases of ``held`` rows, (id, claim token) pairs,
    that are still held by that token (and match ``still``); how many were."""
    lease_until = utcnow() + timedelta(seconds=seconds)
    renewed = 0
    for row_id, claim in held:
        renewed += session.execute(
            update(table)
            .where(table.id == row_id, table.claim == claim, *still)
            .values(lease_until=lease_until)
        ).rowcount  # type: ignore[attr-defined]
    return renewed


def renew_every(lease: float) -> float:
    """How often a process renews the leases it holds."""
    return lease / 3
