"""The tokens a person's grant gives a client, from a code or a refresh token: an
access token for the API (and for userinfo when ``openid`` was asked), an ID
token when ``openid`` was asked, and the refresh token the grant handed on."""

from __future__ import annotations

import time
from dataclasses import replace

from anyio.to_thread import run_sync

from authhooks.identity.directory import Directory
from authhooks.identity.grant_state import GrantState
from authhooks.identity.id_tokens import id_token_claims, sign_id_token
from authhooks.identity.oauth2.issuer import AccessTokenIssuer, TokenResponse
from authhooks.storage import models
from authhooks.storage.database import Database


class UserTokens:
    def __init__(
        self,
        database: Database,
        directory: Directory,
        issuer: AccessTokenIssuer,
        issuer_url: str,
        id_token_lifetime: int,
    ) -> None:
        self._db = database
        self._directory = directory
        self._issuer = issuer
        self._issuer_url = issuer_url
        self._id_token_lifetime = id_token_lifetime

    @property
    def userinfo_audience(self) -> str:
        """Auth0's: an access token that may call /userinfo carries this audience too."""
        return f"{self._issuer_url}userinfo"

    async def issue(
        self, grant: GrantState, user: models.User, refresh_token: str | None, *, nonce: bool
    ) -> TokenResponse:
        """The token response; ``nonce``: whether the ID token repeats the request's
        (only the code's exchange does)."""
        audiences: list[str] = [grant.audience] if grant.audience else []
        if grant.openid or not audiences:
            audiences.append(self.userinfo_audience)
        api = await self._directory.api(grant.audience) if grant.audience else None
        response = await self._issuer.issue(
            subject=grant.user_id,
            client_id=grant.client_id,
            audience=audiences[0] if len(audiences) == 1 else audiences,
            scopes=grant.scopes,
            grant_type_claim="",
            lifetime=api.token_lifetime if api is not None else None,
            custom_claims=grant.access_claims,
        )
        id_token = None
        if grant.openid:
            keys = await self._directory.keys()
            claims = id_token_claims(
                issuer=self._issuer_url,
                client_id=grant.client_id,
                user=user,
                scopes=grant.scopes,
                auth_time=grant.auth_time,
                issued_at=int(time.time()),
                lifetime=self._id_token_lifetime,
                nonce=grant.nonce if nonce else None,
                sid=grant.sid,
                access_token=response.access_token,
                custom=grant.id_claims,
            )
            id_token = sign_id_token(claims, keys.signing)
        return replace(response, id_token=id_token, refresh_token=refresh_token)

    async def user(self, user_id: str) -> models.User | None:
        def load() -> models.User | None:
            with self._db.session() as session:
                return session.get(models.User, user_id)

        return await run_sync(load)
