"""Setting a new password — by an admin, or by the user through a reset link
(users/password_reset.py) — and queueing post-change-password in the same
transaction."""

from __future__ import annotations

from collections.abc import Sequence

from anyio.to_thread import run_sync
from sqlalchemy.orm import Session

from authhooks.flows.deliveries import Deliverer, enqueue
from authhooks.flows.engine import FlowRunner
from authhooks.hooks.store import FlowHook
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.points import post_change_password
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from authhooks.users import store
from authhooks.users.passwords import Passwords
from authhooks.users.policy import PasswordPolicy


class PasswordChange:
    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        policy: PasswordPolicy,
        flows: FlowRunner,
        deliverer: Deliverer,
    ) -> None:
        self._db = database
        self._passwords = passwords
        self._policy = policy
        self._flows = flows
        self._deliverer = deliverer

    async def set(self, user_id: str, new: str, request: RequestInfo) -> models.User:
        """Set the password; WeakPassword, or NotFound for an unknown user."""
        password_hash = await self.hash(new)
        hooks = await self.hooks()

        def save() -> tuple[models.User, str | None]:
            with self._db.session() as session:
                user = store.get_user(session, user_id)
                return user, self.apply(session, user, password_hash, hooks, request)

        user, queued = await run_sync(save)
        if queued is not None:
            self.nudge()
        return user

    def nudge(self) -> None:
        """Start the post-change-password runs ``apply`` queued, once committed."""
        self._deliverer.nudge()

    async def hash(self, new: str) -> str:
        """The stored form of a new password; WeakPassword if the policy refuses it."""
        self._policy.check(new)
        return await self._passwords.hash(new)

    async def hooks(self) -> Sequence[FlowHook]:
        return await self._flows.hooks(post_change_password.POINT)

    def apply(
        self,
        session: Session,
        user: models.User,
        password_hash: str,
        hooks: Sequence[FlowHook],
        request: RequestInfo,
    ) -> str | None:
        """In the caller's transaction: store the hash and queue post-change-password.
        The event id, if any hook is to run (then call ``Deliverer.nudge`` after commit)."""
        user.password_hash = password_hash
        user.last_password_reset = user.updated_at = utcnow()
        event = store.user_event(user, request.hook_view())
        return enqueue(session, post_change_password.POINT, hooks, event)
