"""Refresh token grant (RFC 6749 §6): the client's own token, rotated when its
settings say so (a reuse revokes the family), optionally with fewer scopes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar

from anyio.to_thread import run_sync

from authhooks.identity import refresh_tokens
from authhooks.identity.directory import KnownClient
from authhooks.identity.grant_state import GrantState
from authhooks.identity.oauth2.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    refused,
)
from authhooks.identity.oauth2.issuer import TokenResponse
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.identity.oauth2.scope import parse_scope
from authhooks.identity.oauth2.user_tokens import UserTokens
from authhooks.identity.post_login import PostLogin, PostLoginRefused, SignInFacts
from authhooks.storage import models
from authhooks.storage.database import Database


class RefreshTokenGrant:
    grant_type: ClassVar[str] = "refresh_token"

    def __init__(
        self, database: Database, tokens: UserTokens, post_login: PostLogin | None = None
    ) -> None:
        self._db = database
        self._tokens = tokens
        self._post_login = post_login  # set: post-login hooks run again at each refresh

    async def respond(
        self, client: KnownClient, params: dict[str, str], request: RequestInfo
    ) -> TokenResponse:
        token = params.get("refresh_token")
        if not token:
            raise InvalidRequestError("refresh_token is required")
        requested = [value for value in parse_scope(params.get("scope")) if value]

        def use() -> tuple[GrantState, models.User, str | None] | str:
            with self._db.session() as session:
                try:
                    grant, successor = refresh_tokens.use(
                        session, token, client.client_id, client.refresh
                    )
                except refresh_tokens.RefreshRefused as refused:
                    return str(refused)  # committed: a reuse revokes the family
                user = session.get(models.User, grant.user_id)
                assert user is not None  # use() refuses tokens of deleted users
                return grant, user, successor.token if successor else None

        outcome = await run_sync(use)
        if isinstance(outcome, str):
            raise InvalidGrantError(outcome)
        grant, user, successor = outcome
        if requested:
            try:
                grant = refresh_tokens.narrowed(grant, requested)
            except refresh_tokens.ScopeBeyondGrant as beyond:
                raise InvalidScopeError(
                    f"scope {beyond} was not granted: a refresh may only narrow the scopes"
                ) from None
        if self._post_login is not None:
            grant = await self._again(grant, user, client, request)
        return await self._tokens.issue(grant, user, successor, nonce=False)

    async def _again(
        self, grant: GrantState, user: models.User, client: KnownClient, request: RequestInfo
    ) -> GrantState:
        """The grant as post-login hooks decide it for this refresh (their claims
        replace the sign-in's); a refusal is this refresh's access_denied."""
        assert self._post_login is not None
        facts = SignInFacts(
            scopes=grant.scopes,
            audience=grant.audience,
            authenticated_at=datetime.fromtimestamp(grant.auth_time, UTC),
            session_id=grant.sid,
            protocol="oauth2-refresh-token",
        )
        try:
            decided = await self._post_login.run(user, client, facts, request)
        except PostLoginRefused as refusal:
            raise refused(refusal.refusal.error, refusal.refusal.description) from None
        return replace(
            grant,
            scopes=decided.scopes,
            access_claims=decided.access_claims,
            id_claims=decided.id_claims,
        )
