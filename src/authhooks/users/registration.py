"""Signup: validate, run pre-user-registration, store the user and queue
post-user-registration (and, when mail is on, the verification mail) in one
transaction.

Used by POST /dbconnections/signup and POST /api/v2/users alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from anyio.to_thread import run_sync

from authhooks.errors import DomainError
from authhooks.flows.deliveries import Deliverer, enqueue
from authhooks.flows.engine import FlowRunner
from authhooks.identity.mail.sender import MailOff
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.points import post_user_registration, pre_user_registration, shapes
from authhooks.points.contract import BadOutput, Refusal
from authhooks.points.user_events import check_metadata
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.users import profile, store
from authhooks.users.email_verification import EmailVerification
from authhooks.users.passwords import Passwords
from authhooks.users.policy import PasswordPolicy

log = logging.getLogger(__name__)


class SignupRefused(DomainError):
    """A pre-user-registration hook refused the signup (or failed).

    ``str(error)`` is what the end user may see: the hook's user message when it
    refused on purpose, else a plain sentence (pre_user_registration.refuse).
    """

    code = "extensibility_error"

    def __init__(self, refusal: Refusal | None = None) -> None:
        super().__init__(refusal.description if refusal else pre_user_registration.REFUSED)
        self.refusal = refusal


@dataclass(frozen=True)
class NewUser:
    """A signup's fields, as received (normalized by ``register``)."""

    email: str
    password: str
    username: str | None = None
    phone_number: str | None = None
    email_verified: bool = False
    blocked: bool = False
    user_metadata: dict[str, Any] = field(default_factory=dict)
    app_metadata: dict[str, Any] = field(default_factory=dict)
    # Auth0's profile fields (users/profile.py), checked by ``register``.
    profile: dict[str, str] = field(default_factory=dict)
    phone_verified: bool = False
    # The id to store the user under (without "auth0|"), as Auth0's imports keep
    # theirs; a new one when absent.
    user_id: str | None = None


class Registration:
    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        policy: PasswordPolicy,
        flows: FlowRunner,
        deliverer: Deliverer,
        verification: EmailVerification,
    ) -> None:
        self._db = database
        self._passwords = passwords
        self._policy = policy
        self._flows = flows
        self._deliverer = deliverer
        self._verification = verification

    async def register(
        self,
        new: NewUser,
        request: RequestInfo,
        *,
        run_hooks: bool = True,
        verify_email: bool | None = None,
    ) -> models.User:
        """The stored user; InvalidInput, WeakPassword, Conflict or SignupRefused otherwise.

        ``verify_email`` (Auth0's field of that name): whether to mail a verification
        link; by default when the email is not verified and mail is on. True with mail
        off is MailOff, before anything is stored.
        """
        if verify_email is None:
            verify_email = not new.email_verified and self._verification.enabled
        elif verify_email and not self._verification.enabled:
            raise MailOff()
        email = store.normalize_email(new.email)
        username = store.normalize_username(new.username) if new.username else None
        phone = store.check_phone_number(new.phone_number) if new.phone_number else None
        user_profile = profile.check_all(new.profile)
        user_id = store.check_user_id(new.user_id) if new.user_id is not None else None
        self._policy.check(new.password)
        await run_sync(self._ensure_available, email, username)
        user_metadata, app_metadata = dict(new.user_metadata), dict(new.app_metadata)
        if run_hooks:

            def event() -> pre_user_registration.Event:
                return pre_user_registration.Event(
                    user=shapes.NewUser(
                        email=email,
                        username=username,
                        phone_number=phone,
                        user_metadata=user_metadata,
                    ),
                    connection=shapes.Connection(),
                    request=request.hook_view(),
                )

            result = await self._flows.run(pre_user_registration.POINT, event)
            if result is not None:
                if result.stop is not None:
                    raise SignupRefused(result.stop.refusal)
                user_metadata = {**user_metadata, **result.state.user_metadata}
                app_metadata = {**app_metadata, **result.state.app_metadata}
                try:  # each hook's output was checked; together they may still be too big
                    check_metadata("user_metadata", user_metadata)
                    check_metadata("app_metadata", app_metadata)
                except BadOutput as error:
                    log.warning("signup refused: the hooks' metadata together: %s", error)
                    raise SignupRefused() from None
        password_hash = await self._passwords.hash(new.password)
        post_hooks = await self._flows.hooks(post_user_registration.POINT) if run_hooks else ()

        def store_user() -> tuple[models.User, str | None, str | None]:
            with self._db.session() as session:
                user = store.create_user(
                    session,
                    email=email,
                    password_hash=password_hash,
                    username=username,
                    phone_number=phone,
                    email_verified=new.email_verified,
                    user_metadata=user_metadata,
                    app_metadata=app_metadata,
                    blocked=new.blocked,
                    user_id=user_id,
                    profile=user_profile,
                    phone_verified=new.phone_verified,
                )
                queued = enqueue(
                    session,
                    post_user_registration.POINT,
                    post_hooks,
                    store.user_event(user, request.hook_view()),
                )
                mail = self._verification.mail(session, user) if verify_email else None
                return user, queued, mail

        user, queued, mail = await run_sync(store_user)
        if queued is not None:
            self._deliverer.nudge()
        if mail is not None:
            self._verification.nudge()
        return user

    def _ensure_available(self, email: str, username: str | None) -> None:
        with self._db.session() as session:
            store.ensure_available(session, email, username)
