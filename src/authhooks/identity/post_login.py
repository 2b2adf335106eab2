"""Running the post-login point for a sign-in (or a refresh, when the server is
configured so), and applying what its hooks decided: the access token's scopes
and claims, the ID token's claims, and the user's metadata, stored only when
the flow ends without a refusal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from anyio.to_thread import run_sync

from authhooks.flows.engine import FlowRunner
from authhooks.identity.authorization import OIDC_SCOPES
from authhooks.identity.directory import Directory, KnownClient
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.points import post_login, shapes
from authhooks.points.contract import Refusal
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.users import store


@dataclass(frozen=True)
class Decided:
    """What the flow made of a sign-in: every scope of the tokens (OIDC's kept as
    asked), and the custom claims of each token."""

    scopes: tuple[str, ...]
    access_claims: dict[str, object]
    id_claims: dict[str, object]


class PostLoginRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.description)
        self.refusal = refusal


@dataclass(frozen=True)
class SignInFacts:
    """What the event tells hooks of the sign-in besides the user and client."""

    scopes: Sequence[str]  # as asked, OIDC's and the API's
    audience: str | None
    authenticated_at: datetime
    session_id: str | None
    protocol: shapes.SignInProtocol = "oidc-basic-profile"
    redirect_uri: str | None = None
    prompt: Sequence[str] = ()
    ui_locales: str | None = None
    login_hint: str | None = None


class PostLogin:
    def __init__(self, database: Database, directory: Directory, flows: FlowRunner) -> None:
        self._db = database
        self._directory = directory
        self._flows = flows

    async def run(
        self, user: models.User, client: KnownClient, facts: SignInFacts, info: RequestInfo
    ) -> Decided:
        """The tokens' scopes and claims; PostLoginRefused when a hook refused or failed."""
        asked = tuple(facts.scopes)
        oidc = tuple(scope for scope in asked if scope in OIDC_SCOPES)
        api_scopes = [scope for scope in asked if scope not in OIDC_SCOPES]
        api = await self._directory.api(facts.audience) if facts.audience else None

        def event() -> post_login.Event:
            return post_login.Event(
                user=store.hook_user(user),
                client=client.hook_view(),
                scope=api_scopes,
                audience=facts.audience,
                api_scopes=sorted(api.defined_scopes) if api is not None else None,
                request=info.hook_view(),
                transaction=shapes.Transaction(
                    requested_scopes=list(asked),
                    prompt=list(facts.prompt),
                    redirect_uri=facts.redirect_uri,
                    protocol=facts.protocol,
                    ui_locales=(facts.ui_locales or "").split(),
                    login_hint=facts.login_hint,
                ),
                authentication=shapes.Authentication(
                    methods=[
                        shapes.AuthenticationMethod(
                            name="pwd", timestamp=facts.authenticated_at.isoformat()
                        )
                    ]
                ),
                stats=shapes.Stats(logins_count=user.logins_count),
                session=shapes.Session(id=facts.session_id) if facts.session_id else None,
            )

        result = await self._flows.run(post_login.POINT, event)
        if result is None:
            return Decided(asked, {}, {})
        if result.stop is not None:
            raise PostLoginRefused(result.stop.refusal)
        state = result.state
        if state.app_metadata or state.user_metadata:
            await run_sync(self._store_metadata, user.id, state)
        return Decided(
            oidc + tuple(state.scopes), dict(state.access_token_claims), dict(state.id_token_claims)
        )

    def _store_metadata(self, user_id: str, state: post_login.PostLoginState) -> None:
        with self._db.session() as session:
            row = session.get(models.User, user_id)
            if row is None:
                return
            changes = {}
            for kind in post_login.METADATA:
                wanted = getattr(state, kind)
                if wanted:
                    changes[kind] = post_login.updated_metadata(getattr(row, kind), wanted)
            store.update_user(session, row, changes)
