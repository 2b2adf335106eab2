"""Admin users: people who sign in to the dashboard with an email and a password.

An admin is allowed a set of management scopes, as a client is by its grant.
Its dashboard session gets management tokens whose ``sub`` is ``admin|<id>``
and whose ``client_id`` is the dashboard's own (``DASHBOARD_CLIENT_ID``, which
no real client can have: their ids are 32 alphanumerics). The management API
checks such a token against the admin as stored now, so deleting an admin or
narrowing its scopes takes effect at once.

Passwords are hashed with argon2id and must keep the password policy, with at
least ``MIN_ADMIN_PASSWORD_LENGTH`` characters whatever the users' policy says.
Sign-ins are throttled like password logins, per (email, IP) and per IP.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from anyio.to_thread import run_sync
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from authhooks.errors import Conflict, InvalidInput, NotFound
from authhooks.identity.management import MANAGEMENT_SCOPES
from authhooks.storage import models
from authhooks.storage.database import Database, page
from authhooks.storage.models import utcnow
from authhooks.users.passwords import Passwords
from authhooks.users.policy import PasswordPolicy
from authhooks.users.store import login_key, normalize_email
from authhooks.users.throttle import LoginThrottle, prune_counters, prune_due

ADMIN_SUBJECT_PREFIX = "admin|"
DASHBOARD_CLIENT_ID = "authhooks-dashboard"
MIN_ADMIN_PASSWORD_LENGTH = 12
_SCOPES = frozenset(scope["value"] for scope in MANAGEMENT_SCOPES)
T = TypeVar("T")


class WrongAdminCredentials(Exception):
    """Unknown email or wrong password: one answer for both."""


@dataclass(frozen=True)
class AdminView:
    id: str
    email: str
    scopes: frozenset[str]

    @property
    def subject(self) -> str:
        return ADMIN_SUBJECT_PREFIX + self.id


def new_admin_id() -> str:
    return "adm_" + secrets.token_hex(12)


def admin_id_of(subject: str) -> str | None:
    """The admin id of a token's ``sub``, or None when it names no admin."""
    if subject.startswith(ADMIN_SUBJECT_PREFIX):
        return subject[len(ADMIN_SUBJECT_PREFIX) :]
    return None


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, sorted and without repeats; InvalidInput naming any unknown one."""
    wanted = sorted(set(scopes))
    unknown = [scope for scope in wanted if scope not in _SCOPES]
    if unknown:
        raise InvalidInput(f"not management scopes: {' '.join(unknown)}")
    return wanted


def get_admin(session: Session, admin_id: str, *, lock: bool = False) -> models.Admin:
    """The admin; with ``lock``, its row stays locked until the transaction ends, so
    that what a caller checked of it (its scopes) still holds when the change commits."""
    admin = get_admin_or_none(session, admin_id, lock=lock)
    if admin is None:
        raise NotFound(f"no admin with id {admin_id}")
    return admin


def get_admin_or_none(
    session: Session, admin_id: str, *, lock: bool = False
) -> models.Admin | None:
    return session.get(models.Admin, admin_id, with_for_update=lock)


def list_admins(session: Session, offset: int, limit: int) -> tuple[list[models.Admin], int]:
    """A page of the admins, by address, and how many there are."""
    return page(session, select(models.Admin).order_by(models.Admin.email), offset, limit)


def delete_admin(
    session: Session, admin_id: str, may_delete: Callable[[models.Admin], None]
) -> None:
    """Delete an admin, if ``may_delete`` (which raises otherwise) lets the caller;
    its dashboard sessions go with it (by cascade)."""
    admin = get_admin(session, admin_id, lock=True)
    may_delete(admin)
    session.delete(admin)


def view(admin: models.Admin) -> AdminView:
    return AdminView(admin.id, admin.email, frozenset(admin.scopes) & _SCOPES)


class AdminAccounts:
    """Create and change admins (password policy, argon2id) and sign them in."""

    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        policy: PasswordPolicy,
        throttle: LoginThrottle,
    ) -> None:
        self._db = database
        self._passwords = passwords
        self._policy = replace(policy, min_length=max(policy.min_length, MIN_ADMIN_PASSWORD_LENGTH))
        self._throttle = throttle

    async def create(
        self, email: str, password: str, scopes: Iterable[str], created_by: str
    ) -> models.Admin:
        """A new admin; InvalidInput (bad email, unknown scope), WeakPassword or Conflict."""
        address = normalize_email(email.strip())
        wanted = check_scopes(scopes)
        self._policy.check(password)
        password_hash = await self._passwords.hash(password)

        def store() -> models.Admin:
            with self._db.session() as session:
                if session.scalar(select(models.Admin.id).where(models.Admin.email == address)):
                    raise Conflict("an admin with this email already exists")
                admin = models.Admin(
                    id=new_admin_id(),
                    email=address,
                    password_hash=password_hash,
                    scopes=wanted,
                    created_by=created_by,
                )
                session.add(admin)
                session.flush()
                return admin

        return await run_sync(store)

    async def update(
        self,
        admin_id: str,
        password: str | None,
        scopes: Iterable[str] | None,
        may_change: Callable[[models.Admin], None],
    ) -> models.Admin:
        """Change an admin's password or scopes, if ``may_change`` (which raises
        otherwise) lets the caller change that admin. A new password ends its sessions."""
        wanted = None if scopes is None else check_scopes(scopes)
        password_hash = None
        if password is not None:
            self._policy.check(password)
            password_hash = await self._passwords.hash(password)

        def store() -> models.Admin:
            with self._db.session() as session:
                admin = get_admin(session, admin_id, lock=True)
                may_change(admin)
                if wanted is not None:
                    admin.scopes = wanted
                if password_hash is not None:
                    admin.password_hash = password_hash
                    session.execute(
                        delete(models.DashboardSession).where(
                            models.DashboardSession.admin_id == admin_id
                        )
                    )
                admin.updated_at = utcnow()
                session.flush()
                return admin

        return await run_sync(store)

    async def sign_in(
        self,
        email: str,
        password: str,
        ip: str | None,
        then: Callable[[Session, AdminView], T],
    ) -> T:
        """Check an admin's password, then run ``then`` (start its session, say) in the
        transaction that confirms the password is still the one checked; its answer,
        or WrongAdminCredentials, or TooManyAttempts."""
        # As stored (normalized as users' emails are): whatever spelling is typed finds
        # the admin and counts against one throttle counter.
        login = login_key(email)
        # Counted by a keyed hash, never by what was typed (known admin or not).
        subject = self._throttle.subject("admin-login", login)

        def reserve() -> models.Admin | None:
            if prune_due():
                with self._db.session() as session:
                    prune_counters(session, utcnow())
            with self._db.session() as session:
                self._throttle.reserve(session, subject, ip)
                return session.scalar(select(models.Admin).where(models.Admin.email == login))

        admin = await run_sync(reserve)
        # Verified even for an unknown email (against a decoy), so both take the same time.
        if not await self._passwords.verify(admin.password_hash if admin else None, password):
            raise WrongAdminCredentials()  # the attempt stays counted
        assert admin is not None
        rehashed = None
        if self._passwords.needs_rehash(admin.password_hash):
            rehashed = await self._passwords.hash(password)

        def signed_in() -> T:
            with self._db.session() as session:
                self._throttle.succeeded(session, subject, ip)
            with self._db.session() as session:
                stored = get_admin_or_none(session, admin.id, lock=True)
                # Deleted, or its password changed, since it was read: that password
                # no longer opens anything.
                if stored is None or stored.password_hash != admin.password_hash:
                    raise WrongAdminCredentials()
                stored.last_login = utcnow()
                if rehashed is not None:
                    stored.password_hash = rehashed
                return then(session, view(stored))

        return await run_sync(signed_in)

    async def find(self, admin_id: str) -> AdminView | None:
        """The admin as stored now, or None (deleted)."""

        def load() -> AdminView | None:
            with self._db.session() as session:
                admin = session.get(models.Admin, admin_id)
                return None if admin is None else view(admin)

        return await run_sync(load)
