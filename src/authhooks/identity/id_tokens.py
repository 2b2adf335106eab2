"""ID tokens (OIDC Core §2, §3.1.3.6) and the claims userinfo answers with (§5.3).

The standard claims come from the user by scope: ``profile`` gives name,
nickname, given_name, family_name and picture (those set; users/profile.py),
preferred_username (a username, when the user has one) and updated_at;
``email`` gives email and email_verified. Post-login hooks add custom claims;
none may replace a standard one (points/post_login.py).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import jwt

from authhooks.identity.tokens import ActiveKey
from authhooks.storage import models
from authhooks.users import profile

ID_TOKEN_TYPE = "JWT"


def user_claims(user: models.User, scopes: tuple[str, ...]) -> dict[str, Any]:
    """The person's standard claims the scopes ask for (``sub`` always)."""
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        claims.update({key: value for key, value in profile.shown(user).items() if value})
        if user.username:
            claims["preferred_username"] = user.username
        claims["updated_at"] = int(user.updated_at.timestamp())
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


def id_token_claims(
    *,
    issuer: str,
    client_id: str,
    user: models.User,
    scopes: tuple[str, ...],
    auth_time: int,
    issued_at: int,
    lifetime: int,
    nonce: str | None,
    sid: str | None,
    access_token: str | None,
    custom: Mapping[str, Any],
) -> dict[str, Any]:
    """Custom claims first, so that none can replace those the server sets."""
    claims: dict[str, Any] = {
        **custom,
        **user_claims(user, scopes),
        "iss": issuer,
        "aud": client_id,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "auth_time": auth_time,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if sid is not None:
        claims["sid"] = sid
    if access_token is not None:
        claims["at_hash"] = token_hash(access_token)
    return claims


def token_hash(value: str) -> str:
    """OIDC Core §3.1.3.6: the left half of SHA-256 (RS256 and ES256 both use it)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def sign_id_token(claims: dict[str, Any], key: ActiveKey) -> str:
    return jwt.encode(
        claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": ID_TOKEN_TYPE}
    )


class InvalidIdTokenHint(Exception):
    """The id_token_hint is not an ID token this server issued."""


def verify_id_token_hint(token: str, public: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    """The claims of an ID token this server signed, expired or not (OIDC RP-initiated
    logout §2: a hint may have expired)."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != ID_TOKEN_TYPE:
            # An access token (at+jwt) is no ID token, whoever holds one.
            raise InvalidIdTokenHint("id_token_hint is not an ID token")
        kid = header.get("kid")
        key = public.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidIdTokenHint("id_token_hint was not signed by a key of this server")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            issuer=issuer,
            options={"verify_exp": False, "verify_aud": False, "require": ["sub", "aud", "sid"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidIdTokenHint(f"id_token_hint is invalid: {error}") from None
    if not isinstance(claims["aud"], str) or not isinstance(claims["sid"], str):
        raise InvalidIdTokenHint("id_token_hint is not an ID token of this server")
    return claims
