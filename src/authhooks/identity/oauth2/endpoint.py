"""The token endpoint (RFC 6749 §3.2): parse, pick the grant, authenticate, issue."""

from __future__ import annotations

from collections.abc import Iterable

from authhooks.identity.directory import Directory
from authhooks.identity.oauth2.client_auth import authenticate
from authhooks.identity.oauth2.errors import (
    InvalidRequestError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from authhooks.identity.oauth2.grants import Grant
from authhooks.identity.oauth2.issuer import TokenResponse
from authhooks.identity.oauth2.request import RequestInfo, parse_form
from authhooks.masterkey import SecretHasher


class TokenEndpoint:
    def __init__(self, directory: Directory, hasher: SecretHasher, grants: Iterable[Grant]) -> None:
        self._directory = directory
        self._hasher = hasher
        self._grants = {grant.grant_type: grant for grant in grants}

    @property
    def grant_types(self) -> list[str]:
        return list(self._grants)

    async def respond(
        self,
        content_type: str | None,
        authorization: str | None,
        body: bytes,
        request: RequestInfo | None = None,
    ) -> TokenResponse:
        """The token response, or an OAuth2Error to render per RFC 6749 §5.2."""
        params = parse_form(content_type, body)
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise InvalidRequestError("grant_type is required")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantTypeError(
                f"grant_type {grant_type!r} is not supported; use one of: "
                + ", ".join(self._grants)
            )
        client = await authenticate(self._directory, self._hasher, authorization, params)
        if grant_type not in client.grant_types:
            raise UnauthorizedClientError(f"this client may not use the {grant_type} grant")
        return await grant.respond(client, params, request or RequestInfo())
