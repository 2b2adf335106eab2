"""Authorization codes (RFC 6749 §4.1.2, RFC 7636): issued at the redirect, exchanged
once at the token endpoint. Only a code's hash is stored. A code presented a
second time was stolen or replayed: the refresh tokens the first exchange issued
are revoked (RFC 6749 §4.1.2)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from authhooks.identity.authorization import AuthorizationRequest
from authhooks.identity.grant_state import GrantState, hash_secret, new_secret
from authhooks.identity.refresh_tokens import revoke_family
from authhooks.storage import models
from authhooks.storage.models import utcnow


class CodeRefused(Exception):
    """The code cannot be exchanged; the message says why (an invalid_grant)."""


@dataclass(frozen=True)
class Redeemed:
    grant: GrantState
    code_hash: str


def issue(session: Session, request: AuthorizationRequest, grant: GrantState, lifetime: int) -> str:
    code, code_hash = new_secret()
    now = utcnow()
    session.add(
        models.AuthorizationCode(
            code_hash=code_hash,
            client_id=request.client_id,
            user_id=grant.user_id,
            grant={
                **grant.stored(),
                "redirect_uri_given": request.redirect_uri_given,
            },
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        )
    )
    return code


def redeem(
    session: Session,
    code: str,
    client_id: str,
    redirect_uri: str | None,
    code_verifier: str | None,
) -> Redeemed:
    """The grant the code stands for, marked used; CodeRefused otherwise.

    A used code refuses, and revokes what its first exchange issued. Every other
    check comes first, so that a wrong guess by another client cannot revoke them."""
    code_hash = hash_secret(code)
    row = session.get(models.AuthorizationCode, code_hash)
    if row is None:
        raise CodeRefused("the code is invalid")
    if row.client_id != client_id:
        raise CodeRefused("the code was issued to another client")
    stored = dict(row.grant)
    given = stored.pop("redirect_uri_given")
    if redirect_uri is None and given:
        raise CodeRefused("redirect_uri is required: the authorization request named one")
    if redirect_uri is not None and redirect_uri != row.redirect_uri:
        raise CodeRefused("redirect_uri differs from the authorization request's")
    if row.code_challenge is not None:
        if code_verifier is None:
            raise CodeRefused("code_verifier is required (the request used PKCE)")
        if not hmac.compare_digest(s256(code_verifier), row.code_challenge):
            raise CodeRefused("code_verifier does not match the code_challenge")
    elif code_verifier is not None:
        # RFC 9700 §2.1.1: a verifier without a challenge may be an injected code.
        raise CodeRefused("code_verifier was sent, but the request had no code_challenge")
    if row.used_at is not None:
        if row.refresh_family is not None:
            revoke_family(session, row.refresh_family)
        raise CodeRefused("the code was already used; what it issued is revoked")
    if row.expires_at <= utcnow():
        raise CodeRefused("the code has expired")
    claimed = session.execute(
        update(models.AuthorizationCode)
        .where(
            models.AuthorizationCode.code_hash == code_hash,
            models.AuthorizationCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise CodeRefused("the code was already used")
    return Redeemed(GrantState.from_stored(stored), code_hash)


def issued_family(session: Session, code_hash: str, family_id: str) -> None:
    """Remember the refresh-token family the code's exchange began."""
    session.execute(
        update(models.AuthorizationCode)
        .where(models.AuthorizationCode.code_hash == code_hash)
        .values(refresh_family=family_id)
    )


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def prune(session: Session) -> None:
    """Remove expired codes. A used one is kept until then: its replay must still
    find it, to revoke what it issued."""
    session.execute(
        delete(models.AuthorizationCode).where(models.AuthorizationCode.expires_at <= utcnow())
    )
