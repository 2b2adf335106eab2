"""Password login: throttle, verify, rehash when the cost parameters changed."""

from __future__ import annotations

from dataclasses import dataclass

from anyio.to_thread import run_sync
from sqlalchemy import update

from authhooks.errors import DomainError
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from authhooks.users import store
from authhooks.users.passwords import Passwords
from authhooks.users.throttle import LoginThrottle, prune_counters, prune_due


class WrongCredentials(DomainError):
    """Unknown user or wrong password: one answer for both."""

    def __init__(self) -> None:
        super().__init__("wrong email or password")


class UserBlocked(DomainError):
    def __init__(self) -> None:
        super().__init__("user is blocked")


@dataclass(frozen=True)
class _Attempt:
    subject: str
    user: models.User | None


class PasswordLogin:
    def __init__(self, database: Database, passwords: Passwords, throttle: LoginThrottle) -> None:
        self._db = database
        self._passwords = passwords
        self._throttle = throttle

    async def authenticate(self, login: str, password: str, ip: str | None) -> models.User:
        """The user whose password this is, its login counted; WrongCredentials,
        UserBlocked or TooManyAttempts (from the throttle) otherwise."""
        user = await self.verify(login, password, ip)
        rehashed = None
        if self._passwords.needs_rehash(user.password_hash):
            rehashed = await self._passwords.hash(password)
        return await run_sync(self._logged_in, user, rehashed)

    async def signed_up(self, user: models.User) -> models.User:
        """Count the login that a signup through the hosted page is (the password was
        just set, so it is not verified again)."""
        return await run_sync(self._logged_in, user, None)

    async def verify(self, login: str, password: str, ip: str | None) -> models.User:
        """Like ``authenticate`` without counting a login (for a password change)."""
        attempt = await run_sync(self._reserve, login, ip)
        user = attempt.user
        # Verified even for an unknown user (against a decoy), so both take the same time.
        matches = await self._passwords.verify(user.password_hash if user else None, password)
        if user is None or not matches:
            raise WrongCredentials()  # the attempt stays counted
        await run_sync(self._succeeded, attempt.subject, ip)
        if user.blocked:
            raise UserBlocked()
        return user

    def _reserve(self, login: str, ip: str | None) -> _Attempt:
        if prune_due():
            with self._db.session() as session:
                prune_counters(session, utcnow())
        with self._db.session() as session:
            user = store.find_by_login(session, login)
            # The user when it exists, else the login as looked up (keyed hash): every
            # spelling of one unknown login counts against one counter.
            subject = (
                f"user:{user.id}"
                if user is not None
                else self._throttle.subject("login", store.login_key(login))
            )
            self._throttle.reserve(session, subject, ip)
            return _Attempt(subject, user)

    def _succeeded(self, subject: str, ip: str | None) -> None:
        with self._db.session() as session:
            self._throttle.succeeded(session, subject, ip)

    def _logged_in(self, user: models.User, rehashed: str | None) -> models.User:
        with self._db.session() as session:
            if rehashed is not None:
                # Only over the hash just verified: a password changed meanwhile stays changed.
                session.execute(
                    update(models.User)
                    .where(
                        models.User.id == user.id, models.User.password_hash == user.password_hash
                    )
                    .values(password_hash=rehashed)
                )
            session.execute(
                update(models.User)
                .where(models.User.id == user.id)
                .values(last_login=utcnow(), logins_count=models.User.logins_count + 1)
            )
            return store.get_user(session, user.id)
