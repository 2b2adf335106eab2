"""Bearer-token protection of the management API (RFC 6750), Auth0-style scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

import jwt
from fastapi import Request

from authhooks.api.errors import (
    AccessLost,
    InsufficientScope,
    InvalidToken,
    MissingToken,
    ScopesNotHeld,
)
from authhooks.identity.admins import ADMIN_SUBJECT_PREFIX, DASHBOARD_CLIENT_ID, admin_id_of
from authhooks.identity.management import INVOKE_POINTS, is_point_scope
from authhooks.identity.tokens import InvalidAccessToken, verify_access_token
from authhooks.observability.server_log import note
from authhooks.services import Services


@dataclass(frozen=True)
class Caller:
    client_id: str
    scopes: frozenset[str]
    expires_at: float | None = None  # the token's ``exp``: long responses end there
    admin_id: str | None = None  # an admin user signed in to the dashboard
    key_id: str | None = None  # the ``kid`` of the key that signed the token

    def holds(self, scope: str) -> bool:
        """Whether the token carries ``scope``; invoking every point holds each one's."""
        return scope in self.scopes or (is_point_scope(scope) and INVOKE_POINTS in self.scopes)

    @property
    def author(self) -> str:
        """Who made a change, as recorded with it: the admin user, or the client."""
        return ADMIN_SUBJECT_PREFIX + self.admin_id if self.admin_id else self.client_id


# The dependencies here and in pagination.py and fields.py are ``async def`` though
# they never wait: FastAPI runs a plain ``def`` dependency in its thread pool, a
# thread round trip (about 200 us of CPU here) on every request for nothing.
async def services(request: Request) -> Services:
    return services_of(request)


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def require(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency admitting callers whose token carries ``scope``."""

    async def dependency(request: Request) -> Caller:
        caller = await authenticate(request)
        if scope not in caller.scopes:
            raise InsufficientScope(scope)
        return caller

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


async def authenticate(request: Request) -> Caller:
    """The caller behind a valid management access token, or a 401; verified once per request."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is None:
        cached = request.state.caller = await _verify(request)
        note(client_id=cached.client_id, admin_id=cached.admin_id)
    return cached


async def _verify(request: Request) -> Caller:
    authorization = request.headers.get("authorization")
    if not authorization:
        raise MissingToken("Missing authentication: send Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        # RFC 6750 §3.1: a request without a bearer token gets no error code.
        raise MissingToken("Bad authentication: use the Bearer scheme")
    found = services_of(request)
    try:
        claims = verify_access_token(
            token,
            await found.directory.keys(),
            found.settings.issuer,
            found.settings.management_audience,
        )
    except InvalidAccessToken as error:
        raise InvalidToken(str(error)) from None
    client_id = str(claims["client_id"])
    expires = claims.get("exp")
    expires_at = float(expires) if isinstance(expires, int | float) else None
    scope = claims.get("scope", "")
    carried = frozenset(scope.split() if isinstance(scope, str) else ())
    admin_id = None
    if client_id == DASHBOARD_CLIENT_ID:
        admin_id = admin_id_of(str(claims["sub"]))
        if admin_id is None:
            # Signed by this server, yet no admin's: not a token the dashboard issues.
            raise InvalidToken("it names no admin")
    # Verified above, so the header holds the kid of one of the keys.
    key_id = str(jwt.get_unverified_header(token)["kid"])
    return await current(found, Caller(client_id, carried, expires_at, admin_id, key_id))


async def current(found: Services, caller: Caller) -> Caller:
    """``caller`` with only the scopes its admin, or its client's grant, still allows;
    AccessLost when they, or the key that signed its token, are gone. Checked per
    request, and every ``cache_ttl`` by streams."""
    if caller.key_id is not None and caller.key_id not in (await found.directory.keys()).public:
        # Revoked (keys rotate --revoke-previous), or its retirement window ended:
        # the token no longer verifies, so what it opened ends too.
        raise AccessLost("key_revoked", "the key that signed it is no longer published")
    if caller.admin_id is not None:
        # An admin user's token: it holds what the admin is allowed now, no more.
        admin = await found.admins.find(caller.admin_id)
        if admin is None:
            raise AccessLost("admin_deleted", "its admin no longer exists")
        return replace(caller, scopes=caller.scopes & admin.scopes)
    # Tokens are self-contained, but deleting a client or narrowing its grant
    # takes their power away within the cache bound, as it does for new tokens.
    if await found.directory.client(caller.client_id) is None:
        raise AccessLost("client_deleted", "its client no longer exists")
    entitlement = await found.directory.entitlement(
        caller.client_id, found.settings.management_audience
    )
    if entitlement is None:
        raise AccessLost("grant_revoked", "its client's grant was revoked")
    return replace(caller, scopes=caller.scopes & frozenset(entitlement.scopes))


def ensure_holds(caller: Caller, scopes: Iterable[str], action: str) -> None:
    """Refuse to let a caller hand out (or take over) management scopes it does not hold."""
    missing = sorted(scope for scope in set(scopes) if not caller.holds(scope))
    if missing:
        raise ScopesNotHeld(action, missing)
