"""Resource owner password credentials grant (RFC 6749 §4.3), with Auth0's
``audience``; the password-exchange flow runs before the token is signed.

Without role-based access control, as in an Auth0 tenant without RBAC, a user
gets the requested scopes that the API defines; password-exchange hooks are
where owners narrow them. The management API never accepts user tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

from authhooks.flows.engine import FlowRunner
from authhooks.identity.directory import Directory, KnownClient
from authhooks.identity.oauth2.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    TooManyAttemptsError,
    refused,
)
from authhooks.identity.oauth2.issuer import AccessTokenIssuer, TokenResponse
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.identity.oauth2.scope import parse_scope
from authhooks.identity.oauth2.target import requested_target
from authhooks.points import password_exchange
from authhooks.points.shapes import Connection
from authhooks.users import store
from authhooks.users.login import PasswordLogin, UserBlocked, WrongCredentials
from authhooks.users.throttle import TooManyAttempts

# OpenID Connect scopes ask for an ID token, which this server does not issue:
# they are accepted and left out, so that OIDC client libraries work unchanged.
_ID_TOKEN_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


class PasswordGrant:
    grant_type: ClassVar[str] = "password"

    def __init__(
        self,
        directory: Directory,
        issuer: AccessTokenIssuer,
        login: PasswordLogin,
        default_audience: str,
        management_audience: str,
        flows: FlowRunner | None = None,
    ) -> None:
        self._directory = directory
        self._issuer = issuer
        self._login = login
        self._default_audience = default_audience
        self._management_audience = management_audience
        self._flows = flows

    async def respond(
        self, client: KnownClient, params: dict[str, str], request: RequestInfo
    ) -> TokenResponse:
        username, password = params.get("username"), params.get("password")
        if not username or password is None:
            raise InvalidRequestError("username and password are required")
        target = requested_target(params, self._default_audience)
        audience = target.audience
        api = await self._directory.api(audience)
        if api is None or audience == self._management_audience:
            raise target.denied(f"users cannot get tokens for {audience!r}")
        requested = [value for value in parse_scope(params.get("scope")) if value]
        unknown = [
            value
            for value in requested
            if value not in api.defined_scopes and value not in _ID_TOKEN_SCOPES
        ]
        if unknown:
            raise InvalidScopeError(f"scope {' '.join(unknown)} is not defined by {audience!r}")
        scopes = tuple(value for value in requested if value in api.defined_scopes)
        try:
            user = await self._login.authenticate(username, password, request.ip)
        except WrongCredentials as error:
            raise InvalidGrantError(str(error)) from None
        except UserBlocked as error:
            raise InvalidGrantError(str(error)) from None
        except TooManyAttempts as error:
            raise TooManyAttemptsError(str(error), error.retry_after) from None
        claims: dict[str, Any] = {}
        if self._flows is not None:

            def event() -> password_exchange.Event:
                return password_exchange.Event(
                    user=store.hook_user(user),
                    client=client.hook_view(),
                    scope=list(scopes),
                    api_scopes=sorted(api.defined_scopes),
                    audience=audience,
                    connection=Connection(),
                    request=request.hook_view(),
                )

            result = await self._flows.run(password_exchange.POINT, event)
            if result is not None:
                if result.stop is not None:
                    raise refused(result.stop.refusal.error, result.stop.refusal.description)
                scopes, claims = result.state.scopes, result.state.claims
        return await self._issuer.issue(
            subject=user.id,
            client_id=client.client_id,
            audience=audience,
            scopes=scopes,
            grant_type_claim="password",
            lifetime=api.token_lifetime,
            custom_claims=claims,
        )
