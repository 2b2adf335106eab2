"""Password login: throttle, verify, rehash when the cost parameters changed."""

from __future__ import annotations

from anyio.to_thread import run_sync

from authhooks.errors import DomainError
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from authhooks.users import store
from authhooks.users.passwords import Passwords
from authhooks.users.throttle import LoginThrottle


class WrongCredentials(DomainError):
    """Unknown user or wrong password: one answer for both."""

    def __init__(self) -> None:
        super().__init__("wrong email or password")


class UserBlocked(DomainError):
    def __init__(self) -> None:
        super().__init__("user is blocked")


class TooManyAttempts(DomainError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed login attempts; try again in {retry_after} seconds")
        self.retry_after = retry_after


class PasswordLogin:
    def __init__(self, database: Database, passwords: Passwords, throttle: LoginThrottle) -> None:
        self._db = database
        self._passwords = passwords
        self._throttle = throttle

    async def authenticate(self, login: str, password: str, ip: str | None) -> models.User:
        """The user whose password this is; WrongCredentials, UserBlocked or TooManyAttempts."""
        user = await run_sync(self._find, login, ip)
        # Verified even for an unknown user (against a decoy), so both take the same time.
        matches = await run_sync(
            self._passwords.verify, user.password_hash if user else None, password
        )
        if user is None or not matches:
            await run_sync(self._failed, login, ip)
            raise WrongCredentials()
        if user.blocked:
            raise UserBlocked()
        rehashed = None
        if self._passwords.needs_rehash(user.password_hash):
            rehashed = await run_sync(self._passwords.hash, password)
        return await run_sync(self._logged_in, user.id, login, rehashed)

    async def verify(self, login: str, password: str, ip: str | None) -> models.User:
        """Like ``authenticate`` for a password change: no login is counted."""
        user = await run_sync(self._find, login, ip)
        matches = await run_sync(
            self._passwords.verify, user.password_hash if user else None, password
        )
        if user is None or not matches:
            await run_sync(self._failed, login, ip)
            raise WrongCredentials()
        if user.blocked:
            raise UserBlocked()
        return user

    def _find(self, login: str, ip: str | None) -> models.User | None:
        with self._db.session() as session:
            wait = self._throttle.retry_after(session, login, ip)
            if wait is not None:
                raise TooManyAttempts(wait)
            return store.find_by_login(session, login)

    def _failed(self, login: str, ip: str | None) -> None:
        with self._db.session() as session:
            self._throttle.failed(session, login, ip)

    def _logged_in(self, user_id: str, login: str, rehashed: str | None) -> models.User:
        with self._db.session() as session:
            user = store.get_user(session, user_id)
            user.last_login = utcnow()
            user.logins_count += 1
            if rehashed is not None:
                user.password_hash = rehashed
            self._throttle.succeeded(session, login)
            return user
