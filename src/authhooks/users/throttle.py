"""Password attempts, counted per user and client IP and per IP, in a fixed window;
public signups, counted per IP; and password reset requests, per address and IP.

An attempt is counted *before* its password is verified, in one statement per
counter, so that parallel guesses cannot all slip in under the cap; a correct
password gives its attempt back. As Auth0's brute-force protection does, the
per-user counter is kept per (user, IP): an attacker can lock a user out from
the attacker's own address only, never from everywhere. Counters live in the
database, so every server process sees the same counts.

An IPv6 client counts by its /64 in every counter: one subscriber typically
holds a whole /64, and counting single addresses would give it 2^64 fresh
counters. A login that names no known user counts under a keyed hash of it,
never as typed: people type passwords into the login field.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authhooks.errors import DomainError
from authhooks.masterkey import MasterKey, SecretHasher
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow

# No counter's window is longer (settings cap login_failure_window at a day).
MAX_WINDOW = 86400
# Every this many counted attempts (per process), ended counters are deleted.
_PRUNE_EVERY = 100
_attempts = itertools.count(1)
# What the key of the logins' keyed hash is derived for, from the master key.
LOGIN_HASH_PURPOSE = "login-throttle"


class TooManyAttempts(DomainError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed login attempts; try again in {retry_after} seconds")
        self.retry_after = retry_after


@dataclass(frozen=True)
class ThrottleLimits:
    per_user: int = 10
    per_ip: int = 100
    window: int = 900  # seconds


class LoginThrottle:
    def __init__(self, limits: ThrottleLimits, master_key: MasterKey) -> None:
        self.limits = limits
        # A master key rotation changes this key: counters start again, no more.
        self._hasher = SecretHasher(master_key.derive(LOGIN_HASH_PURPOSE))

    def subject(self, kind: str, login: str) -> str:
        """The counter name of attempts on ``login`` (as looked up: ``login_key``):
        ``kind`` and a keyed hash of it, so that the table never holds what was
        typed, and nobody who reads it can test guesses without the master key."""
        return f"{kind}:{self._hasher.hash(login).hex()}"

    def reserve(self, session: Session, subject: str, ip: str | None) -> None:
        """Count an attempt on ``subject`` (a user, or an unknown login) from ``ip``;
        TooManyAttempts if that takes a counter over its cap (then nothing is counted)."""
        now = utcnow()
        waits = []
        for key, cap in self._caps(subject, ip).items():
            count, started = self._increment(session, key, now)
            if count > cap:
                waits.append(
                    (started + timedelta(seconds=self.limits.window) - now).total_seconds()
                )
        if waits:
            raise TooManyAttempts(max(1, math.ceil(max(waits))))

    def succeeded(self, session: Session, subject: str, ip: str | None) -> None:
        """A correct password: clear the user's counter, give the IP its attempt back."""
        user_key, *ip_key = self._caps(subject, ip)
        session.execute(delete(models.LoginFailure).where(models.LoginFailure.key == user_key))
        if ip_key:
            session.execute(
                update(models.LoginFailure)
                .where(models.LoginFailure.key == ip_key[0], models.LoginFailure.count > 0)
                .values(count=models.LoginFailure.count - 1)
            )

    def _increment(self, session: Session, key: str, now: datetime) -> tuple[int, datetime]:
        return count_attempt(session, key, now, self.limits.window)

    def _caps(self, subject: str, ip: str | None) -> dict[str, int]:
        """The counters of an attempt and their caps; the (user, IP) one first."""
        address = address_key(ip) if ip else ""
        caps = {f"{subject[:300]}|{address}": self.limits.per_user}
        if address:
            caps["ip:" + address] = self.limits.per_ip
        return caps


