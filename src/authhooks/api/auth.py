"""Bearer-token protection of the management API (RFC 6750), Auth0-style scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fastapi import Request

from authhooks.api.errors import ApiError
from authhooks.identity.tokens import InvalidAccessToken, verify_access_token
from authhooks.services import Services


@dataclass(frozen=True)
class Caller:
    client_id: str
    scopes: frozenset[str]
    expires_at: float | None = None  # the token's ``exp``: long responses end there


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
    """The caller behind a valid management access token, or a 401; verified once per request."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is None:
        cached = request.state.caller = await _verify(request)
    return cached


async def _verify(request: Request) -> Caller:
    authorization = request.headers.get("authorization")
    if not authorization:
        raise _unauthorized("Missing authentication: send Authorization: Bearer <token>", None)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        # RFC 6750 §3.1: a request without a bearer token gets no error code.
        raise _unauthorized("Bad authentication: use the Bearer scheme", None)
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
    # Tokens are self-contained, but deleting a client or narrowing its grant
    # takes their power away within the cache bound, as it does for new tokens.
    if await found.directory.client(client_id) is None:
        raise _unauthorized("Invalid token: its client no longer exists", "invalid_token")
    entitlement = await found.directory.entitlement(client_id, found.settings.management_audience)
    if entitlement is None:
        raise _unauthorized("Invalid token: its client's grant was revoked", "invalid_token")
    scope = claims.get("scope", "")
    carried = frozenset(scope.split() if isinstance(scope, str) else ())
    expires = claims.get("exp")
    return Caller(
        client_id,
        carried & frozenset(entitlement.scopes),
        float(expires) if isinstance(expires, int | float) else None,
    )


def ensure_holds(caller: Caller, scopes: Iterable[str], action: str) -> None:
    """Refuse to let a caller hand out (or take over) management scopes it does not hold."""
    missing = sorted(set(scopes) - caller.scopes)
    if missing:
        raise ApiError(
            403,
            f"cannot {action}: it carries management scopes your token lacks ({' '.join(missing)})",
            "insufficient_scope",
        )


def _unauthorized(message: str, error: str | None) -> ApiError:
    challenge = (
        f'Bearer realm="authhooks", error="{error}"' if error else 'Bearer realm="authhooks"'
    )
    return ApiError(401, message, error or "unauthorized", {"WWW-Authenticate": challenge})
