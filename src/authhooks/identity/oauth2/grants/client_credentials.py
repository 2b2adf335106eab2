"""Client credentials grant (RFC 6749 §4.4), with Auth0's ``audience`` parameter.

The client asks for a token for one API (``audience``, or RFC 8707's
``resource``); it gets the scopes of its client grant for that API, narrowed
to the ones it asked for.
"""

from __future__ import annotations

from typing import Any, ClassVar

from authhooks.flows.engine import FlowRunner
from authhooks.identity.directory import Directory, KnownClient
from authhooks.identity.oauth2.errors import InvalidScopeError, refused
from authhooks.identity.oauth2.issuer import AccessTokenIssuer, TokenResponse
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.identity.oauth2.scope import parse_scope
from authhooks.identity.oauth2.target import requested_target
from authhooks.points import credentials_exchange


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
        target = requested_target(params, self._default_audience)
        audience = target.audience
        requested = parse_scope(params.get("scope"))
        entitlement = await self._directory.entitlement(client.client_id, audience)
        if entitlement is None:
            raise target.denied(
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

            def event() -> credentials_exchange.Event:
                return credentials_exchange.Event(
                    client=client.hook_view(),
                    scope=list(scopes),
                    api_scopes=sorted(entitlement.defined_scopes),
                    audience=audience,
                    request=request.hook_view(),
                )

            result = await self._flows.run(credentials_exchange.POINT, event)
            if result is not None:
                if result.stop is not None:
                    raise refused(result.stop.refusal.error, result.stop.refusal.description)
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