class TooManySignups(DomainError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many signups from this address; try again in {retry_after} seconds")
        self.retry_after = retry_after


class SignupThrottle:
    """Public signups per client IP, so that one address cannot mass-create accounts."""

    def __init__(self, database: Database, per_ip: int, window: int = 3600) -> None:
        self._db = database
        self.per_ip = per_ip
        self.window = window

    def reserve(self, ip: str | None) -> None:
        """Count a signup from ``ip`` (committed whatever becomes of the signup);
        TooManySignups past the cap."""
        if not ip:
            return  # no address to count by (a test client, or a Unix socket)
        now = utcnow()
        if prune_due():
            with self._db.session() as session:
                prune_counters(session, now)
        with self._db.session() as session:
            count, started = count_attempt(
                session, "signup-ip:" + address_key(ip), now, self.window
            )
        if count > self.per_ip:
            left = (started + timedelta(seconds=self.window) - now).total_seconds()
            raise TooManySignups(max(1, math.ceil(left)))


class TooManyResets(DomainError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many password reset requests; try again in {retry_after} seconds")
        self.retry_after = retry_after


# What the key of the reset throttle's keyed hash of addresses is derived for.
RESET_HASH_PURPOSE = "password-reset-throttle"


class ResetThrottle:
    """Password reset requests, counted per address asked for (known or not, under a
    keyed hash) and per client IP: a mailbox is not flooded with reset mails, and
    one address cannot send mail to many."""

    def __init__(self, master_key: MasterKey, per_email: int, per_ip: int, window: int = 3600):
        self._hasher = SecretHasher(master_key.derive(RESET_HASH_PURPOSE))
        self.per_email = per_email
        self.per_ip = per_ip
        self.window = window

    def reserve(self, session: Session, email: str, ip: str | None) -> None:
        """Count a request for ``email`` (its normal form) from ``ip``, in the caller's
        transaction; TooManyResets if that takes a counter over its cap (then the
        caller's rollback counts nothing)."""
        now = utcnow()
        caps = {f"reset-email:{self._hasher.hash(email).hex()}": self.per_email}
        if ip:
            caps["reset-ip:" + address_key(ip)] = self.per_ip
        waits = []
        for key, cap in caps.items():
            count, started = count_attempt(session, key, now, self.window)
            if count > cap:
                waits.append((started + timedelta(seconds=self.window) - now).total_seconds())
        if waits:
            raise TooManyResets(max(1, math.ceil(max(waits))))


def count_attempt(session: Session, key: str, now: datetime, window: int) -> tuple[int, datetime]:
    """Add one to the counter ``key`` of the current ``window`` (seconds): its count
    and when its window started, in one statement, so parallel attempts all count."""
    window_start = now - timedelta(seconds=window)
    counted = session.execute(
        update(models.LoginFailure)
        .where(
            models.LoginFailure.key == key,
            models.LoginFailure.window_started_at > window_start,
        )
        .values(count=models.LoginFailure.count + 1)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        # No counter, or its window ended: start a new one. Only an ended one is
        # deleted: a counter another attempt just started must keep its count.
        session.execute(
            delete(models.LoginFailure).where(
                models.LoginFailure.key == key,
                models.LoginFailure.window_started_at <= window_start,
            )
        )
        try:
            with session.begin_nested():
                session.add(models.LoginFailure(key=key, count=1, window_started_at=now))
        except IntegrityError:  # another process started it first
            session.execute(
                update(models.LoginFailure)
                .where(models.LoginFailure.key == key)
                .values(count=models.LoginFailure.count + 1)
            )
    row = session.execute(
        select(models.LoginFailure.count, models.LoginFailure.window_started_at).where(
            models.LoginFailure.key == key
        )
    ).one()
    count, started = row
    return int(count), started


def prune_due() -> bool:
    """Whether this counted attempt is the process's ``_PRUNE_EVERY``-th: time to
    prune, in a transaction of its own (never inside an attempt's)."""
    return next(_attempts) % _PRUNE_EVERY == 0


def prune_counters(session: Session, now: datetime) -> None:
    """Forget counters whose window ended long ago: a key that never comes back
    (an address that tried once) would otherwise stay forever."""
    session.execute(
        delete(models.LoginFailure).where(
            models.LoginFailure.window_started_at < now - timedelta(seconds=MAX_WINDOW)
        )
    )


def address_key(ip: str) -> str:
    """What a client address counts as: an IPv4 address (IPv4-mapped ones as IPv4),
    or an IPv6 address's /64, which one subscriber typically holds whole."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)
