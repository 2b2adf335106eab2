"""Client credentials grant (RFC 6749 §4.4), with Auth0's ``audience`` parameter.

The client asks for a token for one API (``audience``, or RFC 8707's
``resource``); it gets the scopes of its client grant for that API, narrowed
to the ones it asked for.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from authhooks.identity.directory import Directory, KnownClient
from authhooks.identity.oauth2.errors import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
)
from authhooks.identity.oauth2.hook_errors import refusal_error
from authhooks.identity.oauth2.issuer import AccessTokenIssuer, TokenResponse
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.identity.oauth2.scope import parse_scope
from authhooks.points import credentials_exchange
from authhooks.points.flow import FlowRunner


class ClientCredentialsGrant:
    grant_type: ClassVar[str] = "client_credentials"

    def __init__(
        self,
        directory: Directory,
        issuer: AccessTokenIssuer,
        default_audience: str,
        flows: FlowRunner | None = None,
        management_audience: str | None = None,
    ) -> None:
        self._directory = directory
        self._issuer = issuer
        self._default_audience = default_audience
        self._flows = flows
        self._management_audience = management_audience

    async def respond(
        self, client: KnownClient, params: dict[str, str], request: RequestInfo
    ) -> TokenResponse:
        audience, by_resource = self._audience(params)
        requested = parse_scope(params.get("scope"))
        entitlement = await self._directory.entitlement(client.client_id, audience)
        if entitlement is None:
            # Each client family gets its own standard's answer: Auth0's for
            # `audience`, RFC 8707's for `resource`. Neither says whether the API exists.
            denied = InvalidTargetError if by_resource else AccessDeniedError
            raise denied(
                f"client {client.client_id!r} is not authorized to access {audience!r}: "
                "create a client grant for this audience"
            )
        unknown = [value for value in requested if value not in entitlement.defined_scopes]
        if unknown:
            raise InvalidScopeError(f"scope {' '.join(unknown)} is not defined by {audience!r}")
        scopes = entitlement.scopes
        if requested:
            # RFC 6749 §3.3: the server may grant less than requested, and says so in `scope`.
            scopes = tuple(value for value in scopes if value in requested)
            if not scopes:
                raise InvalidScopeError("none of the requested scopes is granted to this client")
        claims: dict[str, Any] = {}
        # The management API never runs hooks: a broken hook must not lock out its operators.
        if self._flows is not None and audience != self._management_audience:
            event = {
                "client": {
                    "id": client.client_id,
                    "name": client.name,
                    "metadata": client.metadata,
                    "tenant": "authhooks",
                },
                "scope": list(scopes),
                "api_scopes": sorted(entitlement.defined_scopes),
                "audience": audience,
                "request": request.as_dict(),
            }
            result = await self._flows.run(credentials_exchange.POINT, event)
            if result is not None:
                if result.refusal is not None:
                    raise refusal_error(result.refusal)
                scopes, claims = result.state.scopes, result.state.claims
        return await self._issuer.issue(
            subject=f"{client.client_id}@clients",
            client_id=client.client_id,
            audience=audience,
            scopes=scopes,
            grant_type_claim="client-credentials",
            lifetime=entitlement.token_lifetime,
            custom_claims=claims,
        )

    def _audience(self, params: dict[str, str]) -> tuple[str, bool]:
        """The API asked for, and whether it was named by RFC 8707's ``resource``."""
        audience, resource = params.get("audience"), params.get("resource")
        if audience and resource and audience != resource:
            raise InvalidRequestError("audience and resource name different APIs: send one")
        if resource and not audience:
            parts = urlsplit(resource)
            if not parts.scheme or parts.fragment or "#" in resource:
                raise InvalidTargetError("resource must be an absolute URI without a fragment")
            return resource, True
        chosen = audience or self._default_audience
        if not chosen:
            raise InvalidRequestError("audience is required: name the API the token is for")
        return chosen, False
