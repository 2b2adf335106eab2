"""Token revocation (RFC 7009): a client revokes a refresh token it holds, and with
it the token's whole family. Access tokens are self-contained JWTs that no
server keeps, so they stay valid until they expire (short-lived, by design);
revoking one answers 200 as RFC 7009 §2.2 allows for a token it cannot revoke."""

from __future__ import annotations

from anyio.to_thread import run_sync

from authhooks.identity import refresh_tokens
from authhooks.identity.directory import Directory
from authhooks.identity.oauth2.client_auth import authenticate
from authhooks.identity.oauth2.errors import InvalidRequestError, UnsupportedTokenTypeError
from authhooks.identity.oauth2.request import parse_form
from authhooks.masterkey import SecretHasher
from authhooks.storage.database import Database

_HINTS = ("refresh_token", "access_token")


class Revocation:
    def __init__(self, database: Database, directory: Directory, hasher: SecretHasher) -> None:
        self._db = database
        self._directory = directory
        self._hasher = hasher

    async def revoke(
        self, content_type: str | None, authorization: str | None, body: bytes
    ) -> None:
        """Revoke the token if it is the client's refresh token; an OAuth2Error for a
        bad request or client. An unknown token is no error (RFC 7009 §2.2)."""
        params = parse_form(content_type, body)
        client = await authenticate(self._directory, self._hasher, authorization, params)
        token = params.get("token")
        if not token:
            raise InvalidRequestError("token is required")
        hint = params.get("token_type_hint")
        if hint is not None and hint not in _HINTS:
            raise UnsupportedTokenTypeError(f"token_type_hint {hint!r} is not supported")

        def revoke() -> None:
            with self._db.session() as session:
                refresh_tokens.revoke(session, token, client.client_id)

        await run_sync(revoke)
