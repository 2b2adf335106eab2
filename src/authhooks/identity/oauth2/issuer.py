"""Assembling and signing the access token of a successful grant (RFC 9068)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from authhooks.identity.directory import Directory
from authhooks.identity.tokens import sign_access_token
from authhooks.points.token import access_token_claims


@dataclass(frozen=True)
class TokenResponse:
    """RFC 6749 §5.1."""

    access_token: str
    expires_in: int
    scope: str
    id_token: str | None = None  # OIDC Core §3.1.3.3
    refresh_token: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.scope:
            body["scope"] = self.scope
        if self.id_token is not None:
            body["id_token"] = self.id_token
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


class AccessTokenIssuer:
    def __init__(self, directory: Directory, issuer: str, default_lifetime: int) -> None:
        self._directory = directory
        self._issuer = issuer
        self._default_lifetime = default_lifetime

    async def issue(
        self,
        *,
        subject: str,
        client_id: str,
        audience: str | list[str],
        scopes: tuple[str, ...],
        grant_type_claim: str,
        lifetime: int | None,
        custom_claims: dict[str, Any] | None = None,
    ) -> TokenResponse:
        """Sign an access token with the current key."""
        keys = await self._directory.keys()
        expires_in = lifetime or self._default_lifetime
        claims = access_token_claims(
            issuer=self._issuer,
            subject=subject,
            audience=audience,
            client_id=client_id,
            scopes=scopes,
            grant=grant_type_claim,
            custom=custom_claims or {},
            issued_at=int(time.time()),
            lifetime=expires_in,
            jti=secrets.token_urlsafe(16),
        )
        token = sign_access_token(claims, keys.signing)
        return TokenResponse(access_token=token, expires_in=expires_in, scope=" ".join(scopes))
