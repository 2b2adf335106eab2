"""/dashboard/session: sign in, who is signed in, a management token, sign out.

An admin client signs in with its id and secret (the bootstrap admin, say) and
gets a session cookie: HttpOnly (page scripts cannot read it), SameSite=Strict,
scoped to /dashboard, Secure when the issuer is https. The dashboard's pages
then ask ``POST /dashboard/session/token`` for a short-lived management access
token of that client, with the scopes its grant holds, and call /api/v2 with
it like any other client: the session adds no power of its own. Every request
that changes something carries the session's CSRF token in ``X-CSRF-Token``
(a page of another origin can neither read it nor send the header without a
CORS preflight, which this server never grants), and a sign-in with an
``Origin`` must come from the server's own.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from anyio.to_thread import run_sync
from fastapi import APIRouter, Cookie, Depends, Header, Response
from pydantic import Field

from authhooks.api.auth import services
from authhooks.api.errors import ApiError
from authhooks.api.models import Body
from authhooks.api.routing import UnauthenticatedJSONRoute
from authhooks.dashboard import sessions
from authhooks.dashboard.sessions import SessionLimits, SignedIn
from authhooks.identity.directory import KnownClient
from authhooks.identity.oauth2.client_auth import authenticate
from authhooks.identity.oauth2.errors import InvalidClientError
from authhooks.services import Services

router = APIRouter(
    prefix="/dashboard",
    tags=["dashboard"],
    route_class=UnauthenticatedJSONRoute,
    include_in_schema=False,
)

COOKIE = "authhooks_dashboard"
# A management token minted for the dashboard lives at most this long.
TOKEN_LIFETIME = 600


class SignIn(Body):
    client_id: Annotated[str, Field(min_length=1, max_length=64)]
    client_secret: Annotated[str, Field(min_length=1, max_length=512)]


def _limits(found: Services) -> SessionLimits:
    return SessionLimits(
        found.settings.dashboard_session_idle, found.settings.dashboard_session_max
    )


@router.post("/session")
async def sign_in(
    body: SignIn,
    response: Response,
    found: Annotated[Services, Depends(services)],
    origin: Annotated[str | None, Header(max_length=300)] = None,
) -> dict[str, Any]:
    """Start a session for an admin client; its answer holds the CSRF token."""
    if origin is not None and _origin(origin) != _origin(found.settings.issuer):
        raise ApiError(403, "sign in from the dashboard's own pages", "invalid_origin")
    try:
        client = await authenticate(
            found.directory,
            found.hasher,
            None,
            {"client_id": body.client_id, "client_secret": body.client_secret},
        )
    except InvalidClientError:
        raise ApiError(401, "wrong client id or secret", "invalid_credentials") from None
    _may_use_the_api(client)
    audience = found.settings.management_audience
    entitlement = await found.directory.entitlement(client.client_id, audience)
    if entitlement is None or not entitlement.scopes:
        raise ApiError(403, "this client may not use the management API", "access_denied")
    limits = _limits(found)

    def start() -> tuple[str, SignedIn]:
        with found.database.session() as session:
            sessions.prune(session, limits)
            return sessions.start(session, client.client_id, limits)

    token, signed_in = await run_sync(start)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        COOKIE,
        token,
        max_age=limits.lifetime,
        path="/dashboard",
        secure=found.settings.issuer.startswith("https://"),
        httponly=True,
        samesite="strict",
    )
    return _view(signed_in, entitlement.scopes)


@router.get("/session")
async def current(
    response: Response,
    found: Annotated[Services, Depends(services)],
    token: Annotated[str | None, Cookie(alias=COOKIE, max_length=100)] = None,
) -> dict[str, Any]:
    """The signed-in admin (after a page reload, say), or 401."""
    signed_in = await _resume(found, token)
    response.headers["Cache-Control"] = "no-store"
    entitlement = await found.directory.entitlement(
        signed_in.client_id, found.settings.management_audience
    )
    return _view(signed_in, entitlement.scopes if entitlement else ())


@router.post("/session/token")
async def management_token(
    response: Response,
    found: Annotated[Services, Depends(services)],
    token: Annotated[str | None, Cookie(alias=COOKIE, max_length=100)] = None,
    csrf: Annotated[str | None, Header(alias="X-CSRF-Token", max_length=100)] = None,
) -> dict[str, Any]:
    """A short-lived management token of the signed-in client, for the pages' API calls."""
    signed_in = await _resume(found, token)
    if not sessions.csrf_matches(signed_in, csrf):
        raise ApiError(403, "missing or wrong X-CSRF-Token", "invalid_csrf_token")
    client = await found.directory.client(signed_in.client_id)
    if client is None:
        raise ApiError(401, "the session ended: sign in again", "unauthorized")
    _may_use_the_api(client)
    audience = found.settings.management_audience
    entitlement = await found.directory.entitlement(signed_in.client_id, audience)
    if entitlement is None or not entitlement.scopes:
        raise ApiError(403, "this client may no longer use the management API", "access_denied")
    left = int(signed_in.expires_at.timestamp() - time.time())
    issued = await found.token_issuer.issue(
        subject=f"{signed_in.client_id}@clients",
        client_id=signed_in.client_id,
        audience=audience,
        scopes=tuple(sorted(entitlement.scopes)),
        grant_type_claim="client-credentials",
        lifetime=max(1, min(TOKEN_LIFETIME, left)),
    )
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return issued.body()


@router.delete("/session", status_code=204)
async def sign_out(
    found: Annotated[Services, Depends(services)],
    token: Annotated[str | None, Cookie(alias=COOKIE, max_length=100)] = None,
    csrf: Annotated[str | None, Header(alias="X-CSRF-Token", max_length=100)] = None,
) -> Response:
    signed_in = await _resume(found, token)
    if not sessions.csrf_matches(signed_in, csrf):
        raise ApiError(403, "missing or wrong X-CSRF-Token", "invalid_csrf_token")
    assert token is not None

    def end() -> None:
        with found.database.session() as session:
            sessions.end(session, token)

    await run_sync(end)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


async def _resume(found: Services, token: str | None) -> SignedIn:
    if token is None:
        raise ApiError(401, "not signed in", "unauthorized")
    limits = _limits(found)

    def resume() -> SignedIn | None:
        with found.database.session() as session:
            return sessions.resume(session, token, limits)

    signed_in = await run_sync(resume)
    if signed_in is None:
        raise ApiError(401, "the session ended: sign in again", "unauthorized")
    return signed_in


def _view(signed_in: SignedIn, scopes: Any) -> dict[str, Any]:
    return {
        "client_id": signed_in.client_id,
        "csrf_token": signed_in.csrf_token,
        "expires_at": signed_in.expires_at.isoformat().replace("+00:00", "Z"),
        "scopes": sorted(scopes),
    }


def _may_use_the_api(client: KnownClient) -> None:
    """As at the token endpoint: only a confidential client allowed the client
    credentials grant gets management tokens."""
    if client.public or "client_credentials" not in client.grant_types:
        raise ApiError(
            403, "this client may not get tokens with the client credentials grant", "access_denied"
        )


def _origin(url: str) -> str:
    """An origin in one spelling: lower-case, default ports dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        return url  # not a URL: compares equal to nothing real
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")
