"""Refresh token grant (RFC 6749 §6): the client's own token, rotated when its
settings say so (a reuse revokes the family), optionally with fewer scopes."""

from __future__ import annotations

from typing import ClassVar

from anyio.to_thread import run_sync

from authhooks.identity import refresh_tokens
from authhooks.identity.directory import KnownClient
from authhooks.identity.grant_state import GrantState
from authhooks.identity.oauth2.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
)
from authhooks.identity.oauth2.issuer import TokenResponse
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.identity.oauth2.scope import parse_scope
from authhooks.identity.oauth2.user_tokens import UserTokens
from authhooks.storage import models
from authhooks.storage.database import Database


class RefreshTokenGrant:
    grant_type: ClassVar[str] = "refresh_token"

    def __init__(self, database: Database, tokens: UserTokens) -> None:
        self._db = database
        self._tokens = tokens

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
        return await self._tokens.issue(grant, user, successor, nonce=False)
