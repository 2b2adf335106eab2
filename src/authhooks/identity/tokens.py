"""Signing keys and access tokens: key generation and rotation, JWKS (RFC 7517),
and JWT access tokens (RFC 9068)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from authhooks.config import SigningAlgorithm
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import bump_generation
from authhooks.storage.models import utcnow

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# RFC 9068 §2.1: access tokens carry this media type in the JWT "typ" header.
ACCESS_TOKEN_TYPE = "at+jwt"
# A key stays published this long beyond the lifetime of its last token, to
# cover clock skew and processes that signed with it before noticing a rotation.
PUBLISH_GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    alg: str
    private_key: PrivateKey


@dataclass(frozen=True)
class KeySet:
    """The key that signs new tokens and every public key a verifier may still need."""

    signing: ActiveKey
    public: dict[str, Any]  # kid -> PyJWT verification key
    jwks: dict[str, Any]  # the RFC 7517 document served at /.well-known/jwks.json
    # When the first retired key leaves the set (UNIX time); the set must be reloaded then.
    valid_until: float | None


def generate_private_key(alg: SigningAlgorithm) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: PrivateKey, alg: str) -> dict[str, Any]:
    """The public JWK with ``kid`` = its RFC 7638 thumbprint."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        required: tuple[str, ...] = ("e", "kty", "n")
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        required = ("crv", "kty", "x", "y")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    kid = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return {**{k: jwk[k] for k in required}, "kid": kid, "use": "sig", "alg": alg}


def create_signing_key(
    session: Session, master_key: MasterKey, alg: SigningAlgorithm
) -> models.SigningKey:
    """Store a new key that signs from now on; callers retire the old one first."""
    private_key = generate_private_key(alg)
    jwk = public_jwk(private_key, alg)
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    row = models.SigningKey(
        kid=jwk["kid"],
        alg=alg,
        private_key=master_key.encrypt(der, _key_context(jwk["kid"])),
        public_jwk=jwk,
        created_at=utcnow(),
    )
    session.add(row)
    bump_generation(session)
    return row


def current_signing_key(session: Session) -> models.SigningKey | None:
    return session.scalars(
        select(models.SigningKey)
        .where(models.SigningKey.rotated_at.is_(None))
        .order_by(models.SigningKey.created_at.desc())
    ).first()


def rotate_signing_key(
    session: Session,
    master_key: MasterKey,
    alg: SigningAlgorithm,
    default_lifetime: int,
    *,
    revoke_previous: bool = False,
    ahead: timedelta = timedelta(0),
) -> models.SigningKey:
    """Replace the signing key; the old one stays published until its tokens expire,
    or is withdrawn at once with ``revoke_previous`` (a compromised key).

    The new key is published at once but signs only ``ahead`` later, the old one
    signing until then: every process has its JWKS by the time a token carries
    it, so a verifier that fetched the JWKS from any process knows the key."""
    now = utcnow()
    switch = now if revoke_previous else now + ahead
    longest = max(default_lifetime, _longest_api_lifetime(session))
    for old in session.scalars(
        select(models.SigningKey).where(
            (models.SigningKey.rotated_at.is_(None)) | (models.SigningKey.rotated_at > switch)
        )
    ):
        old.rotated_at = switch
        old.publish_until = switch + timedelta(seconds=longest) + PUBLISH_GRACE
    if revoke_previous:
        for old in session.scalars(
            select(models.SigningKey).where(
                models.SigningKey.publish_until.is_not(None), models.SigningKey.publish_until > now
            )
        ):
            old.publish_until = now
    return create_signing_key(session, master_key, alg)


def ensure_signing_key(
    session: Session, master_key: MasterKey, alg: SigningAlgorithm, default_lifetime: int
) -> models.SigningKey:
    """The current key, created on first start and rotated when the algorithm setting changed."""
    current = current_signing_key(session)
    if current is None:
        return create_signing_key(session, master_key, alg)
    if current.alg != alg:
        return rotate_signing_key(session, master_key, alg, default_lifetime)
    return current


def load_key_set(session: Session, master_key: MasterKey) -> KeySet:
    """Decrypt the signing key and collect the keys to publish."""
    now = utcnow()
    rows = session.scalars(
        select(models.SigningKey).order_by(models.SigningKey.created_at.desc())
    ).all()
    # The oldest key still signing: a rotated key signs until its switch time, and
    # the new key waits for it (rows are newest first).
    signing = [row for row in rows if row.rotated_at is None or row.rotated_at > now]
    if not signing:
        raise LookupError("no signing key: run `authhooks init` first")
    signing_row = signing[-1]
    der = master_key.decrypt(signing_row.private_key, _key_context(signing_row.kid))
    private_key = serialization.load_der_private_key(der, password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    published = [row for row in rows if row.publish_until is None or row.publish_until > now]
    ends = [row.publish_until.timestamp() for row in published if row.publish_until is not None]
    # The set is reloaded when a key stops signing, as when one leaves the JWKS.
    ends += [row.rotated_at.timestamp() for row in signing if row.rotated_at is not None]
    return KeySet(
        signing=ActiveKey(signing_row.kid, signing_row.alg, private_key),
        public={row.kid: jwt.PyJWK(row.public_jwk) for row in published},
        jwks={"keys": [row.public_jwk for row in published]},
        valid_until=min(ends, default=None),
    )


def sign_access_token(claims: dict[str, Any], key: ActiveKey) -> str:
    """Sign an RFC 9068 access token."""
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=key.alg,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )


def _longest_api_lifetime(session: Session) -> int:
    value = session.scalar(select(func.max(models.ResourceServer.token_lifetime)))
    return int(value or 0)


def check_opens(session: Session, master_key: MasterKey) -> None:
    """MasterKeyError unless ``master_key`` opens the newest signing key (if any)."""
    row = session.scalars(
        select(models.SigningKey).order_by(models.SigningKey.created_at.desc())
    ).first()
    if row is not None:
        master_key.decrypt(row.private_key, _key_context(row.kid))


def reseal_signing_keys(session: Session, old: MasterKey, new: MasterKey) -> int:
    """Seal every private signing key with ``new`` instead of ``old`` (master key rotation)."""
    count = 0
    for row in session.scalars(select(models.SigningKey)):
        context = _key_context(row.kid)
        row.private_key = new.encrypt(old.decrypt(row.private_key, context), context)
        count += 1
    return count


def _key_context(kid: str) -> bytes:
    return b"signing-key:" + kid.encode()


class InvalidAccessToken(Exception):
    """The bearer token is not one this server issued for this audience, or has expired."""


def verify_access_token(token: str, keys: KeySet, issuer: str, audience: str) -> dict[str, Any]:
    """The claims of a valid RFC 9068 access token for ``audience``."""
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = keys.public.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidAccessToken("the token was not signed by a key of this server")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
            raise InvalidAccessToken("the token is not an access token (typ must be at+jwt)")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise InvalidAccessToken("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise InvalidAccessToken("the token is not for this API") from None
    except jwt.PyJWTError as error:
        raise InvalidAccessToken(f"the token is invalid: {error}") from None
    return claims
