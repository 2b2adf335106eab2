"""Authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5): a code from the
redirect, exchanged once, by the client it was issued to, with the same redirect
URI and the PKCE verifier of its challenge. ``offline_access`` begins a family
of refresh tokens, when the client may use them."""

from __future__ import annotations

import re
from typing import ClassVar

from anyio.to_thread import run_sync

from authhooks.identity import codes, refresh_tokens
from authhooks.identity.directory import KnownClient
from authhooks.identity.grant_state import GrantState
from authhooks.identity.oauth2.errors import InvalidGrantError, InvalidRequestError
from authhooks.identity.oauth2.issuer import TokenResponse
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.identity.oauth2.user_tokens import UserTokens
from authhooks.storage import models
from authhooks.storage.database import Database

# RFC 7636 §4.1: 43 to 128 unreserved characters.
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


class AuthorizationCodeGrant:
    grant_type: ClassVar[str] = "authorization_code"

    def __init__(self, database: Database, tokens: UserTokens) -> None:
        self._db = database
        self._tokens = tokens

    async def respond(
        self, client: KnownClient, params: dict[str, str], request: RequestInfo
    ) -> TokenResponse:
        code = params.get("code")
        if not code:
            raise InvalidRequestError("code is required")
        verifier = params.get("code_verifier")
        if verifier is not None and not _VERIFIER.fullmatch(verifier):
            raise InvalidRequestError("code_verifier must be 43 to 128 unreserved characters")
        redirect_uri = params.get("redirect_uri")

        def exchange() -> tuple[GrantState, models.User, str | None] | str:
            with self._db.session() as session:
                try:
                    redeemed = codes.redeem(session, code, client.client_id, redirect_uri, verifier)
                except codes.CodeRefused as refused:
                    return str(refused)  # committed: a reuse revokes what the code issued
                grant = redeemed.grant
                user = session.get(models.User, grant.user_id)
                if user is None or user.blocked:
                    return "the user may no longer sign in"
                refresh = None
                if "offline_access" in grant.scopes and "refresh_token" in client.grant_types:
                    issued = refresh_tokens.begin_family(session, grant, client.refresh)
                    codes.issued_family(session, redeemed.code_hash, issued.family_id)
                    refresh = issued.token
                return grant, user, refresh

        outcome = await run_sync(exchange)
        if isinstance(outcome, str):
            raise InvalidGrantError(outcome)
        grant, user, refresh = outcome
        return await self._tokens.issue(grant, user, refresh, nonce=True)
