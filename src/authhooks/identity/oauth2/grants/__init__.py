"""One module per grant type, each a ``Grant``; ``GRANT_TYPES`` lists their names."""

from __future__ import annotations

from typing import ClassVar, Protocol

from authhooks.identity.directory import KnownClient
from authhooks.identity.oauth2.issuer import TokenResponse
from authhooks.identity.oauth2.request import RequestInfo

# The grant types a client may be given; each has a module beside this one.
GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "http://auth0.com/oauth/grant-type/password-realm",
)


class Grant(Protocol):
    grant_type: ClassVar[str]

    async def respond(
        self, client: KnownClient, params: dict[str, str], request: RequestInfo
    ) -> TokenResponse:
        """Validate the grant's own parameters and issue a token, or raise an OAuth2Error."""
        ...
