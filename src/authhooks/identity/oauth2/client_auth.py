"""Client authentication at the token endpoint (RFC 6749 §2.3.1):
``client_secret_basic`` and ``client_secret_post``; public clients (spa and
native apps, which cannot keep a secret) send their ``client_id`` alone
(``none``, RFC 7591 §2)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from authhooks.identity.directory import Directory, KnownClient
from authhooks.identity.oauth2.errors import InvalidClientError, InvalidRequestError
from authhooks.masterkey import SecretHasher

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
_FAILED = "client authentication failed: unknown client or wrong secret"
_DUMMY_HASH = b"\0" * 32


def credentials_from(
    authorization: str | None, params: dict[str, str]
) -> tuple[str, str | None, bool]:
    """(client_id, client_secret or None, used_basic) from the request; one method allowed."""
    if authorization is not None and authorization.strip():
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClientError(
                "unsupported Authorization scheme: use Basic or the body", used_basic=True
            )
        if "client_secret" in params:
            # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            raise InvalidRequestError("use one client authentication method, not Basic and body")
        client_id, client_secret = _decode_basic(value.strip())
        if params.get("client_id", client_id) != client_id:
            raise InvalidRequestError("client_id in the body differs from the Basic credentials")
        return client_id, client_secret, True
    body_id = params.get("client_id")
    if body_id is None:
        raise InvalidClientError(
            "client authentication is required (Basic or client_id + client_secret)"
        )
    return body_id, params.get("client_secret"), False


async def authenticate(
    directory: Directory, hasher: SecretHasher, authorization: str | None, params: dict[str, str]
) -> KnownClient:
    """The authenticated client, or InvalidClientError."""
    client_id, client_secret, used_basic = credentials_from(authorization, params)
    client = await directory.client(client_id)
    if client_secret is None:
        if client is None:  # perhaps created by another process since this one looked
            client = await directory.client_again(client_id)
        if client is not None and client.public:
            return client
        raise InvalidClientError("client_secret is required")
    if _verified(hasher, client, client_secret):
        assert client is not None
        return client
    # The cache may be behind a change made by another process (a rotated secret,
    # a new client): read the client again before refusing, as far as that is cheap.
    client = await directory.client_again(client_id)
    if client is not None and _verified(hasher, client, client_secret):
        return client
    raise InvalidClientError(_FAILED, used_basic=used_basic)


def _verified(hasher: SecretHasher, client: KnownClient | None, client_secret: str) -> bool:
    # Hash even for an unknown client, so that both failures take the same time.
    matches = hasher.verify(client_secret, client.secret_hash if client else _DUMMY_HASH)
    return client is not None and matches


def _decode_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClientError("malformed Basic credentials", used_basic=True) from None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidClientError("malformed Basic credentials", used_basic=True)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(client_secret)
