"""What a person's sign-in granted a client, fixed when the code is issued and carried
from the code to each refresh token: whose, which scopes and API, when they
authenticated, in which session, and what the post-login hooks added to tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GrantState:
    user_id: str
    client_id: str
    scopes: tuple[str, ...]  # OIDC scopes and the API's
    audience: str | None  # None: the access token is for userinfo only
    auth_time: int  # UNIX time the person authenticated
    sid: str | None = None  # the sign-in session
    nonce: str | None = None  # only the code's: an ID token from a refresh carries none
    access_claims: dict[str, Any] = field(default_factory=dict)  # from post-login hooks
    id_claims: dict[str, Any] = field(default_factory=dict)

    @property
    def openid(self) -> bool:
        return "openid" in self.scopes

    def stored(self) -> dict[str, Any]:
        values = asdict(self)
        values["scopes"] = list(self.scopes)
        return values

    @classmethod
    def from_stored(cls, values: dict[str, Any]) -> GrantState:
        return cls(**{**values, "scopes": tuple(values["scopes"])})


def new_secret() -> tuple[str, str]:
    """A bearer secret (a code, a refresh token, a cookie) and the hash it is stored as."""
    value = secrets.token_urlsafe(32)
    return value, hash_secret(value)


def hash_secret(value: str) -> str:
    # 256 random bits need no salt or slow hash: SHA-256 cannot be reversed.
    return hashlib.sha256(value.encode()).hexdigest()
