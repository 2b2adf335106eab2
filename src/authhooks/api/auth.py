"""Bearer-token protection of the management API (RFC 6750), Auth0-style scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from authhooks.api.errors import ApiError
from authhooks.identity.tokens import InvalidAccessToken, verify_access_token
from authhooks.services import Services


@dataclass(frozen=True)
class Caller:
    client_id: str
    scopes: frozenset[str]


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def require(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency admitting callers whose token carries ``scope``."""

    async def dependency(request: Request) -> Caller:
        caller = await authenticate(request)
        if scope not in caller.scopes:
            raise ApiError(
                403,
                f"Insufficient scope, expected: {scope}",
                "insufficient_scope",
                {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return caller

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


async def authenticate(request: Request) -> Caller:
    """The caller behind a valid management access token, or a 401."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise _unauthorized("Missing authentication: send Authorization: Bearer <token>", None)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Bad authentication: use the Bearer scheme", "invalid_request")
    found = services(request)
    try:
        claims = verify_access_token(
            token,
            await found.directory.keys(),
            found.settings.issuer,
            found.settings.management_audience,
        )
    except InvalidAccessToken as error:
        raise _unauthorized(f"Invalid token: {error}", "invalid_token") from None
    client_id = str(claims["client_id"])
    # Tokens are self-contained, but a deleted client's tokens stop working at once.
    if await found.directory.client(client_id) is None:
        raise _unauthorized("Invalid token: its client no longer exists", "invalid_token")
    scope = claims.get("scope", "")
    return Caller(client_id, frozenset(scope.split() if isinstance(scope, str) else ()))


def _unauthorized(message: str, error: str | None) -> ApiError:
    challenge = (
        f'Bearer realm="authhooks", error="{error}"' if error else 'Bearer realm="authhooks"'
    )
    return ApiError(401, message, error or "unauthorized", {"WWW-Authenticate": challenge})
