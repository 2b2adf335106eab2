"""Failed password logins, counted per user and per client IP in a fixed window.

Counters live in the database, so every server process sees the same count.
Only failures write; a login that is not throttled costs one small read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authhooks.storage import models
from authhooks.storage.models import utcnow


@dataclass(frozen=True)
class ThrottleLimits:
    per_user: int = 10
    per_ip: int = 100
    window: int = 900  # seconds


class LoginThrottle:
    def __init__(self, limits: ThrottleLimits) -> None:
        self.limits = limits

    def retry_after(self, session: Session, login: str, ip: str | None) -> int | None:
        """Seconds until ``login`` (or ``ip``) may try again, or None if it may now."""
        now = utcnow()
        window = timedelta(seconds=self.limits.window)
        caps = self._caps(login, ip)
        rows = session.scalars(select(models.LoginFailure).where(models.LoginFailure.key.in_(caps)))
        waits = [
            (row.window_started_at + window - now).total_seconds()
            for row in rows
            if row.count >= caps[row.key] and row.window_started_at + window > now
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, session: Session, login: str, ip: str | None) -> None:
        now = utcnow()
        window_start = now - timedelta(seconds=self.limits.window)
        for key in self._caps(login, ip):
            counted = session.execute(
                update(models.LoginFailure)
                .where(
                    models.LoginFailure.key == key,
                    models.LoginFailure.window_started_at > window_start,
                )
                .values(count=models.LoginFailure.count + 1)
            )
            if counted.rowcount == 1:  # type: ignore[attr-defined]
                continue
            # No counter, or its window ended: start a new one.
            session.execute(delete(models.LoginFailure).where(models.LoginFailure.key == key))
            try:
                with session.begin_nested():
                    session.add(models.LoginFailure(key=key, count=1, window_started_at=now))
            except IntegrityError:  # another process started it first
                session.execute(
                    update(models.LoginFailure)
                    .where(models.LoginFailure.key == key)
                    .values(count=models.LoginFailure.count + 1)
                )

    def succeeded(self, session: Session, login: str) -> None:
        """A correct password clears the user's counter (not the IP's)."""
        session.execute(delete(models.LoginFailure).where(models.LoginFailure.key == _user(login)))

    def _caps(self, login: str, ip: str | None) -> dict[str, int]:
        caps = {_user(login): self.limits.per_user}
        if ip:
            caps["ip:" + ip] = self.limits.per_ip
        return caps


def _user(login: str) -> str:
    return "user:" + login.strip().lower()[:300]
