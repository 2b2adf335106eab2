"""The token endpoint (RFC 6749 §3.2): parse, pick the grant, authenticate, issue."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy.exc import DBAPIError

from authhooks.identity.directory import Directory
from authhooks.identity.oauth2.client_auth import authenticate
from authhooks.identity.oauth2.errors import (
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from authhooks.identity.oauth2.grants import Grant
from authhooks.identity.oauth2.issuer import TokenResponse
from authhooks.identity.oauth2.request import RequestInfo, parse_form
from authhooks.masterkey import SecretHasher
from authhooks.observability.metrics import TOKEN_REQUESTS, TOKEN_SECONDS
from authhooks.observability.server_log import note


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
        """The token response, or an OAuth2Error to render per RFC 6749 §5.2.

        Each request is counted by grant type (one this server supports, else
        "other") and outcome ("issued", or the error code), and timed.
        """
        began = time.perf_counter()
        grant_label, outcome = "other", "server_error"
        try:
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
            grant_label = grant_type
            client = await authenticate(self._directory, self._hasher, authorization, params)
            note(client_id=client.client_id)
            if grant_type not in client.grant_types:
                raise UnauthorizedClientError(f"this client may not use the {grant_type} grant")
            response = await grant.respond(client, params, request or RequestInfo())
            outcome = "issued"
            return response
        except OAuth2Error as error:
            outcome = error.error
            raise
        except DBAPIError:
            outcome = "temporarily_unavailable"
            raise
        finally:
            TOKEN_REQUESTS.labels(grant_label, outcome).inc()
            TOKEN_SECONDS.labels(grant_label).observe(time.perf_counter() - began)
            note(grant_type=grant_label, outcome=outcome)
